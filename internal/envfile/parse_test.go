package envfile

import (
	"errors"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func envOf(m map[string]string) Option {
	return WithLookup(func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	})
}

func TestParseValues(t *testing.T) {
	type kv struct{ key, ruby, node string }
	tests := []struct {
		name string
		text string
		env  map[string]string
		want []kv
	}{
		{"unquoted", "A=abc", nil, []kv{{"A", "abc", "abc"}}},
		{"spaces around", "  A = abc  \n", nil, []kv{{"A", "abc", "abc"}}},
		{"empty", "A=\nB=''\nC=\"\"", nil, []kv{{"A", "", ""}, {"B", "", ""}, {"C", "", ""}}},
		{"yaml style", "A: abc", nil, []kv{{"A", "abc", "abc"}}},
		{"export", "export A=abc\nexport\tB='x y'", nil, []kv{{"A", "abc", "abc"}, {"B", "x y", "x y"}}},
		{"export check of a set key", "A=1\nexport A", nil, []kv{{"A", "1", "1"}}},
		{"comment lines", "# A=1\n  # B=2\nC=3 # the third\n", nil, []kv{{"C", "3", "3"}}},
		{"hash without space is a comment", "A=abc#def", nil, []kv{{"A", "abc", "abc"}}},
		{"hash in quotes", `A='a#b' # c` + "\n" + `B="a#b"`, nil, []kv{{"A", "a#b", "a#b"}, {"B", "a#b", "a#b"}}},
		{"single quotes are literal", `A='a$B\n\$c\\d'`, map[string]string{"B": "x"},
			[]kv{{"A", `a$B\n\$c\\d`, `a$B\n\$c\\d`}}},
		{"double quotes", `A="a \"b\" \\c"`, nil, []kv{{"A", `a "b" \c`, `a \"b\" \\c`}}},
		{"double-quoted newline escape", `A="l1\nl2"`, nil, []kv{{"A", `l1\nl2`, "l1\nl2"}}},
		{"legacy line breaks from the file", "DOTENV_LINEBREAK_MODE=legacy\nA=\"l1\\nl2\\r\"", nil,
			[]kv{{"DOTENV_LINEBREAK_MODE", "legacy", "legacy"}, {"A", "l1\nl2\r", "l1\nl2\r"}}},
		{"legacy line breaks from the environment", `A="l1\nl2"`, map[string]string{"DOTENV_LINEBREAK_MODE": "legacy"},
			[]kv{{"A", "l1\nl2", "l1\nl2"}}},
		{"multi-line double quotes", "A=\"line 1\nline 2\"\nB=2", nil,
			[]kv{{"A", "line 1\nline 2", "line 1\nline 2"}, {"B", "2", "2"}}},
		{"multi-line single quotes", "A='-----BEGIN KEY-----\nabc\n-----END KEY-----'", nil,
			[]kv{{"A", "-----BEGIN KEY-----\nabc\n-----END KEY-----", "-----BEGIN KEY-----\nabc\n-----END KEY-----"}}},
		{"unquoted backslashes", `A=a\b\\c\ d`, nil, []kv{{"A", `ab\c d`, `a\b\\c\ d`}}},
		{"expansion from an earlier line", "HOST=db\nURL=postgres://$HOST:${PORT}/x\nPORT=5432", nil,
			[]kv{{"HOST", "db", "db"}, {"URL", "postgres://db:/x", "postgres://$HOST:${PORT}/x"}, {"PORT", "5432", "5432"}}},
		{"expansion in double quotes", "A=1\nB=\"<$A>\"", nil, []kv{{"A", "1", "1"}, {"B", "<1>", "<$A>"}}},
		{"expansion from the environment", "B=$HOME/x", map[string]string{"HOME": "/home/mastodon"},
			[]kv{{"B", "/home/mastodon/x", "$HOME/x"}}},
		{"the environment wins over an earlier line", "A=file\nB=$A", map[string]string{"A": "env"},
			[]kv{{"A", "file", "file"}, {"B", "env", "$A"}}},
		{"unknown variable", "A=x${NOPE}y$nope", nil, []kv{{"A", "xy", "x${NOPE}y$nope"}}},
		{"backslashes go before expansion", `A=a$b\n`, map[string]string{"b": "B", "bn": "BN"}, []kv{{"A", "aBN", `a$b\n`}}},
		{"in double quotes \\n stays", `A="a$b\n"`, map[string]string{"b": "B", "bn": "BN"}, []kv{{"A", `aB\n`, "a$b\n"}}},
		{"lower-case names expand", "a=1\nB=$a", nil, []kv{{"a", "1", "1"}, {"B", "1", "$a"}}},
		{"brace eats a closing brace only", "A=1\nB=$A}x ${A x", nil, []kv{{"A", "1", "1"}, {"B", "1x 1 x", "$A}x ${A x"}}},
		{"dollar without a name", `A=$ ${} $- a$`, nil, []kv{{"A", "$ ${} $- a$", "$ ${} $- a$"}}},
		{"escaped dollar", `A=1` + "\n" + `B=\$A \${A} "\$A"`, nil, []kv{{"A", "1", "1"}, {"B", `$A ${A} "$A"`, `\$A \${A} "\$A"`}}},
		{"escaped dollar in double quotes", `B="bar\$ \$\$"`, nil, []kv{{"B", "bar$ $$", `bar\$ \$\$`}}},
		{"command is recorded, not run", "A=$(date +%s)x", nil, []kv{{"A", "$(date +%s)x", "$(date +%s)x"}}},
		{"escaped command", `A=\$(date)`, nil, []kv{{"A", "$(date)", `\$(date)`}}},
		{"key alone", "A\nB=1", nil, []kv{{"A", "", ""}, {"B", "1", "1"}}},
		{"crlf", "A=1\r\nB='x\r\ny'\r\n", nil, []kv{{"A", "1", "1"}, {"B", "x\ny", "x\ny"}}},
		{"byte order mark", "\uFEFFA=1\n", nil, []kv{{"A", "1", "1"}}},
		{"backticks", "A=`x`", nil, []kv{{"A", "`x`", "x"}}},
		{"later line wins", "A=1\nA=2", nil, []kv{{"A", "1", "1"}, {"A", "2", "2"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("t.env", []byte(tt.text), envOf(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			var got []kv
			for _, e := range f.Entries() {
				got = append(got, kv{e.Key, e.Value, e.NodeValue})
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestParseEntryFields(t *testing.T) {
	text := "# c\n\nexport A = 'x'  # note\nB=\"$(hostname) $(id -u)\"\n"
	f, err := Parse("t.env", []byte(text), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	a, ok := f.Lookup("A")
	if !ok || a.Raw != "'x'" || a.Quote != SingleQuote || a.Line != 3 || !a.Export || a.Commands != nil {
		t.Errorf("A = %+v", a)
	}
	b, _ := f.Lookup("B")
	if b.Quote != DoubleQuote || b.Line != 4 || !reflect.DeepEqual(b.Commands, []string{"hostname", "id -u"}) {
		t.Errorf("B = %+v", b)
	}
	if want := map[string]string{"A": "x", "B": "$(hostname) $(id -u)"}; !reflect.DeepEqual(f.Map(), want) {
		t.Errorf("Map() = %q, want %q", f.Map(), want)
	}
	if _, ok := f.Get("C"); ok {
		t.Error("Get(C) found a value")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name   string
		dotenv Dotenv
		text   string
		line   int
		reason string
	}{
		{"export of an unset key", Dotenv32, "A=1\nexport B\n", 2, "export B without a value, and B is not set before this line (Ruby dotenv 3.2 refuses to load the file)"},
		{"export before the key, 3.1", Dotenv31, "export B\nB=1\n", 1, "export B without a value, and B is not set before this line (Ruby dotenv 3.1 refuses to load the file)"},
		{"export of a key nowhere, 2.8", Dotenv28, "A=1\nexport A B\n", 2, `"B" after export is not assigned in the file (Ruby dotenv 2.8 refuses to load the file)`},
		{"export with a comment, 2.8", Dotenv28, "A=1\nexport A # checked\n", 2, `"#" after export is not assigned in the file (Ruby dotenv 2.8 refuses to load the file)`},
		{"export before the key, 2.4", Dotenv24, "export B\nB=1\n", 1, `"B" after export is not assigned before this line (Ruby dotenv 2.4 refuses to load the file)`},
		{"invalid UTF-8", Dotenv32, "A=1\nB=\xff\n", 2, "invalid UTF-8 (Ruby dotenv refuses to load the file)"},
		{"invalid UTF-8, 2.8", Dotenv28, "A=1\nB=\xff\n", 2, "invalid UTF-8 (Ruby dotenv refuses to load the file)"},
		{"crlf line numbers", Dotenv32, "A=1\r\n\r\nDB_PASS=\"x\xff\r\n", 3, "invalid UTF-8 (Ruby dotenv refuses to load the file)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("/home/mastodon/live/.env.production", []byte(tt.text), noEnv, WithDotenv(tt.dotenv))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *ParseError", err)
			}
			if pe.Line != tt.line || pe.Reason != tt.reason {
				t.Errorf("got line %d %q, want line %d %q", pe.Line, pe.Reason, tt.line, tt.reason)
			}
			want := "/home/mastodon/live/.env.production:" + strconv.Itoa(tt.line) + ": " + tt.reason
			if err.Error() != want {
				t.Errorf("Error() = %q, want %q", err, want)
			}
		})
	}
}

// TestParseReadsWhatRubyReads: lines that Ruby dotenv reads, or skips, and
// node dotenv reads alike are read; Lint says what is odd about them,
// without their values.
func TestParseReadsWhatRubyReads(t *testing.T) {
	tests := []struct {
		name       string
		text       string
		key        string // "" when Ruby assigns nothing
		ruby, node string
		finding    string // part of the one finding Lint gives, "" for none
	}{
		{"text after the closing quote", `SMTP_FROM_ADDRESS="Mastodon" <notifications@example.com>`,
			"SMTP_FROM_ADDRESS", `"Mastodon" <notifications@example.com>`, `"Mastodon" <notifications@example.com>`, ""},
		{"text after a single-quoted value", "DB_PASS='hunter2'x", "DB_PASS", "'hunter2'x", "'hunter2'x", ""},
		{"unterminated double quote", "A=1\nDB_PASS=\"hunter2\nB=2\n", "DB_PASS", `"hunter2`, `"hunter2`,
			"t.env:2: DB_PASS: the value starts with a quote that nothing closes: both readers keep the quote"},
		{"unterminated single quote", "DB_PASS='hunter2", "DB_PASS", "'hunter2", "'hunter2", "a quote that nothing closes"},
		{"invalid key", "A=1\nDB-PASS=hunter2\n", "", "", "",
			"t.env:2: DB-PASS: Rails/Sidekiq (Ruby dotenv) skip this line (invalid key: only ASCII letters, digits, '_' and '.' make a key), but the streaming server (node dotenv) reads it as DB-PASS"},
		{"colon without space", "DB_PASS:hunter2", "", "", "",
			"t.env:1: Rails/Sidekiq (Ruby dotenv) and the streaming server (node dotenv) both ignore this line (a ':' after the key needs a space after it"},
		{"not an assignment", "A=1\n\nhunter2 hunter2\n", "", "", "", "t.env:3: Rails/Sidekiq (Ruby dotenv) and the streaming server (node dotenv) both ignore this line (not a KEY=value line)"},
		{"line separator in a value", "A='a\u2028b'\n", "A", "a\u2028b", "a\u2028b", ""},
		{"line separator after a quote", "A='x'\u2028B=2\n", "A", "'x'\u2028B=2", "x",
			`t.env:1: A: Rails/Sidekiq (Ruby dotenv) read "'x'\u2028B=2" but the streaming server (node dotenv) reads "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("t.env", []byte(tt.text), noEnv)
			if err != nil {
				t.Fatal(err)
			}
			if tt.key != "" {
				e, ok := f.Lookup(tt.key)
				if !ok || e.Value != tt.ruby || e.NodeValue != tt.node {
					t.Errorf("%s: Ruby %q, node %q; want %q, %q", tt.key, e.Value, e.NodeValue, tt.ruby, tt.node)
				}
			}
			var mine []Finding
			for _, fd := range Lint(f) {
				if fd.Key == tt.key || fd.Key == "" || tt.key == "" {
					mine = append(mine, fd)
				}
			}
			switch {
			case tt.finding == "" && len(mine) > 0:
				t.Errorf("unexpected findings: %v", mine)
			case tt.finding != "" && (len(mine) != 1 || !strings.Contains(mine[0].String(), tt.finding)):
				t.Errorf("findings %v, want one holding %q", mine, tt.finding)
			}
			for _, fd := range mine {
				if strings.Contains(fd.String(), "hunter2") {
					t.Errorf("finding shows the password: %s", fd)
				}
			}
		})
	}
}

// TestDotenvReleases checks the table of differences in the package doc.
func TestDotenvReleases(t *testing.T) {
	releases := []Dotenv{Dotenv32, Dotenv31, Dotenv28, Dotenv24}
	tests := []struct {
		text string
		env  map[string]string
		key  string
		want [4]string // by release as above; "refused" for a ParseError, "unset" for no value
	}{
		{"A=1\nA\n", nil, "A", [4]string{"", "", "1", "1"}},
		{`K="a\nb"`, nil, "K", [4]string{`a\nb`, `a\nb`, "a\nb", "a\nb"}},
		{"K=1\nexport K=\n", nil, "K", [4]string{"1", "1", "", ""}},
		{"export K\nK=1\n", nil, "K", [4]string{"refused", "refused", "1", "refused"}},
		{"export K\n", map[string]string{"K": "env"}, "K", [4]string{"unset", "unset", "refused", "refused"}},
		{"B=b\nCMD=$B$(echo a)\n", nil, "CMD", [4]string{"", "ba", "ba", "ba"}},
		{"X='$(echo a)'\nY=$X\n", nil, "Y", [4]string{"$(echo a)", "a", "a", "a"}},
		{"DOTENV_LINEBREAK_MODE=legacy\nK=\"a\\nb\"\n", nil, "K", [4]string{"a\nb", "a\nb", "a\nb", "a\nb"}},
		{"K=a\\b\n", nil, "K", [4]string{"ab", "ab", "ab", `a\b`}},
		{"K=\"a\nb\"\n", nil, "K", [4]string{"a\nb", "a\nb", "a\nb", `"a`}},
		{"L=file\nK=$L\n", map[string]string{"L": "env"}, "K", [4]string{"env", "env", "env", "env"}},
		{"DOTENV_LINEBREAK_MODE=file\nK=$DOTENV_LINEBREAK_MODE\n", map[string]string{"DOTENV_LINEBREAK_MODE": "env"}, "K",
			[4]string{"file", "file", "env", "env"}},
		{"K=a$b\\n\n", map[string]string{"b": "B", "bn": "BN"}, "K", [4]string{"aBN", "aBN", "aBN", `aB\n`}},
	}
	for _, tt := range tests {
		for i, d := range releases {
			var got string
			f, err := Parse("t.env", []byte(tt.text), envOf(tt.env), WithDotenv(d), WithCommands(runShell))
			switch {
			case err != nil:
				got = "refused"
			default:
				v, ok := f.Get(tt.key)
				got = v
				if !ok {
					got = "unset"
				}
			}
			if got != tt.want[i] {
				t.Errorf("%s: %q: %s = %q, want %q (err %v)", d, tt.text, tt.key, got, tt.want[i], err)
			}
		}
	}
}

// runShell runs a command as Ruby's backticks do.
func runShell(cmd string) (string, error) {
	out, err := exec.Command("/bin/sh", "-c", cmd).Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		err = nil
	}
	return string(out), err
}

func TestCommands(t *testing.T) {
	tests := []struct {
		name     string
		dotenv   Dotenv
		text     string
		key      string
		value    string // without running commands
		ran      string // running them
		commands []string
	}{
		{"3.2 runs commands first", Dotenv32, "B=b\nCMD=$B$(echo a)\n", "CMD", "$B$(echo a)", "", []string{"echo a"}},
		{"3.1 expands variables first", Dotenv31, "B=b\nCMD=$B$(echo a)\n", "CMD", "b$(echo a)", "ba", []string{"echo a"}},
		{"braces end the name", Dotenv32, "B=b\nCMD=${B}$(echo a)\n", "CMD", "b$(echo a)", "ba", []string{"echo a"}},
		{"3.2 expands the command's text", Dotenv32, "B=b\nCMD=$(echo $B)\n", "CMD", "$(echo b)", "b", []string{"echo b"}},
		{"through a variable", Dotenv32, "X=$(echo hi)\nY=$X\n", "Y", "$(echo hi)", "hi", []string{"echo hi"}},
		{"through a variable, 2.8", Dotenv28, "X=$(echo hi)\nY=<$X>\n", "Y", "<$(echo hi)>", "<hi>", []string{"echo hi"}},
		{"literal $( through a variable, 3.2", Dotenv32, "X='$(echo hi)'\nY=$X\n", "Y", "$(echo hi)", "$(echo hi)", nil},
		{"literal $( through a variable, 3.1", Dotenv31, "X='$(echo hi)'\nY=$X\n", "Y", "$(echo hi)", "hi", []string{"echo hi"}},
		{"escaped", Dotenv32, `A=\$(echo hi)`, "A", "$(echo hi)", "$(echo hi)", nil},
		{"one line break dropped", Dotenv32, `A="$(printf 'x\\n\\n')"`, "A", "$(printf 'x\\n\\n')", "x\n", []string{`printf 'x\n\n'`}},
		{"nested", Dotenv31, "A=$(echo $(echo in))\n", "A", "$(echo $(echo in))", "in", []string{"echo $(echo in)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("t.env", []byte(tt.text), noEnv, WithDotenv(tt.dotenv))
			if err != nil {
				t.Fatal(err)
			}
			e, _ := f.Lookup(tt.key)
			if e.Value != tt.value || !reflect.DeepEqual(e.Commands, tt.commands) {
				t.Errorf("without running: %q, commands %q; want %q, %q", e.Value, e.Commands, tt.value, tt.commands)
			}
			f, err = Parse("t.env", []byte(tt.text), noEnv, WithDotenv(tt.dotenv), WithCommands(runShell))
			if err != nil {
				t.Fatal(err)
			}
			e, _ = f.Lookup(tt.key)
			if e.Value != tt.ran || !reflect.DeepEqual(e.Commands, tt.commands) {
				t.Errorf("running: %q, commands %q; want %q, %q", e.Value, e.Commands, tt.ran, tt.commands)
			}
		})
	}
}

func TestCommandsRunOnce(t *testing.T) {
	runs := map[string]int{}
	run := func(cmd string) (string, error) {
		runs[cmd]++
		return runShell(cmd)
	}
	env := envOf(map[string]string{"SHADOWED": "env"})
	f, err := Parse("t.env", []byte("A=$(echo a)\nB=$(echo a)$(echo b)\nSHADOWED=$(echo no)\n"), env, WithCommands(run))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Set("C", "c"); err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"echo a": 1, "echo b": 1}; !reflect.DeepEqual(runs, want) {
		t.Errorf("ran %v, want %v (once each; not the line of a key the environment sets)", runs, want)
	}
	if b, _ := f.Get("B"); b != "ab" {
		t.Errorf("B = %q after Set", b)
	}
	if e, _ := f.Lookup("SHADOWED"); e.Commands != nil {
		t.Errorf("SHADOWED lists %q, but Ruby dotenv 3 does not read its line", e.Commands)
	}
}

func TestCommandError(t *testing.T) {
	boom := errors.New("boom")
	_, err := Parse("t.env", []byte("A=1\nDB_PASS=$(cat /run/secret)\n"), noEnv,
		WithCommands(func(string) (string, error) { return "", boom }))
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Line != 2 || !errors.Is(err, boom) {
		t.Fatalf("err = %v, want a *ParseError at line 2 wrapping the command's error", err)
	}
	if want := "t.env:2: running the $(...) in the value of DB_PASS: boom"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}
}

func TestExportCheckUsesEnvironment(t *testing.T) {
	if _, err := Parse("t", []byte("export PATH\n"), envOf(map[string]string{"PATH": "/bin"})); err != nil {
		t.Errorf("export of a variable set in the environment: %v", err)
	}
}

func TestReadMissingFile(t *testing.T) {
	_, err := Read(t.TempDir() + "/nope")
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "/nope") {
		t.Errorf("err = %v", err)
	}
}

func TestPrintingDoesNotLeak(t *testing.T) {
	f, err := Parse("t", []byte("DB_PASS=hunter2\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := f.Lookup("DB_PASS")
	for _, s := range []string{e.String(), f.String()} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("%q shows the password", s)
		}
	}
	if got := e.String(); got != "DB_PASS=[redacted]" {
		t.Errorf("e.String() = %q", got)
	}
}
