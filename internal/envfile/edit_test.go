package envfile

import (
	"errors"
	"strings"
	"testing"
)

func mustParse(t *testing.T, text string) *File {
	t.Helper()
	f, err := Parse("t.env", []byte(text), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestSet(t *testing.T) {
	tests := []struct {
		name, text, key, value, want string
	}{
		{"rewrites only the value", seedPostgres, "DB_PASS", "Ourpassw0rd!sNoneofyourbu$iness",
			strings.Replace(seedPostgres, "DB_PASS=Ourpassw0rd!sNoneofyourbu$iness", "DB_PASS='Ourpassw0rd!sNoneofyourbu$iness'", 1)},
		{"keeps export, spacing and comment", "# top\nexport  A = \"old\"   # why\nB=2\n", "A", "new",
			"# top\nexport  A = 'new'   # why\nB=2\n"},
		{"keeps a yaml separator", "A: old\n", "A", "new", "A: 'new'\n"},
		{"fills an empty value", "A=\nB=  # empty\n", "B", "x", "A=\nB='x'  # empty\n"},
		{"key alone", "A\n", "A", "x", "A='x'\n"},
		{"last of duplicates", "A=1\nA=2\n", "A", "3", "A=1\nA='3'\n"},
		{"multi-line value", "A=\"l1\nl2\"\nB=1\n", "A", "x\ny", "A='x\ny'\nB=1\n"},
		{"appends a new key", "A=1\n", "B", "2", "A=1\nB='2'\n"},
		{"adds the missing last newline", "A=1", "B", "2", "A=1\nB='2'\n"},
		{"after a comment without newline", "A=1\n# end", "B", "2", "A=1\n# end\nB='2'\n"},
		{"empty file", "", "B", "2", "B='2'\n"},
		{"crlf file", "A=1\r\nB=2\r\n", "C", "3", "A=1\r\nB=2\r\nC='3'\r\n"},
		{"crlf rewrite", "A=1\r\nB=2\r\n", "A", "x", "A='x'\r\nB=2\r\n"},
		{"byte order mark", "\uFEFFA=1", "B", "2", "\uFEFFA=1\nB='2'\n"},
		{"after a yaml key that would take the next line", "A:\n", "B", "2", "A:\n\nB='2'\n"},
		{"old Mac line ends", "A:\r", "B", "2", "A:\r\rB='2'\r"},
		{"single quote in the value", "A=1\n", "A", "it's", "A=\"it's\"\n"},
		{"single and double quotes", "A=1\n", "A", `it's "x"`, "A=it's \"x\"\n"},
		{"empty value", "A=1\n", "A", "", "A=''\n"},
		{"dollar and backslash", "A=1\n", "A", `p$a\ss`, `A='p$a\ss'` + "\n"},
		{"last backslash", "A=1\n", "A", `a b\`, `A=a b\` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustParse(t, tt.text)
			if err := f.Set(tt.key, tt.value); err != nil {
				t.Fatal(err)
			}
			if got := string(f.Bytes()); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
			e, ok := f.Lookup(tt.key)
			if !ok || e.Value != tt.value || e.NodeValue != tt.value {
				t.Errorf("after Set, Ruby reads %q and node %q, want %q", e.Value, e.NodeValue, tt.value)
			}
		})
	}
}

func TestSetRefuses(t *testing.T) {
	f := mustParse(t, seedPuma)
	for _, key := range []string{"", "DB-PASS", "A B", "A=B", "é", "__proto__"} {
		if err := f.Set(key, "x"); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Set(%q) = %v, want ErrInvalidKey", key, err)
		}
	}
	for _, value := range []string{`it's $HOME`, `it's \ "x"`, "it's\n\"x\"", "a\rb", "a\u2028b", "\xff", `'starts quoted, ends in \`} {
		err := f.Set("DB_PASS", value)
		if !errors.Is(err, ErrNotPortable) {
			t.Errorf("Set(%q) = %v, want ErrNotPortable", value, err)
		}
		if err != nil && strings.Contains(err.Error(), value) {
			t.Errorf("error %q shows the value", err)
		}
	}
	if got := string(f.Bytes()); got != seedPuma {
		t.Errorf("refused Sets changed the file: %q", got)
	}
	g := mustParse(t, "A=1\nexport A=\n")
	if err := g.Set("A", "2"); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("Set with node reading another line = %v", err)
	}
}

func TestQuoted(t *testing.T) {
	tests := []struct{ value, want string }{
		{"abc", "'abc'"},
		{"", "''"},
		{" a b ", "' a b '"},
		{"a#b$c\\d\"e\nf", "'a#b$c\\d\"e\nf'"},
		{"it's", `"it's"`},
		{"it's\n#1", "\"it's\n#1\""},
		{`it's "x"`, `it's "x"`},
		{`"it's"\`, ""},
		{`it's "x"\`, `it's "x"\`},
	}
	for _, tt := range tests {
		got, err := Quoted(tt.value)
		if tt.want == "" {
			if !errors.Is(err, ErrNotPortable) {
				t.Errorf("Quoted(%q) = %q, %v; want ErrNotPortable", tt.value, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Quoted(%q) = %q, %v; want %q", tt.value, got, err, tt.want)
		}
	}
}

func TestDelete(t *testing.T) {
	tests := []struct {
		name, text, key, want string
	}{
		{"one line", seedPostgres, "DB_PASS", strings.Replace(seedPostgres, "DB_PASS=Ourpassw0rd!sNoneofyourbu$iness\n", "", 1)},
		{"with its comment and export", "A=1\nexport B=2 # two\nC=3\n", "B", "A=1\nC=3\n"},
		{"every duplicate", "A=1\nB=2\nA=3\n", "A", "B=2\n"},
		{"multi-line value", "A=1\nB=\"x\ny\"\nC=3", "B", "A=1\nC=3"},
		{"last line without newline", "A=1\nB=2", "B", "A=1\n"},
		{"crlf", "A=1\r\nB=2\r\nC=3\r\n", "B", "A=1\r\nC=3\r\n"},
		{"missing key", "A=1\n", "B", "A=1\n"},
		{"blank lines and comments stay", "A=1\n\n# about B\nB=2\n\n# end\n", "B", "A=1\n\n# about B\n\n# end\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustParse(t, tt.text)
			if err := f.Delete(tt.key); err != nil {
				t.Fatal(err)
			}
			if got := string(f.Bytes()); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
			if _, ok := f.Get(tt.key); ok {
				t.Errorf("%s is still set", tt.key)
			}
		})
	}
}

func TestDeleteRefusesBreakingExport(t *testing.T) {
	f := mustParse(t, "A=1\nexport A\n")
	var pe *ParseError
	if err := f.Delete("A"); !errors.As(err, &pe) || pe.Line != 1 {
		t.Errorf("Delete = %v, want the ParseError of the remaining export line", err)
	}
	if got := string(f.Bytes()); got != "A=1\nexport A\n" {
		t.Errorf("a refused Delete changed the file: %q", got)
	}
}

func TestSetThenExpansion(t *testing.T) {
	f := mustParse(t, "HOST=old\nURL=https://$HOST/\n")
	if err := f.Set("HOST", "new"); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.Get("URL"); got != "https://new/" {
		t.Errorf("URL = %q after changing HOST", got)
	}
}
