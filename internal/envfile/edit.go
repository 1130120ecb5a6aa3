package envfile

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// validKey holds the keys both readers accept: Ruby's [\w.]+ (node also
// allows '-', Ruby does not).
var validKey = regexp.MustCompile(`^[A-Za-z0-9_.]+$`)

func checkKey(key string) error {
	if !validKey.MatchString(key) || key == "__proto__" {
		return fmt.Errorf("key %q: %w", key, ErrInvalidKey)
	}
	return nil
}

// Quoted returns value written so that Ruby dotenv and node dotenv both read
// exactly value. Set writes values this way:
//
//   - 'value', in single quotes, the form both readers take literally,
//     whenever value has no single quote and does not end in a backslash;
//   - "it's", in double quotes, when value has a single quote but no '"',
//     '\' or '$';
//   - it's"quoted", as is, when value has no '$', '#' or line break, does not
//     start with a quote or begin or end with a space, and has no backslash
//     but a last one.
//
// Any other value, and one with a carriage return, U+2028 or U+2029, or
// invalid UTF-8, gives ErrNotPortable.
func Quoted(value string) (string, error) {
	switch {
	case !utf8.ValidString(value):
		return "", fmt.Errorf("%w: it is not valid UTF-8", ErrNotPortable)
	case strings.ContainsAny(value, "\r\u2028\u2029"):
		return "", fmt.Errorf("%w: it holds a carriage return or a Unicode line separator", ErrNotPortable)
	case !strings.Contains(value, "'") && !strings.HasSuffix(value, `\`):
		return "'" + value + "'", nil
	case !strings.ContainsAny(value, "\"\\$"):
		return `"` + value + `"`, nil
	case plainOK(value):
		return value, nil
	}
	return "", fmt.Errorf("%w: it holds a single quote together with a backslash, '$', '#' or a line break", ErrNotPortable)
}

// plainOK reports whether both readers read value written without quotes
// as value itself.
func plainOK(value string) bool {
	body := strings.TrimSuffix(value, `\`)
	if value == "" || strings.ContainsAny(body, "\\$#\n") || strings.ContainsAny(value[:1], "'\"`") {
		return false
	}
	first, _ := utf8.DecodeRuneInString(value)
	last, _ := utf8.DecodeLastRuneInString(value)
	return !isJSSpace(first) && !isJSSpace(last) && first != 0 && last != 0
}

// Set gives key the value value, written so that Rails, Sidekiq and the
// streaming server all read exactly value (see Quoted for the form chosen).
// If key is set already, only the value on its last assignment is
// rewritten, keeping "export", the separator and any comment; otherwise
// "KEY='value'" is appended at the end of the file. Every other byte of the
// file is kept. Set only changes f: call Save or WriteFile to store it.
//
// Set returns ErrInvalidKey or ErrNotPortable (wrapped) for what cannot be
// written, and an error and no change if the edited file would read
// differently anywhere else.
func (f *File) Set(key, value string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	text, err := Quoted(value)
	if err != nil {
		return fmt.Errorf("set %s: %w", key, err)
	}
	i := f.last(key)
	if i >= 0 && !f.entries[i].why.nodeRead && f.entries[i].span.sepEnd >= 0 {
		return fmt.Errorf("set %s: node dotenv does not read line %d as %s (see Lint); fix the file by hand", key, f.entries[i].Line, key)
	}
	if n, ok := f.node[key]; ok && (i < 0 || n.line != f.entries[i].Line) {
		return fmt.Errorf("set %s: node dotenv reads %s from line %d, which Ruby dotenv does not take as an assignment; fix that line by hand", key, key, n.line)
	}
	var candidates [][]byte
	want := f.entries
	if i >= 0 {
		sp := f.entries[i].span
		if sp.sepEnd < 0 { // a key alone on its line
			text = "=" + text
		}
		candidates = append(candidates, applyEdits(f.data, []edit{{f.scan.pos[sp.valStart], f.scan.pos[sp.valEnd], text}}))
	} else {
		// A last line "KEY:" would take the next line as its value: a
		// blank line in between keeps it empty.
		candidates = append(candidates, f.appendLine(key+"="+text, false), f.appendLine(key+"="+text, true))
		want = append(want[:len(want):len(want)], Entry{Key: key})
		i = len(want) - 1
	}
	failed := errChangesOthers
	for _, data := range candidates {
		g, err := parse(f.name, data, f.cfg)
		switch {
		case err != nil:
			failed = err
		case sameLines(want, g.entries, i) == nil && sameNode(f.node, g.node, key) &&
			g.entries[i].Value == value && g.entries[i].NodeValue == value &&
			g.entries[i].why.nodeRead && g.node[key].value == value:
			*f = *g
			return nil
		}
	}
	return fmt.Errorf("set %s: %w", key, failed)
}

// Delete removes every assignment of key, each with its whole lines
// (including a comment on the same line). Other lines are kept byte for
// byte. Deleting a key that is not set does nothing. Values elsewhere that
// expand $key change, as they would for Rails.
func (f *File) Delete(key string) error {
	var want []Entry
	var edits []edit
	for _, e := range f.entries {
		if e.Key == key {
			edits = append(edits, edit{f.scan.pos[e.span.start], f.scan.pos[e.span.end], ""})
		} else {
			want = append(want, e)
		}
	}
	data := applyEdits(f.data, edits)
	if len(want) == len(f.entries) {
		if _, ok := f.node[key]; !ok {
			return nil
		}
	}
	g, err := parse(f.name, data, f.cfg)
	if err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if err := sameLines(want, g.entries, -1); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if _, ok := g.node[key]; ok || !sameNode(f.node, g.node, key) {
		return fmt.Errorf("delete %s: %w", key, errChangesOthers)
	}
	*f = *g
	return nil
}

// sameLines checks that got holds the entries of want, as written, except
// the one at index skip.
func sameLines(want, got []Entry, skip int) error {
	if len(want) != len(got) {
		return errChangesOthers
	}
	for i := range want {
		w, g := want[i], got[i]
		if w.Key != g.Key {
			return errChangesOthers
		}
		if i != skip && (w.Raw != g.Raw || w.Quote != g.Quote || w.Export != g.Export ||
			w.NodeValue != g.NodeValue || w.why.nodeRead != g.why.nodeRead) {
			return errChangesOthers
		}
	}
	return nil
}

// sameNode reports whether node dotenv reads the same for every key but key.
func sameNode(a, b map[string]nodeMatchAt, key string) bool {
	eq := func(a, b map[string]nodeMatchAt) bool {
		for k, v := range a {
			if w, ok := b[k]; k != key && (!ok || w.value != v.value) {
				return false
			}
		}
		return true
	}
	return eq(a, b) && eq(b, a)
}

// edit replaces data[from:to] with text.
type edit struct {
	from, to int
	text     string
}

// applyEdits returns a copy of data with the edits applied; they must not
// overlap.
func applyEdits(data []byte, edits []edit) []byte {
	slices.SortFunc(edits, func(a, b edit) int { return a.from - b.from })
	out := make([]byte, 0, len(data))
	at := 0
	for _, e := range edits {
		out = append(append(out, data[at:e.from]...), e.text...)
		at = e.to
	}
	return append(out, data[at:]...)
}

// appendLine adds line at the end, after a line break if the file lacks
// one, using the file's own line ending (\r\n, \n or an old Mac's \r).
func (f *File) appendLine(line string, blank bool) []byte {
	eol := "\n"
	if bytes.Contains(f.data, []byte("\r\n")) {
		eol = "\r\n"
	} else if bytes.Contains(f.data, []byte("\r")) {
		eol = "\r" // "\n" after a last "\r" would make one line break of both
	}
	data := bytes.Clone(f.data)
	body := bytes.TrimPrefix(data, bom)
	if n := len(body); n > 0 && body[n-1] != '\n' && body[n-1] != '\r' {
		data = append(data, eol...)
	}
	if blank {
		data = append(data, eol...)
	}
	return append(append(data, line...), eol...)
}
