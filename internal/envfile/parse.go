package envfile

import (
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"
)

// The two line patterns below are the ones the readers use, translated to
// Go's syntax. Go's regexp picks the same match and submatches as a
// backtracking engine would (leftmost-first), so scanning a file with them
// finds exactly the assignments Ruby and node find.
//
// rubyLine is Dotenv::Parser::LINE of Ruby dotenv 3.1.5 to 3.2.0. Ruby's \s
// is ASCII whitespace including \v; its ^ and $ always match at line breaks.
//
// nodeLine is LINE of node dotenv 16.5 (lib/main.js). JavaScript's \s also
// holds the Unicode spaces; node requires a separator, allows '-' in keys and
// knows backtick quotes.
const (
	rubySpace = `[\t\n\v\f\r ]`
	jsSpace   = `[\t\n\v\f\r \x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}\x{feff}]`
)

var (
	rubyLine = regexp.MustCompile(strings.ReplaceAll(
		`(?m)^\s*(?P<export>export\s+)?(?P<key>[\w.]+)(?:(?P<sep>\s*=\s*?|:\s+?)`+
			`(?P<value>\s*'(?:\\'|[^'])*'|\s*"(?:\\"|[^"])*"|[^#\n]+)?)?\s*(?:#.*)?$`,
		`\s`, rubySpace))
	nodeLine = regexp.MustCompile(strings.ReplaceAll(
		`(?m)^\s*(?:export\s+)?(?P<key>[\w.-]+)(?P<sep>\s*=\s*?|:\s+?)`+
			`(?P<value>\s*'(?:\\'|[^'])*'|\s*"(?:\\"|[^"])*"|\s*`+"`(?:\\\\`|[^`])*`"+`|[^#\r\n]+)?\s*(?:#.*)?$`,
		`\s`, jsSpace))

	rubyExport = rubyLine.SubexpIndex("export")
	rubyKey    = rubyLine.SubexpIndex("key")
	rubySep    = rubyLine.SubexpIndex("sep")
	rubyValue  = rubyLine.SubexpIndex("value")
	nodeKey    = nodeLine.SubexpIndex("key")
	nodeValue  = nodeLine.SubexpIndex("value")
)

// linebreakKey switches Ruby dotenv's handling of \n in double quotes.
const linebreakKey = "DOTENV_LINEBREAK_MODE"

var bom = []byte("\uFEFF")

// span locates an entry in the normalized text (see scanner.norm).
type span struct {
	start    int // start of the first line (of "export" or of the key)
	keyStart int
	sepEnd   int // -1 without a separator
	valStart int // the value's text, without surrounding whitespace but with any NUL; valStart == valEnd when empty
	valEnd   int
	end      int // after the newline that ends the entry's last line
}

// detail records why Ruby's reading of an entry may differ from node's;
// Lint turns it into words.
type detail struct {
	refs          []varRef
	commands      []string // $(...) that Ruby dotenv would run
	escapedDollar bool     // \$ read as $ by Ruby
	newlineEscape bool     // \n or \r in double quotes: node makes it a control character, Ruby (strict) does not
	backslash     bool     // other backslashes, removed by Ruby
	noSeparator   bool     // a key alone on its line
	hashCut       bool     // an unquoted value cut by a '#' right after it
	nodeRead      bool     // node dotenv reads the same line as this key
	nodeOpenQuote bool     // node dotenv sees a quote that nothing closes
	escapedClose  bool     // a quoted value ends in \ before its closing quote
}

type refSource int

const (
	refUnset refSource = iota
	refEnv
	refLine
)

// varRef is one $NAME or ${NAME} that Ruby dotenv expanded.
type varRef struct {
	name   string
	source refSource
	line   int // for refLine
	value  string
}

type assigned struct {
	value string
	line  int
}

type nodeMatch struct {
	key, value string
	openQuote  bool // the value starts with a quote that node finds no end for
}

// scanner reads one file. Like both readers it first turns \r\n and lone \r
// into \n; pos maps the normalized offsets back to the original bytes so
// that edits can keep every other byte.
type scanner struct {
	name   string
	norm   []byte
	pos    []int
	lines  []int // offsets of line starts in norm
	lookup func(string) (string, bool)
	hash   map[string]assigned // Ruby's @hash: what earlier lines assigned
}

func newScanner(name string, data []byte, lookup func(string) (string, bool)) *scanner {
	s := &scanner{name: name, lookup: lookup, hash: map[string]assigned{}}
	base := 0
	if bytes.HasPrefix(data, bom) { // Ruby opens the file with "bom|utf-8"
		base = len(bom)
	}
	body := data[base:]
	s.norm = make([]byte, 0, len(body))
	s.pos = make([]int, 0, len(body)+1)
	s.lines = []int{0}
	for i := 0; i < len(body); i++ {
		s.pos = append(s.pos, base+i)
		c := body[i]
		if c == '\r' {
			c = '\n'
			if i+1 < len(body) && body[i+1] == '\n' {
				i++
			}
		}
		s.norm = append(s.norm, c)
		if c == '\n' {
			s.lines = append(s.lines, len(s.norm))
		}
	}
	s.pos = append(s.pos, len(data))
	return s
}

// lineOf returns the 1-based line number of a normalized offset.
func (s *scanner) lineOf(off int) int {
	return sort.Search(len(s.lines), func(i int) bool { return s.lines[i] > off })
}

// lineStart returns the offset of the start of the line holding off.
func (s *scanner) lineStart(off int) int {
	return s.lines[s.lineOf(off)-1]
}

// lineEnd returns the offset just after the newline ending the line holding off.
func (s *scanner) lineEnd(off int) int {
	if i := bytes.IndexByte(s.norm[off:], '\n'); i >= 0 {
		return off + i + 1
	}
	return len(s.norm)
}

func (s *scanner) errorf(off int, format string, args ...any) error {
	return &ParseError{File: s.name, Line: s.lineOf(off), Reason: fmt.Sprintf(format, args...)}
}

// checkText rejects what neither reader can be trusted with.
func (s *scanner) checkText() error {
	for i := 0; i < len(s.norm); {
		r, n := utf8.DecodeRune(s.norm[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			return s.errorf(i, "invalid UTF-8 (Ruby dotenv refuses to load the file)")
		case r == '\u2028' || r == '\u2029':
			return s.errorf(i, "character U+%04X is a line break for node dotenv but not for Ruby dotenv", r)
		}
		i += n
	}
	return nil
}

// parse reads data as both readers do and returns the entries Ruby dotenv
// assigns, each with node dotenv's reading of the same line.
func parse(name string, data []byte, lookup func(string) (string, bool)) (*File, error) {
	s := newScanner(name, data, lookup)
	if err := s.checkText(); err != nil {
		return nil, err
	}
	entries, err := s.ruby()
	if err != nil {
		return nil, err
	}
	byStart, nodeMap := s.node()
	for i := range entries {
		e := &entries[i]
		if m, ok := byStart[e.span.keyStart]; ok && m.key == e.Key {
			e.NodeValue = m.value
			e.why.nodeRead = true
			e.why.nodeOpenQuote = m.openQuote
		}
	}
	return &File{name: name, data: data, entries: entries, node: nodeMap, lookup: lookup, scan: s}, nil
}

// ruby scans the text as Dotenv::Parser#call does.
func (s *scanner) ruby() ([]Entry, error) {
	var entries []Entry
	prev := 0
	for _, m := range rubyLine.FindAllSubmatchIndex(s.norm, -1) {
		if err := s.checkGap(prev, m[0]); err != nil {
			return nil, err
		}
		prev = m[1]
		e, ok, err := s.rubyEntry(m)
		if err != nil {
			return nil, err
		}
		if ok {
			entries = append(entries, e)
		}
	}
	if err := s.checkGap(prev, len(s.norm)); err != nil {
		return nil, err
	}
	return entries, nil
}

// checkGap reports a line between two assignments that is neither blank nor
// a comment: Ruby dotenv skips such a line without a word.
func (s *scanner) checkGap(from, to int) error {
	for off := from; off < to; {
		end := bytes.IndexByte(s.norm[off:to], '\n')
		if end < 0 {
			end = to - off
		}
		line := strings.TrimLeft(string(s.norm[off:off+end]), "\t\v\f ")
		if line != "" && line[0] != '#' {
			return s.errorf(off, "%s", badLineReason(line))
		}
		off += end + 1
	}
	return nil
}

var (
	colonNoSpace = regexp.MustCompile(`^(?:export\s+)?[\w.]+:[^\s]`)
	looksLikeKey = regexp.MustCompile(`^(?:export\s+)?[^\s=:#]+\s*(?:=|:\s)`)
)

func badLineReason(line string) string {
	switch {
	case colonNoSpace.MatchString(line):
		return "a ':' after the key needs a space after it (KEY: value), or write KEY=value (Ruby dotenv skips this line)"
	case looksLikeKey.MatchString(line):
		return "invalid key: use only ASCII letters, digits, '_' and '.' (Ruby dotenv skips this line)"
	}
	return "not a KEY=value line (Ruby dotenv skips it)"
}

func (s *scanner) rubyEntry(m []int) (Entry, bool, error) {
	group := func(i int) (int, int) { return m[2*i], m[2*i+1] }
	ks, ke := group(rubyKey)
	key := string(s.norm[ks:ke])
	xs, _ := group(rubyExport)
	_, sepEnd := group(rubySep)
	vs, ve := group(rubyValue)
	start := ks
	if xs >= 0 {
		start = xs
	}
	line := s.lineOf(ks)

	if xs >= 0 && vs < 0 {
		// "export KEY" without a value only checks that KEY is set.
		if _, ok := s.hash[key]; ok {
			return Entry{}, false, nil
		}
		if _, ok := s.env(key); ok && key != linebreakKey {
			return Entry{}, false, nil
		}
		return Entry{}, false, s.errorf(ks, "export %s without a value, and %s is not set before this line (Ruby dotenv refuses to load the file)", key, key)
	}

	sp := span{start: s.lineStart(start), keyStart: ks, sepEnd: sepEnd}
	last := ke
	if sepEnd >= 0 {
		last = sepEnd
	}
	var raw string
	if vs >= 0 {
		capture := string(s.norm[vs:ve])
		raw = strings.Trim(capture, rubyStrip)
		text := strings.TrimLeft(capture, asciiSpace)
		sp.valStart = vs + len(capture) - len(text)
		if text == "" {
			sp.valStart = vs
		}
		sp.valEnd = sp.valStart + len(strings.TrimRight(text, asciiSpace))
		last = ve
	} else {
		sp.valStart, sp.valEnd = last, last
	}
	sp.end = s.lineEnd(last - 1)

	if raw != "" && (raw[0] == '\'' || raw[0] == '"') && !isQuoted(raw) {
		kind := "double"
		if raw[0] == '\'' {
			kind = "single"
		}
		if strings.IndexByte(raw[1:], raw[0]) >= 0 {
			return Entry{}, false, s.errorf(ks, "text after the closing %s quote of %s", kind, key)
		}
		return Entry{}, false, s.errorf(ks, "unterminated %s quote in the value of %s", kind, key)
	}

	value, quote, why := s.rubyValue(raw)
	why.noSeparator = sepEnd < 0
	why.escapedClose = quote != NoQuote && strings.HasSuffix(raw[:len(raw)-1], `\`)
	why.hashCut = quote == NoQuote && s.cutByHash(sp, vs, ve)
	s.hash[key] = assigned{value: value, line: line}
	return Entry{
		Key:      key,
		Value:    value,
		Raw:      raw,
		Quote:    quote,
		Line:     line,
		Export:   xs >= 0,
		Commands: why.commands,
		span:     sp,
		why:      why,
	}, true, nil
}

// rubyStrip is what Ruby's String#strip removes; asciiSpace is the part of
// it that node dotenv's trim removes too.
const (
	rubyStrip  = "\x00\t\n\v\f\r "
	asciiSpace = "\t\n\v\f\r "
)

// isQuoted reports whether v matches Ruby's QUOTED_STRING, /\A(['"])(.*)\1\z/m.
func isQuoted(v string) bool {
	return len(v) >= 2 && (v[0] == '\'' || v[0] == '"') && v[len(v)-1] == v[0]
}

// cutByHash reports an unquoted value followed directly by '#': both
// readers end the value there, which is rarely what was meant.
func (s *scanner) cutByHash(sp span, vs, ve int) bool {
	at := ve
	if vs < 0 {
		if sp.sepEnd < 0 {
			return false
		}
		at = sp.sepEnd
	} else if ve > vs && strings.ContainsRune(rubyStrip, rune(s.norm[ve-1])) {
		return false
	}
	return at < len(s.norm) && s.norm[at] == '#'
}

func (s *scanner) env(name string) (string, bool) {
	if s.lookup == nil {
		return "", false
	}
	return s.lookup(name)
}

// rubyValue is Dotenv::Parser#parse_value, with the substitutions of 3.2.0
// (commands first, then variables), except that commands are not run.
func (s *scanner) rubyValue(raw string) (string, Quote, *detail) {
	why := &detail{}
	v, quote := raw, NoQuote
	if isQuoted(v) {
		quote = quoteKind(v[0])
		v = v[1 : len(v)-1]
	}
	if quote == SingleQuote {
		return v, quote, why
	}
	s.noteBackslashes(v, quote, why)
	if quote == DoubleQuote {
		if s.legacyLinebreaks() {
			v = strings.ReplaceAll(strings.ReplaceAll(v, `\n`, "\n"), `\r`, "\r")
		} else {
			// Ruby replaces \n by \\n, which unescaping turns back into \n.
			v = strings.ReplaceAll(strings.ReplaceAll(v, `\n`, `\\n`), `\r`, `\\r`)
		}
	}
	return s.substitute(unescape(v), why), quote, why
}

func quoteKind(c byte) Quote {
	if c == '\'' {
		return SingleQuote
	}
	return DoubleQuote
}

func (s *scanner) legacyLinebreaks() bool {
	if a, ok := s.hash[linebreakKey]; ok {
		return a.value == "legacy"
	}
	v, _ := s.env(linebreakKey)
	return v == "legacy"
}

// noteBackslashes records, for Lint, the backslashes Ruby dotenv treats
// differently from node dotenv.
func (s *scanner) noteBackslashes(v string, quote Quote, why *detail) {
	for i := 0; i+1 < len(v); i++ {
		if v[i] != '\\' {
			continue
		}
		switch c := v[i+1]; {
		case c == '$':
			why.escapedDollar = true
		case quote == DoubleQuote && (c == 'n' || c == 'r'):
			why.newlineEscape = why.newlineEscape || !s.legacyLinebreaks()
		default:
			why.backslash = true
		}
		i++
	}
}

// unescape is Ruby's value.gsub(/\\([^$])/, '\1').
func unescape(v string) string {
	if !strings.Contains(v, `\`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) && v[i+1] != '$' {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// substitute applies Dotenv::Substitutions::Command and then ::Variable.
// A command is recorded and left in the value as written: it is never run.
func (s *scanner) substitute(v string, why *detail) string {
	var out, text strings.Builder
	for i := 0; i < len(v); {
		if v[i] == '\\' && strings.HasPrefix(v[i+1:], "$(") {
			if end := parenEnd(v, i+2); end > 0 { // escaped: drop the backslash
				text.WriteString(v[i+1 : end])
				why.escapedDollar = true
				i = end
				continue
			}
		}
		if strings.HasPrefix(v[i:], "$(") {
			if end := parenEnd(v, i+1); end > 0 {
				out.WriteString(s.expand(text.String(), why))
				text.Reset()
				out.WriteString(v[i:end])
				why.commands = append(why.commands, v[i+2:end-1])
				i = end
				continue
			}
		}
		text.WriteByte(v[i])
		i++
	}
	out.WriteString(s.expand(text.String(), why))
	return out.String()
}

// parenEnd returns the offset after the parenthesis closing the one at i,
// or -1. Like Ruby's \((?:[^()]|\g<cmd>)+\), every pair must hold something.
func parenEnd(s string, i int) int {
	var filled []bool // one per open parenthesis
	for j := i; j < len(s); j++ {
		switch s[j] {
		case '(':
			if n := len(filled); n > 0 {
				filled[n-1] = true
			}
			filled = append(filled, false)
		case ')':
			n := len(filled)
			if !filled[n-1] {
				return -1
			}
			filled = filled[:n-1]
			if n == 1 {
				return j + 1
			}
		default:
			filled[len(filled)-1] = true
		}
	}
	return -1
}

// expand is Dotenv::Substitutions::Variable: it replaces $NAME and ${NAME}
// (NAME of [A-Z0-9_], case-insensitive) and turns \$ into $.
func (s *scanner) expand(t string, why *detail) string {
	if !strings.Contains(t, "$") {
		return t
	}
	var out strings.Builder
	for i := 0; i < len(t); {
		start := i
		escaped := t[i] == '\\' && i+1 < len(t) && t[i+1] == '$'
		if escaped {
			i++
		}
		if t[i] != '$' || strings.HasPrefix(t[i+1:], "(") {
			out.WriteByte(t[start])
			i = start + 1
			continue
		}
		j := i + 1
		if j < len(t) && t[j] == '{' {
			j++
		}
		nameStart := j
		for j < len(t) {
			r, n := utf8.DecodeRuneInString(t[j:])
			if !isNameRune(r) {
				break
			}
			j += n
		}
		name := t[nameStart:j]
		if j < len(t) && t[j] == '}' {
			j++
		}
		switch {
		case escaped:
			out.WriteString(t[i:j])
			why.escapedDollar = true
		case name == "":
			out.WriteString(t[i:j])
		default:
			ref := s.lookupVar(name)
			why.refs = append(why.refs, ref)
			out.WriteString(ref.value)
		}
		i = j
	}
	return out.String()
}

// isNameRune reports whether Ruby's /[A-Z0-9_]/i matches r; case folding
// adds the long s and the Kelvin sign.
func isNameRune(r rune) bool {
	return r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' ||
		r == '\u017f' || r == '\u212a'
}

// lookupVar is Ruby's env[name] || ENV[name] || "": the hash of earlier
// lines holds the environment's value for every key the environment has
// (it wins over the file), except DOTENV_LINEBREAK_MODE.
func (s *scanner) lookupVar(name string) varRef {
	if name != linebreakKey {
		if v, ok := s.env(name); ok {
			return varRef{name: name, source: refEnv, value: v}
		}
	}
	if a, ok := s.hash[name]; ok {
		return varRef{name: name, source: refLine, line: a.line, value: a.value}
	}
	if v, ok := s.env(name); ok {
		return varRef{name: name, source: refEnv, value: v}
	}
	return varRef{name: name, source: refUnset}
}

// node scans the text as node dotenv 16.5's parse does. It returns node's
// reading keyed by the offset of each key, and the resulting object.
func (s *scanner) node() (map[int]nodeMatch, map[string]nodeMatchAt) {
	byStart := map[int]nodeMatch{}
	final := map[string]nodeMatchAt{}
	for _, m := range nodeLine.FindAllSubmatchIndex(s.norm, -1) {
		ks, ke := m[2*nodeKey], m[2*nodeKey+1]
		key := string(s.norm[ks:ke])
		var capture string
		if vs := m[2*nodeValue]; vs >= 0 {
			capture = string(s.norm[vs:m[2*nodeValue+1]])
		}
		if key == "__proto__" { // a JavaScript object does not store it
			continue
		}
		v := nodeRead(capture)
		t := strings.TrimFunc(capture, isJSSpace)
		open := t != "" && strings.IndexByte("'\"`", t[0]) >= 0 && (len(t) < 2 || t[len(t)-1] != t[0])
		byStart[ks] = nodeMatch{key: key, value: v, openQuote: open}
		final[key] = nodeMatchAt{value: v, line: s.lineOf(ks)}
	}
	return byStart, final
}

type nodeMatchAt struct {
	value string
	line  int
}

// nodeRead turns node's captured value into the value it stores.
func nodeRead(v string) string {
	v = strings.TrimFunc(v, isJSSpace)
	if v == "" {
		return v
	}
	maybeQuote := v[0]
	if len(v) >= 2 && strings.IndexByte("'\"`", v[0]) >= 0 && v[len(v)-1] == v[0] {
		v = v[1 : len(v)-1]
	}
	if maybeQuote == '"' {
		v = strings.ReplaceAll(strings.ReplaceAll(v, `\n`, "\n"), `\r`, "\r")
	}
	return v
}

// isJSSpace is JavaScript's String.prototype.trim set.
func isJSSpace(r rune) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', ' ', '\u00a0', '\u1680', '\u2028', '\u2029', '\u202f', '\u205f', '\u3000', '\ufeff':
		return true
	}
	return r >= '\u2000' && r <= '\u200a'
}
