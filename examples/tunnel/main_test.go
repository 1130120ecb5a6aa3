package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain lets the tests run this program as a subprocess: the test
// binary plays `tunnel` when TUNNEL_MAIN=1.
func TestMain(m *testing.M) {
	if os.Getenv("TUNNEL_MAIN") == "1" {
		os.Args = append([]string{"tunnel"}, strings.Fields(os.Getenv("TUNNEL_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "TUNNEL_MAIN=1", "TUNNEL_ARGS="+strings.Join(args, " "))
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	seed := filepath.Join(dir, "redis.conf")
	os.WriteFile(seed, []byte("pid = /run/stunnel-redis.pid\ndelay = yes\n[redis-client]\nclient = yes\naccept = 127.0.0.1:6379\nconnect = path-to-redis-database.ondigitalocean.com:25061\n"), 0o644)
	if out, code := run(t, "-check", "-config", seed); code != 0 || !strings.Contains(out, "1 service(s) OK") {
		t.Errorf("-check on the seed's file: exit %d\n%s", code, out)
	}
	bad := filepath.Join(dir, "bad.conf")
	os.WriteFile(bad, []byte("[r]\nclient = yes\naccept = 6379\nconnect = r.example.com:25061\nsslVersion = TLSv1.2\n"), 0o644)
	out, code := run(t, "-check", "-config", bad)
	if code != 2 || !strings.Contains(out, "bad.conf:5: unsupported option \"sslversion\"") {
		t.Errorf("-check on a bad file: exit %d\n%s", code, out)
	}
	os.WriteFile(bad, []byte("[r]\nclient = yes\naccept = 6379\nconnect = r.example.com:25061\n"), 0o644)
	if out, code := run(t, "-check", "-config", bad); code != 2 || !strings.Contains(out, "not a loopback address") {
		t.Errorf("accept = 6379 without -unsafe-listen: exit %d\n%s", code, out)
	}
	if out, code := run(t, "-check", "-unsafe-listen", "-config", bad); code != 0 {
		t.Errorf("accept = 6379 with -unsafe-listen: exit %d\n%s", code, out)
	}
	if out, code := run(t, "-print-unit", "-config", seed); code != 0 || !strings.Contains(out, "ExecReload=/bin/kill -HUP $MAINPID") || !strings.Contains(out, seed) {
		t.Errorf("-print-unit: exit %d\n%s", code, out)
	}
	if _, code := run(t, "-nonsense"); code != 2 {
		t.Errorf("unknown flag: exit %d, want 2", code)
	}
}
