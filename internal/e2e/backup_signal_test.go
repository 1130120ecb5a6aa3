package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/internal/testenv"
)

// A run whose B2 went away mid-upload (as when the test that started it
// died) must still end soon after SIGTERM and free its lock. Before
// backup.SignalContext it kept retrying B2 for minutes after the signal and
// swallowed every further SIGTERM.
func TestRunExitsSoonAfterSIGTERM(t *testing.T) {
	testenv.Binary(t, "pg_dump")
	pg := testenv.PG(t)
	bkSeed(t, pg, "bk_sig", "CANARY-sig-77a0", 30)
	f := newBkFixture(t, "bk_sig")
	args := f.args("run", "-stop-grace", "3s")
	lock := f.envFile + ".lock"
	cmd := exec.Command(Build(t, "backup"), args...)
	cmd.Env = append(os.Environ(), f.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	for deadline := time.Now().Add(60 * time.Second); f.b2.Calls("b2_upload_part") < 1; {
		select {
		case err := <-waited:
			t.Fatalf("run ended (%v) before uploading a part: %s", err, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no part uploaded within 60 s")
		}
	}
	go f.b2.Close() // B2 goes away; Close waits for the part in flight
	time.Sleep(time.Second)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	select {
	case <-waited:
	case <-time.After(20 * time.Second):
		t.Fatalf("backup run still running 20 s after SIGTERM (grace 3 s): %s", stderr.String())
	}
	t.Logf("exited %s after SIGTERM with status %d: %s", time.Since(t0).Round(time.Millisecond),
		cmd.ProcessState.ExitCode(), strings.TrimSpace(stderr.String()))
	if cmd.ProcessState.ExitCode() != 1 {
		t.Errorf("exit status %d, want 1", cmd.ProcessState.ExitCode())
	}
	release, err := backup.Lock(lock)
	if err != nil {
		t.Fatalf("lock still held after the run ended: %v", err)
	}
	release()
}
