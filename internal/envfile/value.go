package envfile

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// evaluator is Dotenv::Parser#parse_value and the substitutions of one
// Ruby dotenv release, with Ruby's @hash of what earlier lines assigned.
//
// Commands run through c.run. Without it they do not run: each one's
// output is a placeholder, a token of two runes that the file does not
// hold around the token's number, which the substitutions pass through as
// they would pass any text without '$', '\', '(' and ')'; rendered turns
// every placeholder back into the $(command) text.
type evaluator struct {
	rel    Dotenv
	lookup func(string) (string, bool)
	run    func(string) (string, error)
	hash   map[string]assigned

	open, close rune     // the placeholder's delimiters
	tokens      []string // placeholder i stands for the output of $(tokens[i])
}

func newEvaluator(c config, text []byte) *evaluator {
	ev := &evaluator{rel: c.dotenv, lookup: c.lookup, hash: map[string]assigned{}}
	if c.run != nil {
		ev.run = c.run.run
	}
	// Noncharacters U+FDD0 to U+FDEF: pick a pair the file does not hold.
	ev.open, ev.close = '\uFDD0', '\uFDD1'
	for ev.close < '\uFDEF' && (bytes.ContainsRune(text, ev.open) || bytes.ContainsRune(text, ev.close)) {
		ev.open, ev.close = ev.open+2, ev.close+2
	}
	return ev
}

func (ev *evaluator) env(name string) (string, bool) {
	if ev.lookup == nil {
		return "", false
	}
	return ev.lookup(name)
}

func (ev *evaluator) envValue(name string) string {
	v, _ := ev.env(name)
	return v
}

// existing is Ruby dotenv 3's existing?: the environment sets key, so the
// line is not read (except DOTENV_LINEBREAK_MODE).
func (ev *evaluator) existing(key string) bool {
	if key == linebreakKey {
		return false
	}
	_, ok := ev.env(key)
	return ok
}

// value is one value read.
type value struct {
	value    string // with placeholders, as later lines see it
	rendered string // with $(command) in place of placeholders
	quote    Quote
	commands []string
	why      *detail
}

// value reads raw, the value as the line pattern captured it without the
// spaces Ruby's strip removes. A shadowed value runs no command.
func (ev *evaluator) value(raw string, line int, shadowed bool) (value, error) {
	why := &detail{}
	v, quote := raw, NoQuote
	if isQuoted(v) {
		quote = quoteKind(v[0])
		v = v[1 : len(v)-1]
	}
	if quote == SingleQuote {
		return value{value: v, rendered: v, quote: quote, why: why}, nil
	}
	ev.noteBackslashes(v, quote, why)
	switch {
	case quote == DoubleQuote && ev.rel.v3() && !ev.legacyLinebreaks():
		// Ruby replaces \n by \\n, which unescaping turns back into \n.
		v = unescape(strings.ReplaceAll(strings.ReplaceAll(v, `\n`, `\\n`), `\r`, `\\r`))
	case quote == DoubleQuote:
		v = unescape(strings.ReplaceAll(strings.ReplaceAll(v, `\n`, "\n"), `\r`, "\r"))
	case ev.rel != Dotenv24:
		v = unescape(v)
	}
	sub := &substitution{ev: ev, why: why, shadowed: shadowed}
	var err error
	if ev.rel == Dotenv32 {
		why.nameIntoCommand = nameIntoCommand.MatchString(v)
		v, err = sub.commands(v)
		v = sub.variables(v)
	} else {
		v = sub.variables(v)
		v, err = sub.commands(v)
	}
	if err != nil {
		return value{}, err
	}
	return value{value: v, rendered: ev.render(v), quote: quote, commands: sub.list(), why: why}, nil
}

// nameIntoCommand finds $NAME, ${NAME or $ right before $(.
var nameIntoCommand = regexp.MustCompile(`(?:^|[^\\])\$\{?[A-Za-z0-9_]*\$\(`)

func quoteKind(c byte) Quote {
	if c == '\'' {
		return SingleQuote
	}
	return DoubleQuote
}

func (ev *evaluator) legacyLinebreaks() bool {
	if a, ok := ev.hash[linebreakKey]; ok {
		return a.value == "legacy"
	}
	return ev.envValue(linebreakKey) == "legacy"
}

// noteBackslashes records, for Lint, the backslashes Ruby dotenv treats
// differently from node dotenv.
func (ev *evaluator) noteBackslashes(v string, quote Quote, why *detail) {
	for i := 0; i+1 < len(v); i++ {
		if v[i] != '\\' {
			continue
		}
		switch c := v[i+1]; {
		case c == '$':
			why.escapedDollar = true
		case quote == DoubleQuote && (c == 'n' || c == 'r'):
			why.newlineEscape = why.newlineEscape || ev.rel.v3() && !ev.legacyLinebreaks()
		case quote == NoQuote && ev.rel == Dotenv24:
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

// substitution applies the substitutions to one value and collects the
// commands it runs and those behind the variables it expands.
type substitution struct {
	ev        *evaluator
	why       *detail
	shadowed  bool
	ran       []string // rendered, in the order they ran
	inherited []string
}

func (sub *substitution) list() []string {
	if sub.shadowed {
		return nil
	}
	out := sub.ran
	for _, c := range sub.inherited {
		if !containsString(out, c) {
			out = append(out, c)
		}
	}
	return out
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// commands is Dotenv::Substitutions::Command: each $(command), its
// parentheses balanced and none empty, becomes the command's output
// without one final line break; \$(command) becomes $(command). In 3.2 the
// command's text is expanded first (Variable.call(command, env)).
func (sub *substitution) commands(v string) (string, error) {
	if !strings.Contains(v, "$(") {
		return v, nil
	}
	var out strings.Builder
	for i := 0; i < len(v); {
		escaped := v[i] == '\\' && strings.HasPrefix(v[i+1:], "$(")
		at := i
		if escaped {
			at++
		}
		if strings.HasPrefix(v[at:], "$(") {
			if end := parenEnd(v, at+1); end > 0 {
				if escaped {
					out.WriteString(v[at:end])
					sub.why.escapedDollar = true
				} else {
					cmd := v[at+2 : end-1]
					if sub.ev.rel == Dotenv32 {
						cmd = sub.variables(cmd)
					}
					o, err := sub.runCommand(cmd)
					if err != nil {
						return "", err
					}
					out.WriteString(o)
				}
				i = end
				continue
			}
		}
		out.WriteByte(v[i])
		i++
	}
	return out.String(), nil
}

// runCommand runs cmd, or returns a placeholder for its output.
func (sub *substitution) runCommand(cmd string) (string, error) {
	ev := sub.ev
	if !sub.shadowed {
		sub.ran = append(sub.ran, ev.render(cmd))
	}
	if ev.run == nil || sub.shadowed || strings.ContainsRune(cmd, ev.open) {
		ev.tokens = append(ev.tokens, cmd)
		return string(ev.open) + strconv.Itoa(len(ev.tokens)-1) + string(ev.close), nil
	}
	out, err := ev.run(cmd)
	if err != nil {
		return "", err
	}
	// Ruby's String#chomp: one \r\n, \n or \r.
	if strings.HasSuffix(out, "\r\n") {
		return out[:len(out)-2], nil
	}
	return strings.TrimSuffix(strings.TrimSuffix(out, "\n"), "\r"), nil
}

// render replaces every placeholder in v by $(command).
func (ev *evaluator) render(v string) string {
	if len(ev.tokens) == 0 || !strings.ContainsRune(v, ev.open) {
		return v
	}
	var b strings.Builder
	for {
		i := strings.IndexRune(v, ev.open)
		if i < 0 {
			break
		}
		j := strings.IndexRune(v[i:], ev.close)
		n, _ := strconv.Atoi(v[i+utf8.RuneLen(ev.open) : i+j])
		b.WriteString(v[:i])
		b.WriteString("$(" + ev.render(ev.tokens[n]) + ")")
		v = v[i+j+utf8.RuneLen(ev.close):]
	}
	b.WriteString(v)
	return b.String()
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

// variables is Dotenv::Substitutions::Variable: it replaces $NAME and
// ${NAME} (NAME of [A-Z0-9_], case-insensitive) and turns \$ into $. In
// 3.2 a name may run into a command's output ($B$(echo a) reads the
// variable Ba); while commands do not run, such a reference is left as
// written.
func (sub *substitution) variables(t string) string {
	if !strings.Contains(t, "$") {
		return t
	}
	ev := sub.ev
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
		if r, _ := utf8.DecodeRuneInString(t[j:]); r == ev.open && !escaped {
			// The name (or "$" alone) continues into a command's output.
			out.WriteString(t[i:j])
			i = j
			continue
		}
		if j < len(t) && t[j] == '}' {
			j++
		}
		switch {
		case escaped:
			out.WriteString(t[i:j])
			sub.why.escapedDollar = true
		case name == "":
			out.WriteString(t[i:j])
		default:
			ref, a := ev.lookupVar(name)
			sub.why.refs = append(sub.why.refs, ref)
			sub.inherited = append(sub.inherited, a.commands...)
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

// lookupVar is where Ruby dotenv finds $NAME: in 3.x env[name] ||
// ENV[name] || "", the hash of earlier lines holding the environment's
// value for every key the environment has, except DOTENV_LINEBREAK_MODE;
// in 2.x env.merge(ENV) (Dotenv.load), so the environment wins for every
// name.
func (ev *evaluator) lookupVar(name string) (varRef, assigned) {
	if name != linebreakKey || !ev.rel.v3() {
		if v, ok := ev.env(name); ok {
			return varRef{name: name, source: refEnv, value: v}, assigned{}
		}
	}
	if a, ok := ev.hash[name]; ok {
		return varRef{name: name, source: refLine, line: a.line, value: a.value}, a
	}
	if v, ok := ev.env(name); ok {
		return varRef{name: name, source: refEnv, value: v}, assigned{}
	}
	return varRef{name: name, source: refUnset}, assigned{}
}
