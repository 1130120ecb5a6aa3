package envfile

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Finding is a value that Rails and Sidekiq (Ruby dotenv) and the streaming
// server (node dotenv) read differently, or that Ruby dotenv changes by
// expansion or a shell command, with the way to fix it. Neither Problem nor
// Fix contains the value of a secret (see IsSecret and Redact).
type Finding struct {
	File    string
	Line    int
	Key     string
	Problem string
	Fix     string
}

// String returns "file:line: KEY: problem. Fix: fix", or "file:line:
// problem. Fix: fix" for a line that assigns no key.
func (f Finding) String() string {
	if f.Key == "" {
		return fmt.Sprintf("%s:%d: %s. Fix: %s", f.File, f.Line, f.Problem, f.Fix)
	}
	return fmt.Sprintf("%s:%d: %s: %s. Fix: %s", f.File, f.Line, f.Key, f.Problem, f.Fix)
}

const (
	rubyReader = "Rails/Sidekiq (Ruby dotenv)"
	nodeReader = "the streaming server (node dotenv)"
	onlySingle = "only single quotes read the same in both"
)

// Lint reports, in line order, every value of f that Rails/Sidekiq and the
// streaming server read differently: $NAME expansion (the seed's
// DB_PASS=Ourpassw0rd!sNoneofyourbu$iness reaches Rails as
// "Ourpassw0rd!sNoneofyourbu" and streaming intact), backslashes that Ruby
// dotenv removes and node dotenv keeps, \n in double quotes, backticks,
// keys without '='. It also reports every $(command), which Ruby dotenv
// runs as a shell command when Rails and Sidekiq boot, unquoted values
// that a '#' cuts short for both, quotes that nothing closes, and lines
// that Ruby dotenv skips (not KEY=value, an invalid key).
func Lint(f *File) []Finding {
	var out []Finding
	flagged := map[string]bool{}
	for _, sk := range f.skipped {
		out = append(out, f.lintSkipped(sk))
		if sk.key != "" {
			flagged[sk.key] = true
		}
	}
	for _, e := range f.entries {
		for _, fd := range f.lintEntry(e) {
			out = append(out, fd)
			flagged[e.Key] = true
		}
	}
	ruby := f.Map()
	var keys []string
	for k := range ruby {
		keys = append(keys, k)
	}
	for k := range f.node {
		if _, ok := ruby[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		rv, rok := ruby[k]
		nv, nok := f.node[k]
		if flagged[k] || rok && nok && rv == nv.value {
			continue
		}
		out = append(out, f.lintFinal(k, rv, rok, nv, nok))
	}
	slices.SortStableFunc(out, func(a, b Finding) int { return a.Line - b.Line })
	return out
}

// lintSkipped reports a line that Ruby dotenv skips.
func (f *File) lintSkipped(sk skippedLine) Finding {
	fd := Finding{File: f.name, Line: sk.line, Key: sk.key}
	switch {
	case sk.key != "":
		fd.Problem = fmt.Sprintf("%s skip this line (%s), but %s reads it as %s", rubyReader, sk.reason, nodeReader, sk.key)
	default:
		fd.Problem = fmt.Sprintf("%s and %s both ignore this line (%s)", rubyReader, nodeReader, sk.reason)
	}
	switch sk.reason {
	case reasonBareKey:
		fd.Fix = "write KEY= for an empty value, or remove the line"
	case reasonInvalidKey:
		fd.Fix = "use a key of ASCII letters, digits, '_' and '.', or start the line with # to make it a comment"
	default:
		fd.Fix = "write KEY=value, or start the line with # to make it a comment"
	}
	return fd
}

// lintFinal reports a key whose final values differ although no line of
// its own explains it, such as "export KEY=" without a value, which Ruby
// dotenv takes as a check and node dotenv as an empty value.
func (f *File) lintFinal(key, rv string, rok bool, nv nodeMatchAt, nok bool) Finding {
	fd := Finding{File: f.name, Line: nv.line, Key: key,
		Fix: fmt.Sprintf("assign %s once, single-quoted, and remove lines that only export it", key)}
	if !nok {
		fd.Line = f.entries[f.last(key)].Line
	}
	show := func(v string, ok bool) string {
		if !ok {
			return "nothing"
		}
		return fmt.Sprintf("%q", v)
	}
	if sensitive(key, rv, nv.value) {
		fd.Problem = fmt.Sprintf("%s and %s end up with different values", rubyReader, nodeReader)
	} else {
		fd.Problem = fmt.Sprintf("%s end up with %s, %s with %s", rubyReader, show(rv, rok), nodeReader, show(nv.value, nok))
	}
	return fd
}

func (f *File) lintEntry(e Entry) []Finding {
	secret := sensitive(e.Key, e.Raw, e.Value, e.NodeValue)
	for _, r := range e.why.refs {
		secret = secret || IsSecret(r.name) || sensitive(r.name, r.value)
	}
	var out []Finding
	add := func(problem, fix string) {
		out = append(out, Finding{File: f.name, Line: e.Line, Key: e.Key, Problem: problem, Fix: fix})
	}

	if n := len(e.Commands); n > 0 {
		what := fmt.Sprintf("%d $(...) are replaced by the output of the commands in them", n)
		if n == 1 {
			what = "$(...) is replaced by the output of the command in it"
		}
		if !secret {
			what = fmt.Sprintf("$(%s) is replaced by the command's output", strings.Join(e.Commands, "), $("))
		}
		add(fmt.Sprintf("runs a shell command under Ruby dotenv: when Rails and Sidekiq boot, %s; %s reads the text as written", what, nodeReader),
			"write the command's output into the file, or single-quote the value if the text is meant literally ("+onlySingle+")")
	}
	if e.why.nameIntoCommand {
		add("under Ruby dotenv 3.2 a $NAME right before $(...) takes the command's output into the variable's name ($B$(echo a) reads the variable Ba), since 3.2 runs commands before it expands variables",
			"write ${NAME} with braces to end the name before the command")
	}
	for _, r := range e.why.refs {
		if f.cfg.dotenv == Dotenv32 && strings.Contains(r.value, "$(") {
			name := "a variable"
			if !secret {
				name = "$" + r.name
			}
			add(fmt.Sprintf("%s expands to text holding $(, which Ruby dotenv 3.1 and 2.x (they expand variables before commands) run as a shell command", name),
				"single-quote this value, or remove $( from the variable")
			break
		}
	}
	if e.Value != e.NodeValue || !e.why.nodeRead {
		if e.why.noSeparator {
			add(fmt.Sprintf("the line has no '=': Ruby dotenv 3.1.5 and later set %s to '', node dotenv skips the line", e.Key),
				fmt.Sprintf("write %s= for an empty value, or remove the line", e.Key))
		} else {
			add(f.difference(e, secret), f.quoteFix(e, secret))
		}
	}
	if e.why.escapedClose {
		add("the value ends in a backslash right before its closing quote: both readers take \\ and the quote as part of the value when a matching quote follows further down, and then read all the lines in between as this value",
			f.quoteFix(e, secret))
	}
	if e.why.openQuote {
		add("the value starts with a quote that nothing closes: both readers keep the quote as part of the value, and a matching quote added anywhere below would make them read all the lines in between as this value",
			f.quoteFix(e, secret))
	} else if e.why.nodeOpenQuote {
		add(fmt.Sprintf("%s sees an opening quote without a closing one: it reads the text as written for now, but a matching quote anywhere below would make it read all the lines in between as this value", nodeReader),
			f.quoteFix(e, secret))
	}
	if e.why.hashCut {
		add(f.hashCut(e, secret))
	}
	return out
}

// difference says what each reader gets and why.
func (f *File) difference(e Entry, secret bool) string {
	var head string
	rn, nn := utf8.RuneCountInString(e.Value), utf8.RuneCountInString(e.NodeValue)
	switch {
	case !e.why.nodeRead:
		head = fmt.Sprintf("%s does not read this line as %s", nodeReader, e.Key)
	case !secret:
		head = fmt.Sprintf("%s read %q but %s reads %q", rubyReader, e.Value, nodeReader, e.NodeValue)
	case strings.HasPrefix(e.NodeValue, e.Value):
		head = fmt.Sprintf("%s read only the first %d of the %d characters that %s reads", rubyReader, rn, nn, nodeReader)
	default:
		head = fmt.Sprintf("%s and %s read different values, of %d and %d characters", rubyReader, nodeReader, rn, nn)
	}
	if secret {
		head += " (value not shown: secret)"
	}
	var why []string
	if refs := e.why.refs; len(refs) > 0 {
		why = append(why, describeRefs(refs, secret))
	}
	if e.why.escapedDollar {
		why = append(why, `Ruby dotenv reads \$ as $, node dotenv keeps the backslash`)
	}
	if e.why.newlineEscape {
		why = append(why, `in double quotes node dotenv turns \n into a line break, while Ruby dotenv 3 keeps the two characters \n (unless DOTENV_LINEBREAK_MODE=legacy)`)
	}
	if e.why.backslash {
		why = append(why, "Ruby dotenv removes backslashes, node dotenv keeps them")
	}
	if len(e.Raw) >= 2 && e.Raw[0] == '`' && e.Raw[len(e.Raw)-1] == '`' {
		why = append(why, "node dotenv removes backticks, Ruby dotenv keeps them")
	}
	if strings.TrimFunc(e.Raw, isJSSpace) != e.Raw {
		why = append(why, "node dotenv also trims Unicode spaces such as U+00A0 at the ends")
	}
	if len(why) == 0 {
		return head
	}
	return head + ": " + strings.Join(why, "; ")
}

func describeRefs(refs []varRef, secret bool) string {
	if secret {
		unset := 0
		for _, r := range refs {
			if r.source == refUnset {
				unset++
			}
		}
		switch {
		case len(refs) == 1 && unset == 1:
			return "Ruby dotenv expands the $ and the name after it to '', since no such variable is set"
		case len(refs) == 1:
			return "Ruby dotenv replaces the $ and the name after it with the value of that variable"
		}
		return fmt.Sprintf("Ruby dotenv replaces %d $NAME references with the values of those variables (%d of them are not set and become '')", len(refs), unset)
	}
	var parts []string
	for _, r := range refs {
		switch r.source {
		case refUnset:
			parts = append(parts, fmt.Sprintf("$%s to '' (%s is not set)", r.name, r.name))
		case refLine:
			parts = append(parts, fmt.Sprintf("$%s to the value of %s from line %d", r.name, r.name, r.line))
		default:
			parts = append(parts, fmt.Sprintf("$%s to %q from the environment", r.name, Redact(r.name, r.value)))
		}
	}
	return "Ruby dotenv expands " + strings.Join(parts, ", ")
}

// quoteFix proposes the line that both readers read as written, single-quoted
// unless the value holds a single quote.
func (f *File) quoteFix(e Entry, secret bool) string {
	meant := e.NodeValue
	if !e.why.nodeRead {
		meant = e.Value
	}
	q, err := Quoted(meant)
	if err != nil {
		return "no quoting makes both read this value the same: change it so that it has no single quote together with a backslash, '$', '#' or a line break, and no carriage return"
	}
	line := e.Key + "=" + q
	if secret {
		line = e.Key + "='…'"
	}
	fix := fmt.Sprintf("%s: to keep the text as written, write %s", onlySingle, line)
	if q[0] != '\'' {
		fix = fmt.Sprintf("this value cannot be single-quoted (it holds a single quote or ends in a backslash): to keep the text as written, write %s", line)
	}
	if secret {
		return fix + " (value not shown: secret; envfile's Set writes it)"
	}
	if len(e.why.refs) > 0 && e.why.nodeRead {
		if q, err := Quoted(e.Value); err == nil {
			fix += fmt.Sprintf("; to keep what Ruby dotenv expands, write %s=%s", e.Key, q)
		}
	}
	return fix
}

// hashCut reports a '#' right after an unquoted value.
func (f *File) hashCut(e Entry, secret bool) (problem, fix string) {
	sp := e.span
	at := sp.valStart
	end := at
	for end < len(f.scan.norm) && f.scan.norm[end] != '\n' {
		end++
	}
	whole := strings.TrimRight(string(f.scan.norm[at:end]), rubyStrip)
	if secret {
		problem = fmt.Sprintf("a '#' right after the first %d characters starts a comment, so both readers ignore the rest of the line (value not shown: secret)", utf8.RuneCountInString(e.Value))
		return problem, fmt.Sprintf("if the '#' belongs to the value, single-quote the whole value: %s='…'", e.Key)
	}
	problem = fmt.Sprintf("a '#' right after %q starts a comment, so both readers ignore the rest of the line", e.Value)
	if q, err := Quoted(whole); err == nil {
		return problem, fmt.Sprintf("if the '#' belongs to the value, write %s=%s", e.Key, q)
	}
	return problem, "if the '#' belongs to the value, quote the whole value"
}
