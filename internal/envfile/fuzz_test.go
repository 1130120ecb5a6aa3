package envfile

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParse checks, under each Ruby dotenv release, that Parse, Lint and
// Redacted never panic, that Set gives back the value for both readers
// while keeping every other byte, and that Delete removes the key and
// nothing else.
func FuzzParse(f *testing.F) {
	for _, s := range []string{seedPuma, seedStreaming, seedPostgres, seedObjectStore, seedFile,
		"A=\"l1\\nl2\"\r\nexport B='x'\n# c\nC=$A${B}\\$D $(date)\n", "A:\n", "K\nL=`x`\n", "\uFEFFA=1"} {
		for rel := range uint8(4) {
			f.Add([]byte(s), "DB_PASS", "Ourpassw0rd!sNoneofyourbu$iness", rel)
			f.Add([]byte(s), "A", "it's \"x\"", rel)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, key, value string, rel uint8) {
		d := []Dotenv{Dotenv32, Dotenv31, Dotenv28, Dotenv24}[rel%4]
		file, err := Parse("fuzz.env", data, noEnv, WithDotenv(d))
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line < 1 {
				t.Fatalf("Parse: %v", err)
			}
			return
		}
		_ = Lint(file)
		_ = file.Redacted()
		checkDelete(t, data, key, d)
		checkSet(t, file, key, value)
	})
}

func checkSet(t *testing.T, file *File, key, value string) {
	before := file.Bytes()
	old, existed := file.Lookup(key)
	oldPos := file.scan.pos
	err := file.Set(key, value)
	if err != nil {
		if !bytes.Equal(file.Bytes(), before) {
			t.Fatalf("a failed Set changed the file")
		}
		if errors.Is(err, ErrInvalidKey) || errors.Is(err, ErrNotPortable) || !readersAgree(file) {
			return
		}
		t.Fatalf("Set(%q, %q): %v", key, value, err)
	}
	after := file.Bytes()
	g, err := Parse("fuzz.env", after, noEnv, WithDotenv(file.Dotenv()))
	if err != nil {
		t.Fatalf("the file Set wrote does not parse: %v\n%q", err, after)
	}
	e, ok := g.Lookup(key)
	if !ok || e.Value != value || e.NodeValue != value || g.node[key].value != value {
		t.Fatalf("Set(%q, %q): Ruby reads %q, node %q (final %q)\n%q", key, value, e.Value, e.NodeValue, g.node[key].value, after)
	}
	if !existed {
		if !bytes.HasPrefix(after, before) {
			t.Fatalf("appending changed the file before its end")
		}
		return
	}
	from, to := oldPos[old.span.start], oldPos[old.span.end] // the old entry's lines
	if !bytes.HasPrefix(after, before[:from]) || !bytes.HasSuffix(after, before[to:]) {
		t.Fatalf("Set changed bytes outside the lines of %s", key)
	}
}

func checkDelete(t *testing.T, data []byte, key string, d Dotenv) {
	file, err := Parse("fuzz.env", data, noEnv, WithDotenv(d))
	if err != nil {
		t.Fatal(err)
	}
	want := file.Map()
	delete(want, key)
	if err := file.Delete(key); err != nil {
		if !bytes.Equal(file.Bytes(), data) {
			t.Fatalf("a failed Delete changed the file")
		}
		var pe *ParseError
		if errors.As(err, &pe) || !readersAgree(file) {
			return // an "export KEY" line needs the key, or the readers disagree already
		}
		t.Fatalf("Delete(%q): %v", key, err)
	}
	if _, ok := file.Get(key); ok {
		t.Fatalf("Delete(%q) left the key", key)
	}
	if _, ok := file.node[key]; ok {
		t.Fatalf("Delete(%q) left the key for node dotenv", key)
	}
	if len(file.Bytes()) > len(data) {
		t.Fatalf("Delete(%q) added bytes", key)
	}
}

// readersAgree reports whether both readers see the same assignments on the
// same lines, with no quote left open for one of them and no line that
// Ruby skips (a last line "KEY:" becomes an assignment once a line follows
// it): in such a file, Set and Delete must succeed.
func readersAgree(f *File) bool {
	if len(f.skipped) > 0 {
		return false
	}
	lines := map[string]int{}
	for _, e := range f.entries {
		if !e.why.nodeRead || e.why.nodeOpenQuote || e.why.escapedClose {
			return false
		}
		lines[e.Key] = e.Line
	}
	if len(lines) != len(f.node) {
		return false
	}
	for k, n := range f.node {
		if lines[k] != n.line {
			return false
		}
	}
	return true
}
