package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/creack/pty"

	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/agezstd"
	"github.com/fediops/fediops/backup/b2store"
	"github.com/fediops/fediops/internal/testenv"
)

// SIGTERM while B2 answers every part with 503 (B2_RETRY_FOR far away):
// the run exits 1 within -stop-grace, Slack hears why, the metrics say the
// run failed, and the B2 stand-in holds no unfinished large file.
func TestSIGTERMMidRetryNotifiesAndCancels(t *testing.T) {
	testenv.Binary(t, "pg_dump")
	pg := testenv.PG(t)
	bkSeed(t, pg, "bk_term", "CANARY-term-41c2", 30)
	f := newBkFixture(t, "bk_term")
	metrics := t.TempDir()
	env := append(f.env, "B2_RETRY_FOR=10m", "FEDIOPS_METRICS_DIR="+metrics)
	f.b2.FailNext("b2_upload_part", 1_000_000, 503)
	cmd, stderr, waited := bkStartRun(t, f, env, 3)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Fatalf("still running 10 s after SIGTERM (grace 3 s): %s", stderr.String())
	}
	took := time.Since(t0)
	if code := cmd.ProcessState.ExitCode(); code != 1 || took > 4*time.Second {
		t.Errorf("exit %d %s after SIGTERM, want 1 within the 3 s grace: %s", code, took, stderr.String())
	}
	if strings.Contains(stderr.String(), "panic") {
		t.Errorf("panicked: %s", stderr.String())
	}
	if u := f.b2.Unfinished("fediops-backups"); len(u) != 0 {
		t.Errorf("%d unfinished large files left in B2", len(u))
	}
	f.mu.Lock()
	msgs := append([]string(nil), f.msgs...)
	f.mu.Unlock()
	if len(msgs) != 1 || !strings.Contains(msgs[0], "BACKUP FAILED") || !strings.Contains(msgs[0], "terminated") {
		t.Errorf("Slack after SIGTERM: %q", msgs)
	}
	prom, err := os.ReadFile(filepath.Join(metrics, "fediops_backup.prom"))
	if err != nil || !strings.Contains(string(prom), `fediops_backup_success{source="postgres"} 0`) {
		t.Errorf("metrics after SIGTERM: %v\n%s", err, prom)
	}
	t.Logf("exit %d %s after SIGTERM, %d part uploads; Slack: %.200s", cmd.ProcessState.ExitCode(), took.Round(time.Millisecond),
		f.b2.Calls("b2_upload_part"), msgs)
}

// A private age key given where a public one belongs is refused, and
// neither the output nor Slack ever holds it.
func TestPrivateKeyNeverPrinted(t *testing.T) {
	f := newBkFixture(t, "bk_never")
	secret := f.id.String()
	for _, args := range [][]string{
		{"run", "-env", f.envFile, "-sources", "postgres", "-lock", f.envFile + ".lock", "-recipient", secret},
		{"units", "-env", f.envFile, "-sources", "postgres", "-recipient", secret},
	} {
		r := bkRun(t, f.env, args...)
		if r.code != 2 || !strings.Contains(r.stderr, "age-keygen -y") {
			t.Errorf("backup %s -recipient AGE-SECRET-KEY-...: exit %d\n%s", args[0], r.code, r.stderr)
		}
		if strings.Contains(r.stdout+r.stderr, secret[len("AGE-SECRET-KEY-1"):]) {
			t.Errorf("backup %s printed the private key", args[0])
		}
	}
	r := bkRun(t, append(f.env, "BACKUP_AGE_RECIPIENTS="+secret), "run", "-env", f.envFile, "-sources", "postgres", "-lock", f.envFile+".lock")
	if r.code != 2 || strings.Contains(r.stderr, secret[len("AGE-SECRET-KEY-1"):]) {
		t.Errorf("BACKUP_AGE_RECIPIENTS holding a private key: exit %d\n%s", r.code, r.stderr)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.msgs) == 0 {
		t.Error("the refused runs notified nothing")
	}
	for _, m := range f.msgs {
		if strings.Contains(m, secret[len("AGE-SECRET-KEY-1"):]) {
			t.Errorf("Slack got the private key: %.200s", m)
		}
	}
}

// A backup stored and listed whose Slack message fails exits 3, not 1:
// alerting can tell "no backup" from "no notification".
func TestNotifierFailureExits3(t *testing.T) {
	testenv.Binary(t, "pg_dump")
	pg := testenv.PG(t)
	bkSeed(t, pg, "bk_notify", "CANARY-notify", 1)
	f := newBkFixture(t, "bk_notify")
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "invalid_token", http.StatusForbidden)
	}))
	defer dead.Close()
	env := append(f.env, "SLACK_WEBHOOK_URL="+dead.URL)
	r := bkRun(t, env, f.args("run")...)
	if r.code != 3 || !strings.Contains(r.stderr, "stored, but") || !strings.Contains(r.stderr, "403") {
		t.Fatalf("run with a dead webhook: exit %d\n%s", r.code, r.stderr)
	}
	if l := bkRun(t, env, f.args("list")...); strings.Count(l.stdout, "postgres ") != 1 {
		t.Fatalf("the backup is not listed after exit 3: %q %s", l.stdout, l.stderr)
	}
	t.Logf("exit %d: %s", r.code, firstLine(r.stderr))
}

// On a terminal restore and mirror show their progress (IEC units), the
// description naming what moves; the same commands without one print
// nothing on success (the other tests).
func TestProgressOnATerminal(t *testing.T) {
	srv, env := bkBucket(t)
	id, idf := bkKeyFile(t)
	ctx := context.Background()
	st, err := b2store.Open(ctx, b2store.Config{KeyID: srv.KeyID, Key: srv.Key, Bucket: "fediops-backups", APIBase: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	p := &backup.Pipeline{Store: st, Prefix: "db/", Sealer: &agezstd.Sealer{Recipients: []age.Recipient{id.Recipient()}}}
	if _, err := p.Backup(ctx, bkRDBSource{}); err != nil {
		t.Fatal(err)
	}
	out := onTerminal(t, env, "restore", "-env", "", "-source", "redis", "-to-file", filepath.Join(t.TempDir(), "r.rdb"), "-identity", idf)
	if !strings.Contains(out, "restore db/redis/") || !strings.Contains(out, "KiB") || strings.Contains(out, " kB") {
		t.Errorf("restore on a terminal showed no progress:\n%q", out)
	}

	m := newBkMirror(t)
	for i := range 5 {
		if _, err := m.src.Put(ctx, fmt.Sprintf("a/%d.png", i), strings.NewReader(strings.Repeat("x", 50_000)), nil); err != nil {
			t.Fatal(err)
		}
	}
	out = onTerminal(t, m.env, "mirror", "-env", "", "-lock", filepath.Join(t.TempDir(), "lock"))
	if !strings.Contains(out, "mirror: 5 copied, 0 deleted") || !strings.Contains(out, "KiB") {
		t.Errorf("mirror on a terminal showed no progress:\n%q", out)
	}
}

// onTerminal runs the backup program with stderr on a pseudo-terminal and
// returns what it wrote there; it must exit 0.
func onTerminal(t *testing.T, env []string, args ...string) string {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	cmd := exec.Command(Build(t, "backup"), args...)
	cmd.Env = Env(env...)
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	var term bytes.Buffer
	read := make(chan error, 1)
	go func() { _, err := io.Copy(&term, ptmx); read <- err }()
	werr := cmd.Wait()
	select {
	case err := <-read: // EIO once the child's side is closed
		var pe *os.PathError
		if err != nil && !(errors.As(err, &pe) && errors.Is(pe.Err, syscall.EIO)) {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the terminal did not close")
	}
	if werr != nil {
		t.Fatalf("backup %s on a terminal: %v\n%s", args[0], werr, term.String())
	}
	return term.String()
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}
