package e2e

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBackupExitCodes is backup's exit-code matrix, each row within 2 s.
// Every row but the last two ends before a network call: B2 here is a
// listener that never answers, which a network call would wait on; the
// last two meet a closed port, which ends them at once with its cause.
func TestBackupExitCodes(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + closed.Addr().String()
	closed.Close()
	dir := t.TempDir()
	notPEM := writeFile(t, dir, "bad.crt", "not a certificate\n")
	env := []string{"B2_APPLICATION_KEY_ID=k", "B2_APPLICATION_KEY=secret-b2-key", "B2_BUCKET=b", "B2_API_BASE=http://" + silent.Addr().String(),
		"REDIS_URL=rediss://:pw@127.0.0.1:1", "SLACK_WEBHOOK_URL="}
	recipient := "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
	lock := filepath.Join(dir, "lock")
	run := func(more ...string) []string {
		return append([]string{"run", "-env", "", "-sources", "redis", "-lock", lock, "-recipient", recipient}, more...)
	}
	for _, c := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"help", []string{"-h"}, 0, ""},
		{"bad flag", []string{"list", "-nope"}, 2, "flag provided but not defined: -nope"},
		{"unknown command", []string{"lst"}, 2, `unknown command "lst"`},
		{"stray argument", []string{"list", "-env", "", "oops", "-prefix", "nothing/"}, 2, `unexpected argument "oops"`},
		{"missing file", []string{"list", "-env", filepath.Join(dir, "missing.env")}, 2, "missing.env"},
		{"bad CA", run("-redis-cacert", notPEM), 2, "bad.crt"},
		{"missing CA", run("-redis-cacert", filepath.Join(dir, "missing.crt")), 2, "missing.crt"},
		{"bad B2 URL", []string{"list", "-env", "", "-b2-api", "http://b2.example.com"}, 2, "https"},
		{"bad port", []string{"list", "-env", "", "-b2-api", "http://127.0.0.1:99999"}, 2, "99999"},
		{"no recipient", []string{"run", "-env", "", "-sources", "redis", "-lock", lock}, 2, "recipient"},
		{"unknown source", run("-sources", "redis,mongo"), 2, "mongo"},
		{"bad keep", run("-keep-last", "0"), 2, "-keep-last"},
		{"unreachable B2 (list)", []string{"list", "-env", "", "-b2-api", closedURL}, 1, "connection refused"},
		{"unreachable B2 (run)", run("-b2-api", closedURL), 1, "connection refused"},
	} {
		r := bkRun(t, env, c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.msg) || r.wall > 2*time.Second {
			t.Errorf("%s: want exit %d with %q on stderr; got %d after %s:\n%s", c.name, c.code, c.msg, r.code, r.wall, r.stderr)
		}
		if strings.Contains(r.stdout+r.stderr, "secret-b2-key") {
			t.Errorf("%s: the B2 key in the output", c.name)
		}
	}
}
