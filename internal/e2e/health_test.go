package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fediops/fediops/internal/testenv"
)

// mastodonNodes serves what health asks of Mastodon's web and streaming
// nodes (GET /health, GET /api/v1/streaming/health) and an Uptime Kuma push
// monitor; hits counts every request.
type mastodonNodes struct {
	*httptest.Server
	hits   atomic.Int64
	pushed chan string
}

func newMastodonNodes(t *testing.T) *mastodonNodes {
	n := &mastodonNodes{pushed: make(chan string, 10)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("OK")) })
	mux.HandleFunc("GET /api/v1/streaming/health", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("OK")) })
	mux.HandleFunc("GET /api/push/T0k", func(w http.ResponseWriter, r *http.Request) {
		n.pushed <- r.URL.RawQuery
		w.Write([]byte(`{"ok":true}`))
	})
	n.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.hits.Add(1); mux.ServeHTTP(w, r) }))
	t.Cleanup(n.Close)
	return n
}

// deadEnv is an instance whose database and Redis do not answer (nothing
// listens on port 1).
const deadEnv = "DB_HOST=127.0.0.1\nDB_PORT=1\nDB_USER=mastodon\nDB_PASS='s3cr3t$pw'\nDB_SSLMODE=require\n" +
	"REDIS_HOST=127.0.0.1\nREDIS_PORT=1\nREDIS_PASSWORD=r3dispw\n"

func writeFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func get(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHealthProgram runs health against an instance whose web and
// streaming servers answer and whose database and Redis do not: the table
// says which, the exit status is 1, -push reports "down", and -prometheus
// serves the same results until SIGTERM.
func TestHealthProgram(t *testing.T) {
	nodes := newMastodonNodes(t)
	dir := t.TempDir()
	env := writeFile(t, dir, ".env.production", deadEnv)
	base := []string{"-env", env, "-web", nodes.URL, "-streaming", nodes.URL, "-timeout", "3s"}

	r := Run(t, "health", Env(), append(base, "-push", nodes.URL+"/api/push/T0k?status=up&msg=OK&ping=")...)
	if r.Code != 1 {
		t.Fatal(r)
	}
	Contains(t, r.Stdout, "web 127.0.0.1", "streaming 127.0.0.1", "database", "redis", "sidekiq")
	for _, line := range strings.Split(r.Stdout, "\n") {
		if strings.HasPrefix(line, "web ") && !strings.Contains(line, " ok ") || strings.HasPrefix(line, "redis") && !strings.Contains(line, " fail ") {
			t.Errorf("wrong status: %s", line)
		}
	}
	Contains(t, r.Stderr, "health: fail: database, redis, sidekiq")
	NoSecret(t, r.Output(), "s3cr3t", "r3dispw", "T0k")
	select {
	case q := <-nodes.pushed:
		if !strings.Contains(q, "status=down") || !strings.Contains(q, "fail%3A+database") {
			t.Errorf("push %s", q)
		}
	default:
		t.Error("nothing pushed")
	}

	// -prometheus keeps running and serves the results until SIGTERM.
	addr := freeAddr(t)
	p := Start(t, "health", Env(), append(base, "-prometheus", addr, "-interval", "1h", "-db-size", "2")...)
	var body string
	p.WaitFor(t, 30*time.Second, "metrics", func() bool {
		_, body = get("http://" + addr + "/metrics")
		return strings.Contains(body, "fediops_check_up")
	})
	p.Signal(t, syscall.SIGTERM)
	if r := p.Wait(t, 10*time.Second); r.Code != 0 {
		t.Errorf("prometheus mode: %s", r)
	}
	// Redis does not answer: the Sidekiq collector is left out, the rest is served.
	Contains(t, body, `fediops_check_up{check="database"} 0`, `fediops_check_status{check="web `,
		`fediops_db_connections_limit{cluster="127.0.0.1"} 47`, `fediops_db_connections_budgeted{cluster="127.0.0.1"} 10`,
		`pgpool_max_conns{pool="mastodon_production"} 2`)

	// A cron run leaves the results and the budget in FEDIOPS_METRICS_DIR.
	metrics := t.TempDir()
	writeFile(t, dir, ".env.production", deadEnv+"FEDIOPS_METRICS_DIR="+metrics+"\nFEDIOPS_DB_CONN_LIMIT=22\n")
	if r := Run(t, "health", Env(), base...); r.Code != 1 {
		t.Errorf("textfile run: %s", r)
	}
	prom, err := os.ReadFile(filepath.Join(metrics, "fediops_health.prom"))
	if err != nil {
		t.Fatal(err)
	}
	Contains(t, string(prom), `fediops_check_up{check="redis"} 0`, `fediops_db_connections_limit{cluster="127.0.0.1"} 22`)
}

// healthyEnv is an instance whose database (pgBouncer with DO's private
// CA) and Redis (TLS with its own CA) answer, and where one live Sidekiq
// process serves every queue, scheduler included.
func healthyEnv(t *testing.T) string {
	b, rd := testenv.Bouncer(t), testenv.RedisTLS(t)
	c := rd.Client()
	defer c.Close()
	ctx := context.Background()
	id := "e2e:4242:" + strconv.FormatInt(time.Now().UnixNano(), 36)
	queues := []string{"default", "push", "ingress", "mailers", "pull", "scheduler", "fasp"}
	info, _ := json.Marshal(map[string]any{"hostname": "e2e", "started_at": float64(time.Now().Add(-time.Hour).Unix()), "pid": 4242,
		"tag": "mastodon", "queues": queues, "concurrency": 25, "identity": id, "version": "7.3.9", "labels": []string{}})
	pipe := c.TxPipeline()
	pipe.SAdd(ctx, "processes", id)
	pipe.SAdd(ctx, "queues", queues)
	pipe.HSet(ctx, id, "info", string(info), "busy", 0, "beat", strconv.FormatInt(time.Now().Unix(), 10), "quiet", "false")
	pipe.Expire(ctx, id, 5*time.Minute)
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c := rd.Client()
		defer c.Close()
		c.SRem(ctx, "processes", id)
		c.Del(ctx, id)
	})
	return fmt.Sprintf("DB_HOST=%s\nDB_PORT=%d\nDB_NAME=%s\nDB_USER=%s\nDB_PASS='%s'\nDB_SSLMODE=verify-full\nPREPARED_STATEMENTS=false\nFEDIOPS_DB_CA_FILE=%s\n"+
		"REDIS_URL=%s\nFEDIOPS_REDIS_CA_FILE=%s\n", b.Host, b.Port, b.Database, b.User, b.Password, b.CAFile, rd.URL(), rd.CAFile)
}

// TestHealthQuiet: a run that passes prints its table and nothing on
// stderr without a terminal (no log line in every cron mail), info lines
// on a terminal, and debug lines with -v; go-redis's own messages reach
// the log only with -v, as slog lines.
func TestHealthQuiet(t *testing.T) {
	nodes := newMastodonNodes(t)
	dir := t.TempDir()
	env := writeFile(t, dir, ".env.production", healthyEnv(t))
	args := []string{"-env", env, "-web", nodes.URL, "-streaming", nodes.URL}
	r := Run(t, "health", Env(), args...)
	if r.Code != 0 || r.Stderr != "" || !strings.Contains(r.Stdout, "database") {
		t.Fatalf("a run that passes: %s", r)
	}
	for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n")[1:] {
		if !strings.Contains(line, " ok ") && !strings.Contains(line, " warn ") {
			t.Errorf("not ok: %s", line)
		}
	}
	NoSecret(t, r.Output(), testenv.Bouncer(t).Password, testenv.RedisTLS(t).Password)

	// On a terminal (script(1) gives the program a pty) the info lines show.
	script, err := exec.LookPath("script")
	if err != nil {
		t.Fatal("script(1) is missing: apt-get install -y bsdutils")
	}
	cmd := exec.Command(script, "-qec", Build(t, "health")+" "+strings.Join(args, " "), "/dev/null")
	cmd.Env = Env()
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "level=INFO") || !strings.Contains(string(out), "database") {
		t.Errorf("on a terminal: %v\n%s", err, out)
	}

	if r := Run(t, "health", Env(), append(args, "-v")...); r.Code != 0 || !strings.Contains(r.Stderr, "level=INFO") {
		t.Errorf("-v: %s", r)
	}

	// Redis down: go-redis's messages only with -v, and as slog lines.
	down := writeFile(t, dir, "down.env", deadEnv)
	r = Run(t, "health", Env(), "-env", down, "-web", nodes.URL, "-streaming", nodes.URL, "-timeout", "3s")
	if r.Code != 1 || strings.Contains(r.Stderr, "redis: ") && !strings.Contains(r.Stderr, "level=") {
		t.Errorf("Redis down: %s", r)
	}
	if strings.Contains(r.Stderr, "failed to dial") {
		t.Errorf("go-redis's messages without -v: %s", r)
	}
	r = Run(t, "health", Env(), "-env", down, "-web", nodes.URL, "-streaming", nodes.URL, "-timeout", "3s", "-v")
	if !strings.Contains(r.Stderr, "level=DEBUG msg=\"redis: connection pool: failed to dial") || !strings.Contains(r.Stderr, "from=go-redis") {
		t.Errorf("-v with Redis down: %s", r)
	}
	LogLines(t, "health", r.Stderr)
}

// TestHealthExitCodes is health's exit-code matrix. Every local setting is
// checked before the first connection: the web node counts no request for
// the rows that exit 2.
func TestHealthExitCodes(t *testing.T) {
	nodes := newMastodonNodes(t)
	dir := t.TempDir()
	env := writeFile(t, dir, ".env.production", deadEnv)
	notPEM := writeFile(t, dir, "do-ca.crt", "not a certificate\n")
	badCA := writeFile(t, dir, "badca.env", deadEnv+"FEDIOPS_DB_CA_FILE="+notPEM+"\n")
	badPort := writeFile(t, dir, "badport.env", strings.Replace(deadEnv, "REDIS_PORT=1", "REDIS_PORT=99999", 1))
	overBudget := writeFile(t, dir, "budget.env", deadEnv+"FEDIOPS_DB_CONN_LIMIT=5\nWEB_CONCURRENCY=3\nDB_POOL=9\n")
	base := func(envFile string, extra ...string) []string {
		return append([]string{"-env", envFile, "-web", nodes.URL, "-streaming", nodes.URL, "-timeout", "3s"}, extra...)
	}
	for _, c := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"help", []string{"-h"}, 0, ""},
		{"bad flag", []string{"-nope"}, 2, "flag provided but not defined: -nope"},
		{"stray argument", []string{"stray"}, 2, `unexpected argument "stray"`},
		{"bad duration", base(env, "-timeout", "0s"), 2, "-timeout 0s"},
		{"negative size", base(env, "-db-size", "-1"), 2, "-db-size"},
		{"missing file", base(filepath.Join(dir, "missing.env")), 2, "missing.env"},
		{"bad CA", base(badCA), 2, "bad CA: no PEM certificate in it"},
		{"bad port in the settings", base(badPort), 2, `REDIS_PORT="99999"`},
		{"bad port to listen on", base(env, "-prometheus", "127.0.0.1:99999"), 2, `-prometheus: listen address 127.0.0.1:99999: port "99999"`},
		{"listener not loopback", base(env, "-prometheus", "0.0.0.0:9102"), 2, "0.0.0.0:9102 is not a loopback address"},
		// -unsafe-listen lets the address through: the next setting stops the run.
		{"listener allowed", base(filepath.Join(dir, "missing.env"), "-prometheus", "0.0.0.0:9102", "-unsafe-listen"), 2, "missing.env"},
		{"bad web URL", base(env, "-web", "127.0.0.1:3000"), 2, "want http://host:port"},
		{"push URL in clear", base(env, "-push", "http://status.example/api/push/T0k"), 2, "-push: URL http://status.example/...: must be https"},
		{"over budget", base(overBudget), 1, "db budget"},
		{"unreachable host", base(env), 1, "fail: database, redis, sidekiq"},
	} {
		before := nodes.hits.Load()
		r := Run(t, "health", Env(), c.args...)
		if r.Code != c.code || !strings.Contains(r.Stderr, c.msg) {
			t.Errorf("%s: want exit %d with %q on stderr; %s", c.name, c.code, c.msg, r)
		}
		if c.code == 2 && nodes.hits.Load() != before {
			t.Errorf("%s: %d requests before the usage error", c.name, nodes.hits.Load()-before)
		}
		NoSecret(t, r.Output(), "s3cr3t", "r3dispw", "T0k")
	}
}
