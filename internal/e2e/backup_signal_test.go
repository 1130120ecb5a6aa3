package e2e

import (
	"bytes"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/internal/b2fake"
	"github.com/fediops/fediops/internal/testenv"
)

// A run whose B2 went silent mid-upload (it reads the part and never
// answers) still ends soon after SIGTERM, cancels its unfinished large
// file and frees its lock; before backup.SignalContext it kept waiting on
// B2 for minutes and swallowed every further SIGTERM. A B2 that goes away
// (the port closed) ends the run on its own, with the cause.
func TestRunExitsSoonAfterSIGTERM(t *testing.T) {
	testenv.Binary(t, "pg_dump")
	pg := testenv.PG(t)
	bkSeed(t, pg, "bk_sig", "CANARY-sig-77a0", 30)
	lockFree := func(f *bkFixture) {
		t.Helper()
		release, err := backup.Lock(f.envFile + ".lock")
		if err != nil {
			t.Fatalf("lock still held after the run ended: %v", err)
		}
		release()
	}

	f := newBkFixture(t, "bk_sig")
	f.b2.FailNext("b2_upload_part", 1_000_000, b2fake.Stall)
	cmd, stderr, waited := bkStartRun(t, f, f.env, 1)
	time.Sleep(500 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	select {
	case <-waited:
	case <-time.After(20 * time.Second):
		t.Fatalf("backup run still running 20 s after SIGTERM (grace 3 s): %s", stderr.String())
	}
	t.Logf("silent B2: exited %s after SIGTERM with status %d: %s", time.Since(t0).Round(time.Millisecond),
		cmd.ProcessState.ExitCode(), firstLine(stderr.String()))
	if cmd.ProcessState.ExitCode() != 1 {
		t.Errorf("exit status %d, want 1", cmd.ProcessState.ExitCode())
	}
	if u := f.b2.Unfinished("fediops-backups"); len(u) != 0 {
		t.Errorf("%d unfinished large files left", len(u))
	}
	lockFree(f)

	f = newBkFixture(t, "bk_sig")
	cmd, stderr, waited = bkStartRun(t, f, f.env, 1)
	f.b2.Close() // waits for the part in flight
	t0 = time.Now()
	select {
	case <-waited:
	case <-time.After(20 * time.Second):
		t.Fatalf("backup run still running 20 s after B2 went away: %s", stderr.String())
	}
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(stderr.String(), "connection refused") {
		t.Errorf("B2 gone: exit %d: %s", cmd.ProcessState.ExitCode(), stderr.String())
	}
	t.Logf("B2 gone: exited %s after, status %d", time.Since(t0).Round(time.Millisecond), cmd.ProcessState.ExitCode())
	lockFree(f)
}

// bkStartRun starts `backup run` on the fixture with a 3 s stop grace and
// returns once B2 has seen parts part uploads; waited gets Wait's result.
func bkStartRun(t *testing.T, f *bkFixture, env []string, parts int) (*exec.Cmd, *bytes.Buffer, chan error) {
	t.Helper()
	cmd := exec.Command(Build(t, "backup"), f.args("run", "-stop-grace", "3s")...)
	cmd.Env = Env(env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	for deadline := time.Now().Add(60 * time.Second); f.b2.Calls("b2_upload_part") < parts; {
		select {
		case err := <-waited:
			t.Fatalf("run ended (%v) before %d part uploads: %s", err, parts, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d part uploads within 60 s", parts)
		}
	}
	return cmd, &stderr, waited
}
