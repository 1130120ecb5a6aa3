package envfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A Gemfile.lock as Mastodon 4.2 has it: dotenv-rails pulls dotenv in.
const lock42 = `GEM
  remote: https://rubygems.org/
  specs:
    dotenv (2.8.1)
    dotenv-rails (2.8.1)
      dotenv (= 2.8.1)
      railties (>= 3.2)

DEPENDENCIES
  dotenv-rails (~> 2.8)
`

func TestDotenvFromGemfileLock(t *testing.T) {
	tests := []struct {
		lock    string
		want    Dotenv
		version string
		err     string
	}{
		{lock42, Dotenv28, "2.8.1", ""},
		{"GEM\n  specs:\n    dotenv (3.1.8)\n    rails (8.0.2)\n", Dotenv31, "3.1.8", ""},
		{"GEM\n  specs:\n    dotenv (3.2.0)\n", Dotenv32, "3.2.0", ""},
		{"GEM\n  specs:\n    dotenv (4.0.0)\n", Dotenv32, "4.0.0", ""},
		{"GEM\n  specs:\n    dotenv (2.4.0)\n", Dotenv24, "2.4.0", ""},
		{"GEM\n  specs:\n    dotenv (2.7.6)\n", Dotenv28, "2.7.6", ""},
		{"GEM\n  specs:\n    dotenv (1.0.2)\n", DotenvAuto, "1.0.2", "dotenv before 2.0 is not supported"},
		{"GEM\n  specs:\n    rails (8.0.2)\n", DotenvAuto, "", "no dotenv gem in Gemfile.lock"},
	}
	for _, tt := range tests {
		d, v, err := DotenvFromGemfileLock([]byte(tt.lock))
		if d != tt.want || v != tt.version || (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%q: got %v %q %v, want %v %q %q", tt.lock, d, v, err, tt.want, tt.version, tt.err)
		}
	}
}

// TestReadFollowsGemfileLock reads the same file in a Mastodon 4.2
// checkout, in a newer one and without a Gemfile.lock.
func TestReadFollowsGemfileLock(t *testing.T) {
	const text = "A=1\nA\nK=\"l1\\nl2\"\n"
	tests := []struct {
		name string
		lock string // "" for none
		opt  Dotenv
		want Dotenv
		a, k string
	}{
		{"Mastodon 4.2", lock42, DotenvAuto, Dotenv28, "1", "l1\nl2"},
		{"the lock wins over the option", lock42, Dotenv32, Dotenv28, "1", "l1\nl2"},
		{"Mastodon 4.4", "GEM\n  specs:\n    dotenv (3.1.8)\n", DotenvAuto, Dotenv31, "", `l1\nl2`},
		{"no lock", "", DotenvAuto, Dotenv32, "", `l1\nl2`},
		{"no lock, option", "", Dotenv28, Dotenv28, "1", "l1\nl2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, ".env.production")
			if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			if tt.lock != "" {
				if err := os.WriteFile(filepath.Join(dir, "Gemfile.lock"), []byte(tt.lock), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			f, err := Read(path, noEnv, WithDotenv(tt.opt))
			if err != nil {
				t.Fatal(err)
			}
			a, _ := f.Get("A")
			k, _ := f.Get("K")
			if f.Dotenv() != tt.want || a != tt.a || k != tt.k {
				t.Errorf("read as %v: A=%q K=%q; want %v, %q, %q", f.Dotenv(), a, k, tt.want, tt.a, tt.k)
			}
		})
	}
}

func TestReadBadGemfileLock(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ".env.production")
	os.WriteFile(path, []byte("A=1\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "Gemfile.lock"), []byte("    dotenv (1.0.0)\n"), 0o644)
	_, err := Read(path, noEnv)
	if err == nil || !strings.Contains(err.Error(), "Gemfile.lock") || !strings.Contains(err.Error(), "dotenv before 2.0") {
		t.Errorf("err = %v", err)
	}
}

func TestLintByRelease(t *testing.T) {
	tests := []struct {
		dotenv Dotenv
		text   string
		want   []string // one part of each finding
	}{
		{Dotenv32, "B=b\nCMD=$B$(echo a)\n", []string{
			"runs a shell command under Ruby dotenv",
			"under Ruby dotenv 3.2 a $NAME right before $(...) takes the command's output into the variable's name",
		}},
		{Dotenv31, "B=b\nCMD=${B}$(echo a)\n", []string{"runs a shell command under Ruby dotenv", "Ruby dotenv expands $B to the value of B from line 1"}},
		{Dotenv32, "X='$(id)'\nY=$X\n", []string{
			"$X expands to text holding $(, which Ruby dotenv 3.1 and 2.x (they expand variables before commands) run as a shell command",
			`Rails/Sidekiq (Ruby dotenv) read "$(id)" but the streaming server (node dotenv) reads "$X"`,
		}},
		{Dotenv31, "X='$(id)'\nY=$X\n", []string{"$(id) is replaced by the command's output", "Ruby dotenv expands $X to the value of X from line 1"}},
		{Dotenv28, "A=1\nA\n", []string{"t.env:2: Rails/Sidekiq (Ruby dotenv) and the streaming server (node dotenv) both ignore this line (a key without '=' or ':'). Fix: write KEY= for an empty value"}},
		{Dotenv32, "A=1\nA\n", []string{"t.env:2: A: the line has no '='"}},
		{Dotenv28, `K="a\nb"`, nil},
		{Dotenv32, `K="a\nb"`, []string{`in double quotes node dotenv turns \n into a line break, while Ruby dotenv 3 keeps the two characters`}},
	}
	for _, tt := range tests {
		f, err := Parse("t.env", []byte(tt.text), noEnv, WithDotenv(tt.dotenv))
		if err != nil {
			t.Fatal(err)
		}
		got := Lint(f)
		if len(got) != len(tt.want) {
			t.Errorf("%v %q: %d findings, want %d:\n%s", tt.dotenv, tt.text, len(got), len(tt.want), joinFindings(got))
			continue
		}
		for i, w := range tt.want {
			if !strings.Contains(got[i].String(), w) {
				t.Errorf("%v %q: finding %d:\n%s\ndoes not hold\n%s", tt.dotenv, tt.text, i, got[i], w)
			}
		}
	}
}
