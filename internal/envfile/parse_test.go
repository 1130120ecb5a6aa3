package envfile

import (
	"errors"
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
		text   string
		line   int
		reason string
	}{
		{"unterminated double quote", "A=1\nDB_PASS=\"hunter2\nB=2\n", 2, "unterminated double quote in the value of DB_PASS"},
		{"unterminated single quote", "DB_PASS='hunter2", 1, "unterminated single quote in the value of DB_PASS"},
		{"text after the closing quote", "\n\nDB_PASS='hunter2' x", 3, "text after the closing single quote of DB_PASS"},
		{"invalid key", "A=1\nDB-PASS=hunter2\n", 2, "invalid key: use only ASCII letters, digits, '_' and '.' (Ruby dotenv skips this line)"},
		{"colon without space", "DB_PASS:hunter2", 1, "a ':' after the key needs a space after it (KEY: value), or write KEY=value (Ruby dotenv skips this line)"},
		{"not an assignment", "A=1\n\nhunter2 hunter2\n", 3, "not a KEY=value line (Ruby dotenv skips it)"},
		{"export of an unset key", "A=1\nexport B\n", 2, "export B without a value, and B is not set before this line (Ruby dotenv refuses to load the file)"},
		{"invalid UTF-8", "A=1\nB=\xff\n", 2, "invalid UTF-8 (Ruby dotenv refuses to load the file)"},
		{"line separator", "A=1\nB='a\u2028b'\n", 2, "character U+2028 is a line break for node dotenv but not for Ruby dotenv"},
		{"crlf line numbers", "A=1\r\n\r\nB=\"x\r\n", 3, "unterminated double quote in the value of B"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("/home/mastodon/live/.env.production", []byte(tt.text), noEnv)
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
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows the value: %q", err)
			}
		})
	}
}

func TestExportCheckUsesEnvironment(t *testing.T) {
	if _, err := Parse("t", []byte("export PATH\n"), envOf(map[string]string{"PATH": "/bin"})); err != nil {
		t.Errorf("export of a variable set in the environment: %v", err)
	}
}

func TestReadMissingFile(t *testing.T) {
	_, err := Read(t.TempDir() + "/nope")
	if err == nil || !strings.HasPrefix(err.Error(), "envfile: ") {
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
