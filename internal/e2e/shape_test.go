package e2e

import (
	"strings"
	"testing"
)

// TestCommandShape: every command of every program answers -h on stdout
// with exit 0 and the same sections: its usage, what it does, its flags
// with their defaults, the environment it reads and its exit statuses;
// a flag it does not know exits 2 with one line on stderr naming the
// command, and nothing on stdout.
func TestCommandShape(t *testing.T) {
	for _, c := range [][]string{
		{"plan", "web"}, {"plan", "sidekiq"}, {"plan", "budget"}, {"provision"}, {"provision", "migrate-env"}, {"provision", "targets"}, {"health"}, {"tunnel"},
		{"backup", "run"}, {"backup", "list"}, {"backup", "restore"}, {"backup", "verify"}, {"backup", "prune"}, {"backup", "units"}, {"backup", "mirror"},
	} {
		prog, sub := c[0], c[1:]
		r := Run(t, prog, Env(), append(sub, "-h")...)
		if r.Code != 0 || r.Stderr != "" {
			t.Errorf("-h: %s", r)
		}
		name := strings.Join(c, " ")
		for _, want := range []string{"usage: " + name, "\nFlags:\n", "(default ", "\nEnvironment:\n", "\nExit status:\n  0  ", "\n  1  ", "\n  2  "} {
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("%s -h lacks %q:\n%s", name, want, r.Stdout)
			}
		}
		r = Run(t, prog, Env(), append(sub, "-no-such-flag")...)
		if r.Code != 2 || r.Stdout != "" || r.Stderr != prog+": flag provided but not defined: -no-such-flag ("+name+" -h lists the flags)\n" {
			t.Errorf("unknown flag: %s", r)
		}
	}
	for _, prog := range []string{"plan", "provision", "backup"} {
		if r := Run(t, prog, Env(), "help"); r.Code != 0 || !strings.Contains(r.Stdout, "Commands:") {
			t.Errorf("%s help: %s", prog, r)
		}
	}
}
