package envfile

import (
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"
)

// The line patterns below are the ones the readers use, translated to Go's
// syntax. Go's regexp picks the same match and submatches as a
// backtracking engine would (leftmost-first), so scanning a file with them
// finds exactly the assignments Ruby and node find.
//
// Ruby's \s is ASCII whitespace including \v; its ^ and $ match at line
// breaks (\n) only. JavaScript's \s also holds the Unicode spaces, and its
// ^, $ and . also treat U+2028 and U+2029 as line breaks: node's pattern
// is applied at each of those line starts in turn (see scanner.node).
const (
	rubySpace  = `[\t\n\v\f\r ]`
	jsSpace    = `[\t\n\v\f\r \x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}\x{feff}]`
	jsLineEnd  = `[\n\x{2028}\x{2029}]` // after node's \r\n and \r became \n
	jsNotBreak = `[^\n\r\x{2028}\x{2029}]`
)

var (
	// ruby3Line is Dotenv::Parser::LINE of Ruby dotenv 3.1.5 to 3.2.0.
	ruby3Line = rubyPattern(`(?m)^\s*(?P<export>export\s+)?(?P<key>[\w.]+)(?:(?P<sep>\s*=\s*?|:\s+?)` +
		`(?P<value>\s*'(?:\\'|[^'])*'|\s*"(?:\\"|[^"])*"|[^#\n]+)?)?\s*(?:#.*)?$`)

	// ruby28Line is LINE of 2.7.1 to 2.8.1: the separator is required.
	// (Its export group is not a group there; capturing changes nothing.)
	ruby28Line = rubyPattern(`(?m)^\s*(?P<export>export\s+)?(?P<key>[\w.]+)(?P<sep>\s*=\s*?|:\s+?)` +
		`(?P<value>\s*'(?:\\'|[^'])*'|\s*"(?:\\"|[^"])*"|[^#\r\n]+)?\s*(?:#.*)?$`)

	// ruby24Line is LINE of 2.4.0, matched against one line at a time.
	// In Ruby's extended syntax \' is ', so a quoted value is any text
	// between the first quote and the last one that lets the rest match.
	ruby24Line = rubyPattern(`\A\s*(?P<export>export\s+)?(?P<key>[\w.]+)(?P<sep>\s*=\s*|:\s+?)` +
		`(?P<value>'(?:'|[^'])*'|"(?:"|[^"])*"|[^#\n]+)?\s*(?:#.*)?\z`)

	// nodeLine is LINE of node dotenv 16.5 (lib/main.js), anchored at a
	// line start; its $ is the final group, which holds the line break
	// that JavaScript's $ only looks at.
	nodeLine = regexp.MustCompile(strings.NewReplacer(`\s`, jsSpace, `.*`, jsNotBreak+`*`).Replace(
		`\A\s*(?:export\s+)?(?P<key>[\w.-]+)(?P<sep>\s*=\s*?|:\s+?)`+
			`(?P<value>\s*'(?:\\'|[^'])*'|\s*"(?:\\"|[^"])*"|\s*`+"`(?:\\\\`|[^`])*`"+`|[^#\r\n]+)?\s*(?:#.*)?`) +
		`(?:\z|(?P<eol>` + jsLineEnd + `))`)

	nodeKey   = nodeLine.SubexpIndex("key")
	nodeValue = nodeLine.SubexpIndex("value")
	nodeEOL   = nodeLine.SubexpIndex("eol")
)

func rubyPattern(p string) *rubyLine {
	re := regexp.MustCompile(strings.ReplaceAll(p, `\s`, rubySpace))
	return &rubyLine{re, re.SubexpIndex("export"), re.SubexpIndex("key"), re.SubexpIndex("sep"), re.SubexpIndex("value")}
}

// rubyLine is a line pattern with the indexes of its groups.
type rubyLine struct {
	re                      *regexp.Regexp
	export, key, sep, value int
}

// linebreakKey switches Ruby dotenv 3's handling of \n in double quotes.
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
	refs            []varRef
	escapedDollar   bool // \$ read as $ by Ruby
	newlineEscape   bool // \n or \r in double quotes: node makes it a control character, Ruby 3 (strict) does not
	backslash       bool // other backslashes, removed by Ruby
	noSeparator     bool // a key alone on its line
	hashCut         bool // an unquoted value cut by a '#' right after it
	nodeRead        bool // node dotenv reads the same line as this key
	nodeOpenQuote   bool // node dotenv sees a quote that nothing closes
	escapedClose    bool // a quoted value ends in \ before its closing quote
	openQuote       bool // Ruby reads an unquoted value that starts with a quote it never closes
	shadowed        bool // Ruby dotenv 3 does not read the line: the environment sets the key
	nameIntoCommand bool // 3.2 without running commands: a $NAME runs into a command's output
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

// assigned is what an earlier line gave a key: Ruby's @hash.
type assigned struct {
	value    string
	line     int
	commands []string
}

type nodeMatch struct {
	key, value string
	openQuote  bool // the value starts with a quote that node finds no end for
	valStart   int  // where the value's text starts and ends in the normalized text
	valEnd     int
}

// skippedLine is a line that is neither blank, a comment nor an
// assignment for Ruby dotenv: it ignores it.
type skippedLine struct {
	line   int
	reason string
	key    string // the key node dotenv reads from this line, if any
}

// scanner reads one file. Like both readers it first turns \r\n and lone \r
// into \n; pos maps the normalized offsets back to the original bytes so
// that edits can keep every other byte.
type scanner struct {
	name  string
	norm  []byte
	pos   []int
	lines []int // offsets of line starts in norm
	ev    *evaluator
}

func newScanner(name string, data []byte) *scanner {
	s := &scanner{name: name}
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

func (s *scanner) errorf(off int, format string, args ...any) *ParseError {
	return &ParseError{File: s.name, Line: s.lineOf(off), Reason: fmt.Sprintf(format, args...)}
}

// checkText rejects what Ruby dotenv refuses to read.
func (s *scanner) checkText() error {
	if utf8.Valid(s.norm) {
		return nil
	}
	for i := 0; i < len(s.norm); {
		r, n := utf8.DecodeRune(s.norm[i:])
		if r == utf8.RuneError && n == 1 {
			return s.errorf(i, "invalid UTF-8 (Ruby dotenv refuses to load the file)")
		}
		i += n
	}
	return nil
}

// parse reads data as the Ruby dotenv release of c and node dotenv do and
// returns the entries Ruby dotenv assigns, each with node dotenv's reading
// of the same line.
func parse(name string, data []byte, c config) (*File, error) {
	s := newScanner(name, data)
	if err := s.checkText(); err != nil {
		return nil, err
	}
	s.ev = newEvaluator(c, s.norm)
	var entries []Entry
	var skipped []skippedLine
	var err error
	switch c.dotenv {
	case Dotenv28:
		entries, skipped, err = s.ruby28()
	case Dotenv24:
		entries, skipped, err = s.ruby24()
	default:
		entries, skipped, err = s.ruby3()
	}
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
	for i := range skipped {
		for ks, m := range byStart {
			if s.lineOf(ks) == skipped[i].line {
				skipped[i].key = m.key
			}
		}
	}
	return &File{name: name, data: data, entries: entries, skipped: skipped, node: nodeMap, nodeSpans: byStart, cfg: c, scan: s}, nil
}

// ruby3 scans the text as Dotenv::Parser#call of 3.x does.
func (s *scanner) ruby3() ([]Entry, []skippedLine, error) {
	var entries []Entry
	var skipped []skippedLine
	prev := 0
	for _, m := range ruby3Line.re.FindAllSubmatchIndex(s.norm, -1) {
		skipped = append(skipped, s.gap(prev, m[0])...)
		prev = m[1]
		g := groups(ruby3Line, m)
		key := string(s.norm[g.ks:g.ke])
		shadowed := s.ev.existing(key)
		if shadowed {
			// Ruby takes the environment's value and does not read the line.
			s.ev.hash[key] = assigned{value: s.ev.envValue(key), line: s.lineOf(g.ks)}
		}
		if g.xs >= 0 && g.vs < 0 {
			// "export KEY" without a value only checks that KEY is set.
			if _, ok := s.ev.hash[key]; !ok {
				return nil, nil, s.errorf(g.ks, "export %s without a value, and %s is not set before this line (%s refuses to load the file)", key, key, s.ev.rel)
			}
			continue
		}
		e, err := s.entry(g, shadowed)
		if err != nil {
			return nil, nil, err
		}
		entries = append(entries, e)
	}
	return entries, append(skipped, s.gap(prev, len(s.norm))...), nil
}

// ruby28 scans the text as Dotenv::Parser#call of 2.8 does: every
// assignment first, then each other line that starts with "export" checks
// that the keys after it are assigned somewhere in the file.
func (s *scanner) ruby28() ([]Entry, []skippedLine, error) {
	var entries []Entry
	var skipped []skippedLine
	prev := 0
	for _, m := range ruby28Line.re.FindAllSubmatchIndex(s.norm, -1) {
		skipped = append(skipped, s.gap(prev, m[0])...)
		prev = m[1]
		e, err := s.entry(groups(ruby28Line, m), false)
		if err != nil {
			return nil, nil, err
		}
		entries = append(entries, e)
	}
	skipped = append(skipped, s.gap(prev, len(s.norm))...)
	var kept []skippedLine
	for _, sk := range skipped {
		if sk.reason != exportCheck {
			kept = append(kept, sk)
			continue
		}
		if err := s.exportCheck(sk.line); err != nil {
			return nil, nil, err
		}
	}
	return entries, kept, nil
}

// ruby24 reads the text line by line as Dotenv::Parser#call of 2.4 does.
func (s *scanner) ruby24() ([]Entry, []skippedLine, error) {
	var entries []Entry
	var skipped []skippedLine
	for i, start := range s.lines {
		end := len(s.norm)
		if i+1 < len(s.lines) {
			end = s.lines[i+1] - 1
		}
		if start >= end {
			continue
		}
		m := ruby24Line.re.FindSubmatchIndex(s.norm[start:end])
		if m == nil {
			sk := s.gap(start, end)
			for _, l := range sk {
				if l.reason != exportCheck {
					skipped = append(skipped, l)
				} else if err := s.exportCheck(l.line); err != nil {
					return nil, nil, err
				}
			}
			continue
		}
		for j := range m {
			if m[j] >= 0 {
				m[j] += start
			}
		}
		e, err := s.entry(groups(ruby24Line, m), false)
		if err != nil {
			return nil, nil, err
		}
		entries = append(entries, e)
	}
	return entries, skipped, nil
}

// exportCheck is Ruby dotenv 2's check of a line "export A B": every key
// after "export" must be assigned in the file (2.8: anywhere in it; 2.4:
// on an earlier line).
func (s *scanner) exportCheck(line int) error {
	start := s.lines[line-1]
	words := rubyFields(string(s.norm[start:s.lineEnd(start)]))
	for _, w := range words[1:] {
		if _, ok := s.ev.hash[w]; !ok {
			where := "in the file"
			if s.ev.rel == Dotenv24 {
				where = "before this line"
			}
			return s.errorf(start, "%q after export is not assigned %s (%s refuses to load the file)", w, where, s.ev.rel)
		}
	}
	return nil
}

// rubyFields is Ruby's String#split without arguments.
func rubyFields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(asciiSpace, r) })
}

// exportCheck marks a skipped line that Ruby dotenv 2 takes as a check.
const exportCheck = "export check"

// gap returns the lines between two assignments that are neither blank
// nor a comment: Ruby dotenv skips them without a word, except lines
// starting with "export" in dotenv 2, which it takes as checks.
func (s *scanner) gap(from, to int) []skippedLine {
	var out []skippedLine
	for off := from; off < to; {
		end := bytes.IndexByte(s.norm[off:to], '\n')
		if end < 0 {
			end = to - off
		}
		line := strings.TrimLeft(string(s.norm[off:off+end]), "\t\v\f\r ")
		if line != "" && line[0] != '#' {
			reason := s.badLineReason(line)
			if !s.ev.rel.v3() {
				if w := rubyFields(line); w[0] == "export" {
					reason = exportCheck
				}
			}
			out = append(out, skippedLine{line: s.lineOf(off), reason: reason})
		}
		off += end + 1
	}
	return out
}

var (
	colonNoSpace = regexp.MustCompile(`^(?:export\s+)?[\w.]+:[^\s]`)
	looksLikeKey = regexp.MustCompile(`^(?:export\s+)?[^\s=:#]+\s*(?:=|:\s)`)
	bareKey      = regexp.MustCompile(`^(?:export\s+)?[\w.]+\s*(?:#.*)?$`)
)

// The reasons a line is skipped.
const (
	reasonColon      = "a ':' after the key needs a space after it (KEY: value), or write KEY=value"
	reasonBareKey    = "a key without '=' or ':'"
	reasonInvalidKey = "invalid key: only ASCII letters, digits, '_' and '.' make a key"
	reasonNotKey     = "not a KEY=value line"
)

func (s *scanner) badLineReason(line string) string {
	switch {
	case colonNoSpace.MatchString(line):
		return reasonColon
	case bareKey.MatchString(line):
		return reasonBareKey
	case looksLikeKey.MatchString(line):
		return reasonInvalidKey
	}
	return reasonNotKey
}

// match holds the group offsets of one line match; -1 when absent.
type match struct {
	start, end, xs, ks, ke, sepEnd, vs, ve int
}

func groups(p *rubyLine, m []int) match {
	return match{start: m[0], end: m[1], xs: m[2*p.export], ks: m[2*p.key], ke: m[2*p.key+1],
		sepEnd: m[2*p.sep+1], vs: m[2*p.value], ve: m[2*p.value+1]}
}

// entry reads one assignment. A shadowed one (dotenv 3, the environment
// sets the key) is read without running anything and without changing
// what later lines see.
func (s *scanner) entry(g match, shadowed bool) (Entry, error) {
	key := string(s.norm[g.ks:g.ke])
	start := g.ks
	if g.xs >= 0 {
		start = g.xs
	}
	line := s.lineOf(g.ks)
	sp := span{start: s.lineStart(start), keyStart: g.ks, sepEnd: g.sepEnd}
	last := g.ke
	if g.sepEnd >= 0 {
		last = g.sepEnd
	}
	var raw string
	if g.vs >= 0 {
		capture := string(s.norm[g.vs:g.ve])
		raw = strings.Trim(capture, rubyStrip)
		text := strings.TrimLeft(capture, asciiSpace)
		sp.valStart = g.vs + len(capture) - len(text)
		if text == "" {
			sp.valStart = g.vs
		}
		sp.valEnd = sp.valStart + len(strings.TrimRight(text, asciiSpace))
		last = g.ve
	} else {
		sp.valStart, sp.valEnd = last, last
	}
	sp.end = s.lineEnd(last - 1)

	v, err := s.ev.value(raw, line, shadowed)
	if err != nil {
		pe := s.errorf(g.ks, "running the $(...) in the value of %s: %v", key, err)
		pe.Err = err
		return Entry{}, pe
	}
	why := v.why
	why.shadowed = shadowed
	why.noSeparator = g.sepEnd < 0
	why.escapedClose = v.quote != NoQuote && strings.HasSuffix(raw[:len(raw)-1], `\`)
	why.openQuote = v.quote == NoQuote && raw != "" && strings.IndexByte(`'"`, raw[0]) >= 0 && strings.IndexByte(raw[1:], raw[0]) < 0
	why.hashCut = v.quote == NoQuote && s.cutByHash(sp, g.vs, g.ve)
	if !shadowed {
		s.ev.hash[key] = assigned{value: v.value, line: line, commands: v.commands}
	}
	return Entry{
		Key:      key,
		Value:    v.rendered,
		Raw:      raw,
		Quote:    v.quote,
		Line:     line,
		Export:   g.xs >= 0,
		Commands: v.commands,
		span:     sp,
		why:      why,
	}, nil
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

// node scans the text as node dotenv 16.5's parse does: from each line
// start at or after the end of the last match, the first one where the
// pattern matches. It returns node's reading keyed by the offset of each
// key, and the resulting object.
func (s *scanner) node() (map[int]nodeMatch, map[string]nodeMatchAt) {
	byStart := map[int]nodeMatch{}
	final := map[string]nodeMatchAt{}
	last := 0
	for p := 0; p <= len(s.norm); {
		if p >= last {
			if m := nodeLine.FindSubmatchIndex(s.norm[p:]); m != nil {
				ks, ke := p+m[2*nodeKey], p+m[2*nodeKey+1]
				key := string(s.norm[ks:ke])
				var capture string
				vs, ve := -1, -1
				if m[2*nodeValue] >= 0 {
					vs, ve = p+m[2*nodeValue], p+m[2*nodeValue+1]
					capture = string(s.norm[vs:ve])
					vs += len(capture) - len(strings.TrimLeftFunc(capture, isJSSpace))
				}
				last = p + m[1]
				if m[2*nodeEOL] >= 0 {
					last = p + m[2*nodeEOL]
				}
				if key != "__proto__" { // a JavaScript object does not store it
					v := nodeRead(capture)
					t := strings.TrimFunc(capture, isJSSpace)
					open := t != "" && strings.IndexByte("'\"`", t[0]) >= 0 && strings.IndexByte(t[1:], t[0]) < 0
					if vs < 0 {
						vs, ve = ke, ke
					}
					byStart[ks] = nodeMatch{key: key, value: v, openQuote: open, valStart: vs, valEnd: ve}
					final[key] = nodeMatchAt{value: v, line: s.lineOf(ks)}
				}
			}
		}
		p = nextJSLine(s.norm, p)
	}
	return byStart, final
}

// nextJSLine returns the start of the line after the one holding p for
// JavaScript (after \n, U+2028 or U+2029), or len(text)+1.
func nextJSLine(text []byte, p int) int {
	for p < len(text) {
		r, n := utf8.DecodeRune(text[p:])
		p += n
		if r == '\n' || r == '\u2028' || r == '\u2029' {
			return p
		}
	}
	return len(text) + 1
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
	v = jsUnquote(v)
	if maybeQuote == '"' {
		v = strings.ReplaceAll(strings.ReplaceAll(v, `\n`, "\n"), `\r`, "\r")
	}
	return v
}

// jsUnquote is v.replace(/^(['"`])([\s\S]*)\1$/mg, '$2'): in JavaScript's
// multi-line mode ^ and $ also match at line breaks inside v, U+2028 and
// U+2029 included.
func jsUnquote(v string) string {
	var b strings.Builder
	done := 0 // v[:done] is written or replaced
	for p := 0; p < len(v); p = nextJSLine([]byte(v), p) {
		if p < done || strings.IndexByte("'\"`", v[p]) < 0 {
			continue
		}
		q := v[p]
		for e := len(v) - 1; e > p; e-- { // [\s\S]* is greedy
			if v[e] == q && (e+1 == len(v) || isJSBreak(v[e+1:])) {
				b.WriteString(v[done:p])
				b.WriteString(v[p+1 : e])
				done = e + 1
				break
			}
		}
	}
	if done == 0 {
		return v
	}
	b.WriteString(v[done:])
	return b.String()
}

// isJSBreak reports whether s starts with a line break for JavaScript.
func isJSBreak(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return r == '\n' || r == '\r' || r == '\u2028' || r == '\u2029'
}

// isJSSpace is JavaScript's String.prototype.trim set.
func isJSSpace(r rune) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', ' ', '\u00a0', '\u1680', '\u2028', '\u2029', '\u202f', '\u205f', '\u3000', '\ufeff':
		return true
	}
	return r >= '\u2000' && r <= '\u200a'
}
