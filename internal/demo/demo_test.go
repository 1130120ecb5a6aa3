package demo

import (
	"bytes"
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops/internal/envfile"
	"github.com/fediops/fediops/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestRun runs the whole demo on the package's stack: every step passes,
// the report lists them in order, and nothing printed holds a secret.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	st := testenv.Shared(t)
	var out bytes.Buffer
	rep, err := Run(ctx, Config{Stack: st, MySQL: true, MediaObjects: 120, Out: &out})
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if !rep.OK() {
		t.Fatalf("report not OK:\n%s", out.String())
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", table.String())
	if len(rep.Steps) != len(Steps) {
		t.Fatalf("%d steps, want %d", len(rep.Steps), len(Steps))
	}
	lines := strings.Split(table.String(), "\n")
	for i, name := range Steps {
		s := rep.Steps[i]
		if s.Name != name || s.Result != OK || s.Duration <= 0 || s.Numbers == "" {
			t.Errorf("step %d: %+v, want %s ok with a duration and numbers", i, s, name)
		}
		if !strings.HasPrefix(lines[i+1], name+" ") || !strings.Contains(lines[i+1], " ok ") {
			t.Errorf("table line %d = %q, want step %s ok", i+1, lines[i+1], name)
		}
	}
	if !strings.Contains(table.String(), "all steps passed") {
		t.Errorf("no verdict in the table")
	}
	// The numbers say what happened, not just that it did.
	for name, want := range map[string]string{
		StepHealth:  "6 checks green",
		StepBackup:  "3 backups listed",
		StepRestore: "statuses 4000=4000",
		StepMirror:  "120 copied",
		StepMirror2: "0 copied",
	} {
		if s, _ := rep.Step(name); !strings.Contains(s.Numbers, want) {
			t.Errorf("%s: %q lacks %q", name, s.Numbers, want)
		}
	}

	// The .env was written for the stack and reads back cleanly.
	f, err := envfile.Read(rep.EnvFile, envfile.WithLookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := f.Get("PREPARED_STATEMENTS"); v != "false" {
		t.Errorf("PREPARED_STATEMENTS = %q", v)
	}
	if fi, err := os.Stat(rep.EnvFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("env file mode: %v %v", fi.Mode(), err)
	}
	// No secret value of the .env reaches the output.
	printed := out.String() + table.String()
	for _, e := range f.Entries() {
		if envfile.IsSecret(e.Key) && len(e.Value) >= 6 && strings.Contains(printed, e.Value) {
			t.Errorf("the output holds the value of %s", e.Key)
		}
	}
	if !strings.Contains(printed, "DB_PASS="+envfile.Redacted) {
		t.Errorf("the redacted .env is not printed")
	}
	// What Run served itself is closed.
	if len(rep.Served) != 5 {
		t.Errorf("served %v, want 5 addresses", rep.Served)
	}
	for _, addr := range rep.Served {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Run", addr)
		}
	}
}

// TestRunCancelled: an interrupted run stops what it started and reports
// the steps it did not run as skipped, not as passed.
func TestRunCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rep, err := Run(ctx, Config{Stack: testenv.Shared(t)})
	if err == nil || rep.OK() {
		t.Fatalf("cancelled run passed: %v", err)
	}
	for _, s := range rep.Steps {
		if s.Result == OK {
			t.Errorf("%s passed after cancel", s.Name)
		}
	}
}

func TestRunNeedsStack(t *testing.T) {
	if _, err := Run(context.Background(), Config{}); err == nil {
		t.Fatal("no error without a stack")
	}
}
