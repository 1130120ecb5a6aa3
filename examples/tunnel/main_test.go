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
	stdout, stderr, code := run3(t, args...)
	return stdout + stderr, code
}

// run3 runs the program and returns its stdout, stderr and exit code.
func run3(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "TUNNEL_MAIN=1", "TUNNEL_ARGS="+strings.Join(args, " "))
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return stdout.String(), stderr.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), 0
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	seed := filepath.Join(dir, "redis.conf")
	os.WriteFile(seed, []byte("pid = /run/stunnel-redis.pid\ndelay = yes\n[redis-client]\nclient = yes\naccept = 127.0.0.1:6379\nconnect = path-to-redis-database.ondigitalocean.com:25061\n"), 0o644)
	// The seed's file passes, with a note on stderr: no CAfile means the
	// system roots (stunnel verified nothing), which DO's private CA fails.
	stdout, stderr, code := run3(t, "-check", "-config", seed)
	if code != 0 || !strings.Contains(stdout, "1 service(s) OK") || strings.Contains(stdout, "note") ||
		!strings.Contains(stderr, "tunnel: note: "+seed+":3: [redis-client] no CAfile: backend certificates will be verified against the system roots") ||
		!strings.Contains(stderr, "CAfile =") {
		t.Errorf("-check on the seed's file: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
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

// TestCheckListsEveryProblem: -check reports every problem of the file at
// once, each at its file:line, and exits 2: CA files that do not load
// (global or per service) beside an unsupported key, bad addresses, a
// public listener.
func TestCheckListsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "empty.crt")
	os.WriteFile(notPEM, []byte("not a certificate\n"), 0o644)
	for _, tc := range []struct {
		conf string
		want []string
	}{
		{"CAfile = /nonexistent.crt\n[r]\nclient = yes\naccept = 127.0.0.1:6379\nconnect = r.example.com:25061\nfoo = bar\n",
			[]string{":1: CAfile: open /nonexistent.crt", `:6: unsupported option "foo"`}},
		{"[r]\nclient = yes\naccept = 127.0.0.1:6379\nCAfile = /nonexistent.crt\nconnect = r.example.com:25061\nfoo = bar\n",
			[]string{":4: CAfile: open /nonexistent.crt", `:6: unsupported option "foo"`}},
		{"[r]\nclient = yes\naccept = 6379\nconnect = r.example.com:99999\nCAfile = " + notPEM + "\n[s]\nclient = yes\naccept = 127.0.0.1:6380\nconnect = bad host:25061\n",
			[]string{":3: [r] accept 0.0.0.0:6379 is not a loopback address", `:4: connect = r.example.com:99999: port "99999"`,
				":5: CAfile " + notPEM + " holds no PEM certificate", `:9: connect = bad host:25061: host "bad host"`}},
	} {
		conf := filepath.Join(dir, "redis.conf")
		os.WriteFile(conf, []byte(tc.conf), 0o644)
		stdout, stderr, code := run3(t, "-check", "-config", conf)
		if code != 2 || stdout != "" {
			t.Errorf("exit %d, stdout %q; want 2 and nothing", code, stdout)
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr, conf+w) {
				t.Errorf("-check on\n%s\ndoes not report %q:\n%s", tc.conf, conf+w, stderr)
			}
		}
	}
}
