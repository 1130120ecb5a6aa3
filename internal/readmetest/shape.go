package readmetest

import (
	"path"
	"regexp"
	"strings"
)

// Command is one `$ command` line of README.md with the lines shown under
// it.
type Command struct {
	Section string   // the heading it is under ("### tunnel: ...")
	Line    int      // its line in README.md, from 1
	Cmd     string   // after "$ "
	Want    []string // the output lines shown, "..." for any lines
}

// Parse finds the commands of a Markdown text: in fenced code blocks, a
// line starting with "$ " is a command and the lines after it, up to the
// next command or the end of the block, are its output.
func Parse(text string) []Command {
	var out []Command
	section, inBlock := "", false
	var cur *Command
	flush := func() {
		if cur != nil {
			for len(cur.Want) > 0 && strings.TrimSpace(cur.Want[len(cur.Want)-1]) == "" {
				cur.Want = cur.Want[:len(cur.Want)-1]
			}
			out = append(out, *cur)
			cur = nil
		}
	}
	for i, line := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(line, "```"):
			flush()
			inBlock = !inBlock
		case !inBlock:
			if strings.HasPrefix(line, "#") {
				section = strings.TrimSpace(line)
			}
		case strings.HasPrefix(line, "$ "):
			flush()
			cur = &Command{Section: section, Line: i + 1, Cmd: strings.TrimSpace(line[2:])}
		case cur != nil:
			cur.Want = append(cur.Want, line)
		}
	}
	flush()
	return out
}

var (
	uuidRE = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)
	// an absolute path after the start, a blank, = ( " or '
	pathRE = regexp.MustCompile(`(^|[\s=("'])(/[^\s:"',)]*)`)
	hexRE  = regexp.MustCompile(`\b[0-9a-fA-F]{6,}\b`)
	durRE  = regexp.MustCompile(`\b(\d+(\.\d+)?(ns|µs|us|ms|s|m|h))+\b`)
	sizeRE = regexp.MustCompile(`\b\d+(\.\d+)?\s?(B|KiB|MiB|GiB|TiB|kB|MB|GB)\b`)
	numRE  = regexp.MustCompile(`\d+(\.\d+)?`)
	intRE  = regexp.MustCompile(`^\s*-?\d+\s*$`)
)

// Shape is what a line of output is compared by: its words, with the
// directories of absolute paths, UUIDs, hexadecimal ids, durations, sizes
// and numbers replaced by placeholders. A line that is a bare integer (an
// exit status) is kept as it is.
func Shape(line string) []string {
	if intRE.MatchString(line) {
		return strings.Fields(line)
	}
	s := uuidRE.ReplaceAllString(line, "<uuid>")
	s = pathRE.ReplaceAllStringFunc(s, func(m string) string {
		i := strings.IndexByte(m, '/')
		return m[:i] + "…/" + path.Base(m[i:])
	})
	s = hexRE.ReplaceAllStringFunc(s, func(m string) string {
		if strings.ContainsAny(m, "0123456789") && strings.ContainsAny(strings.ToLower(m), "abcdef") {
			return "<hex>"
		}
		return m
	})
	s = sizeRE.ReplaceAllString(s, "<size>")
	s = durRE.ReplaceAllString(s, "<dur>")
	s = numRE.ReplaceAllString(s, "#")
	return strings.Fields(s)
}

// sameShape reports whether the output line got has the shape of the
// README line want; a want line ending in "..." stands for its beginning.
func sameShape(want, got string) bool {
	if rest, ok := strings.CutSuffix(strings.TrimRight(want, " "), "..."); ok && strings.TrimSpace(rest) != "" {
		attached := !strings.HasSuffix(rest, " ")
		x, y := Shape(rest), Shape(got)
		if len(x) > len(y) {
			return false
		}
		for i := range x {
			if x[i] != y[i] && !(attached && i == len(x)-1 && strings.HasPrefix(y[i], x[i])) {
				return false
			}
		}
		return true
	}
	x, y := Shape(want), Shape(got)
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}

// Match reports whether got has the shape of want, where a want line
// "..." stands for any number of lines (none included) and a want line
// ending in "..." for any line that begins as it does. Trailing blank
// lines do not count. On a mismatch it returns the first want line that no
// output matched (or "" when output is left over) and the got line there.
func Match(want, got []string) (ok bool, wantLine, gotLine string) {
	want, got = trimBlank(want), trimBlank(got)
	// best is how far into want and got a failed attempt got, for the message.
	bw, bg := -1, -1
	var match func(i, j int) bool
	memo := map[[2]int]bool{}
	match = func(i, j int) bool {
		k := [2]int{i, j}
		if v, seen := memo[k]; seen {
			return v
		}
		var r bool
		switch {
		case i == len(want):
			r = j == len(got)
		case strings.TrimSpace(want[i]) == "...":
			r = match(i+1, j) || (j < len(got) && match(i, j+1))
		default:
			r = j < len(got) && sameShape(want[i], got[j]) && match(i+1, j+1)
		}
		if !r && (i > bw || i == bw && j > bg) {
			bw, bg = i, j
		}
		memo[k] = r
		return r
	}
	if match(0, 0) {
		return true, "", ""
	}
	if bw < len(want) {
		wantLine = want[bw]
	}
	if bg >= 0 && bg < len(got) {
		gotLine = got[bg]
	}
	return false, wantLine, gotLine
}

func trimBlank(lines []string) []string {
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}
