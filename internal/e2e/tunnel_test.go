package e2e

import (
	"bufio"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fediops/fediops/internal/testenv"
)

func tunnel(t *testing.T, args ...string) Result {
	t.Helper()
	return Run(t, "tunnel", Env(), args...)
}

func TestTunnelCheck(t *testing.T) {
	dir := t.TempDir()
	seed := writeFile(t, dir, "redis.conf", "pid = /run/stunnel-redis.pid\ndelay = yes\n[redis-client]\nclient = yes\naccept = 127.0.0.1:6379\nconnect = path-to-redis-database.ondigitalocean.com:25061\n")
	// The seed's file passes, with a note on stderr: no CAfile means the
	// system roots (stunnel verified nothing), which DO's private CA fails.
	r := tunnel(t, "-check", "-config", seed)
	if r.Code != 0 || !strings.Contains(r.Stdout, "1 service(s) OK") || strings.Contains(r.Stdout, "note") ||
		!strings.Contains(r.Stderr, "tunnel: note: "+seed+":3: [redis-client] no CAfile: backend certificates will be verified against the system roots") ||
		!strings.Contains(r.Stderr, "CAfile =") {
		t.Errorf("-check on the seed's file: %s", r)
	}
	bad := writeFile(t, dir, "bad.conf", "[r]\nclient = yes\naccept = 6379\nconnect = r.example.com:25061\nsslVersion = TLSv1.2\n")
	if r := tunnel(t, "-check", "-config", bad); r.Code != 2 || !strings.Contains(r.Output(), "bad.conf:5: unsupported option \"sslversion\"") {
		t.Errorf("-check on a bad file: %s", r)
	}
	writeFile(t, dir, "bad.conf", "[r]\nclient = yes\naccept = 6379\nconnect = r.example.com:25061\n")
	if r := tunnel(t, "-check", "-config", bad); r.Code != 2 || !strings.Contains(r.Output(), "not a loopback address") {
		t.Errorf("accept = 6379 without -unsafe-listen: %s", r)
	}
	if r := tunnel(t, "-check", "-unsafe-listen", "-config", bad); r.Code != 0 {
		t.Errorf("accept = 6379 with -unsafe-listen: %s", r)
	}
	if r := tunnel(t, "-print-unit", "-config", seed); r.Code != 0 || !strings.Contains(r.Output(), "ExecReload=/bin/kill -HUP $MAINPID") || !strings.Contains(r.Output(), seed) {
		t.Errorf("-print-unit: %s", r)
	}
	if r := tunnel(t, "-nonsense"); r.Code != 2 {
		t.Errorf("unknown flag: %s", r)
	}
}

// TestTunnelCheckListsEveryProblem: -check reports every problem of the
// file at once, each at its file:line, and exits 2: CA files that do not
// load (global or per service) beside an unsupported key, bad addresses,
// a public listener.
func TestTunnelCheckListsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	notPEM := writeFile(t, dir, "empty.crt", "not a certificate\n")
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
		conf := writeFile(t, dir, "redis.conf", tc.conf)
		r := tunnel(t, "-check", "-config", conf)
		if r.Code != 2 || r.Stdout != "" {
			t.Errorf("want exit 2 and nothing on stdout: %s", r)
		}
		for _, w := range tc.want {
			if !strings.Contains(r.Stderr, conf+w) {
				t.Errorf("-check on\n%s\ndoes not report %q:\n%s", tc.conf, conf+w, r.Stderr)
			}
		}
	}
}

// redisConf is a stunnel file with one service in front of the shared TLS
// Redis, verified against its CA.
func redisConf(t *testing.T, dir, accept string) string {
	rd := testenv.RedisTLS(t)
	return writeFile(t, dir, "redis.conf", fmt.Sprintf("[redis]\nclient = yes\naccept = %s\nconnect = localhost:%d\nCAfile = %s\n", accept, rd.Port, rd.CAFile))
}

// ping sends PING to the plain side of the tunnel with the password.
func ping(addr, user, pass string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "AUTH %s %s\r\nPING\r\n", user, pass)
	br := bufio.NewReader(c)
	var lines []string
	for range 2 {
		l, err := br.ReadString('\n')
		if err != nil {
			return strings.Join(lines, ""), err
		}
		lines = append(lines, strings.TrimSpace(l))
	}
	return strings.Join(lines, " "), nil
}

// TestTunnelServes runs the tunnel against the TLS Redis: a client's PING
// goes through, /healthz answers, -v adds the configuration at debug and
// SIGTERM ends it with status 0 after draining. The password never shows.
func TestTunnelServes(t *testing.T) {
	rd := testenv.RedisTLS(t)
	dir := t.TempDir()
	accept, httpAddr := freeAddr(t), freeAddr(t)
	conf := redisConf(t, dir, accept)
	env := writeFile(t, dir, ".env.production", fmt.Sprintf("REDIS_USER=%s\nREDIS_PASSWORD=%s\n", rd.User, rd.Password))
	for _, verbose := range []bool{false, true} {
		args := []string{"-config", conf, "-env", env, "-http", httpAddr, "-drain", "2s"}
		if verbose {
			args = append(args, "-v")
		}
		p := Start(t, "tunnel", Env(), args...)
		var got string
		p.WaitFor(t, 20*time.Second, "PONG through the tunnel", func() bool { got, _ = ping(accept, rd.User, rd.Password); return got == "+OK +PONG" })
		p.WaitFor(t, 10*time.Second, "/healthz 200", func() bool { code, _ := get("http://" + httpAddr + "/healthz"); return code == 200 })
		p.Signal(t, syscall.SIGTERM)
		r := p.Wait(t, 10*time.Second)
		if r.Code != 0 {
			t.Errorf("SIGTERM: %s", r)
		}
		NoSecret(t, r.Output(), rd.Password)
		debug := strings.Contains(r.Stderr, "level=DEBUG msg=service name=redis")
		if !strings.Contains(r.Stderr, "level=INFO") || debug != verbose {
			t.Errorf("-v %t: debug lines %t:\n%s", verbose, debug, r.Stderr)
		}
		LogLines(t, "tunnel", r.Stderr)
	}
}

// TestTunnelExitCodes is the tunnel's exit-code matrix. It calls no server
// before it listens, so an unreachable backend is no error: the tunnel
// runs, /healthz says 503, a client's connection is closed, and SIGTERM
// ends it with 0.
func TestTunnelExitCodes(t *testing.T) {
	dir := t.TempDir()
	good := redisConf(t, dir, "127.0.0.1:6390")
	notPEM := writeFile(t, dir, "bad.crt", "not a certificate\n")
	badCA := writeFile(t, dir, "badca.conf", "[r]\nclient = yes\naccept = 127.0.0.1:6390\nconnect = localhost:25061\nCAfile = "+notPEM+"\n")
	badPort := writeFile(t, dir, "badport.conf", "[r]\nclient = yes\naccept = 127.0.0.1:99999\nconnect = localhost:25061\n")
	public := writeFile(t, dir, "public.conf", "[r]\nclient = yes\naccept = 6390\nconnect = localhost:25061\n")
	for _, c := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"help", []string{"-h"}, 0, ""},
		{"check", []string{"-check", "-config", good}, 0, ""},
		{"bad flag", []string{"-nope"}, 2, "flag provided but not defined: -nope"},
		{"stray argument", []string{"-check", "stray"}, 2, `unexpected argument "stray"`},
		{"missing file", []string{"-check", "-config", filepath.Join(dir, "missing.conf")}, 2, "missing.conf"},
		{"missing env file", []string{"-check", "-config", good, "-env", filepath.Join(dir, "missing.env")}, 2, "missing.env"},
		{"bad CA", []string{"-check", "-config", badCA}, 2, "holds no PEM certificate"},
		{"bad port", []string{"-check", "-config", badPort}, 2, `port "99999"`},
		{"bad -http port", []string{"-check", "-config", good, "-http", "127.0.0.1:99999"}, 2, `-http: listen address 127.0.0.1:99999: port "99999"`},
		{"accept not loopback", []string{"-check", "-config", public}, 2, "is not a loopback address"},
		{"-http not loopback", []string{"-check", "-config", good, "-http", "0.0.0.0:9121"}, 2, "-http: listen address 0.0.0.0:9121 is not a loopback address"},
		{"bad drain", []string{"-check", "-config", good, "-drain", "0s"}, 2, "-drain"},
	} {
		r := tunnel(t, c.args...)
		if r.Code != c.code || !strings.Contains(r.Stderr, c.msg) {
			t.Errorf("%s: want exit %d with %q on stderr; %s", c.name, c.code, c.msg, r)
		}
	}

	// Unreachable host: nothing listens on the backend port.
	accept, httpAddr := freeAddr(t), freeAddr(t)
	dead := writeFile(t, dir, "dead.conf", "[r]\nclient = yes\naccept = "+accept+"\nconnect = 127.0.0.1:1\n")
	p := Start(t, "tunnel", Env("REDIS_PASSWORD=pw"), "-config", dead, "-http", httpAddr)
	p.WaitFor(t, 10*time.Second, "/healthz 503", func() bool { code, _ := get("http://" + httpAddr + "/healthz"); return code == 503 })
	if got, err := ping(accept, "default", "pw"); err == nil {
		t.Errorf("a client reached a dead backend: %q", got)
	}
	p.Signal(t, syscall.SIGTERM)
	if r := p.Wait(t, 20*time.Second); r.Code != 0 || !strings.Contains(r.Stderr, "backend dial failed") {
		t.Errorf("unreachable backend: %s", r)
	} else if strings.Contains(r.Stderr, "failed to dial") {
		t.Errorf("go-redis's own message without -v: %s", r)
	}
	p = Start(t, "tunnel", Env("REDIS_PASSWORD=pw"), "-config", dead, "-http", httpAddr, "-v")
	p.WaitFor(t, 10*time.Second, "go-redis's message", func() bool {
		get("http://" + httpAddr + "/healthz") // dials the backend through go-redis
		return strings.Contains(p.Stderr(), "failed to dial")
	})
	p.Signal(t, syscall.SIGTERM)
	r := p.Wait(t, 20*time.Second)
	LogLines(t, "tunnel", r.Stderr)
	if !strings.Contains(r.Stderr, `level=DEBUG msg="redis: connection pool: failed to dial`) || !strings.Contains(r.Stderr, "from=go-redis") {
		t.Errorf("go-redis's message is not a debug line: %s", r)
	}
}
