package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHealthProgram runs the program against an instance whose web and
// streaming servers answer and whose database and Redis do not: the table
// says which, the exit status is 1, -push reports "down", and
// -prometheus serves the same results.
func TestHealthProgram(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("OK")) })
	mux.HandleFunc("GET /api/v1/streaming/health", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("OK")) })
	pushed := make(chan string, 10)
	mux.HandleFunc("GET /api/push/T0k", func(w http.ResponseWriter, r *http.Request) {
		pushed <- r.URL.RawQuery
		w.Write([]byte(`{"ok":true}`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	env := filepath.Join(t.TempDir(), ".env.production")
	dead := "127.0.0.1:1" // nothing listens on port 1
	host, port, _ := net.SplitHostPort(dead)
	data := "DB_HOST=" + host + "\nDB_PORT=" + port + "\nDB_USER=mastodon\nDB_PASS='s3cr3t$pw'\nDB_SSLMODE=require\n" +
		"REDIS_HOST=" + host + "\nREDIS_PORT=" + port + "\nREDIS_PASSWORD=r3dispw\n"
	if err := os.WriteFile(env, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"-env", env, "-web", srv.URL, "-streaming", srv.URL, "-timeout", "3s"}

	var out, errb bytes.Buffer
	rc := run(context.Background(), append(base, "-push", srv.URL+"/api/push/T0k?status=up&msg=OK&ping="), &out, &errb)
	if rc != 1 {
		t.Fatalf("rc %d\n%s\n%s", rc, out.String(), errb.String())
	}
	table := out.String()
	for _, want := range []string{"web 127.0.0.1", "streaming 127.0.0.1", "database", "redis", "sidekiq"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	for _, line := range strings.Split(table, "\n") {
		if strings.HasPrefix(line, "web ") && !strings.Contains(line, " ok ") || strings.HasPrefix(line, "redis") && !strings.Contains(line, " fail ") {
			t.Errorf("wrong status: %s", line)
		}
	}
	if strings.Contains(table, "s3cr3t") || strings.Contains(table, "r3dispw") {
		t.Errorf("secret in output:\n%s", table)
	}
	select {
	case q := <-pushed:
		if !strings.Contains(q, "status=down") || !strings.Contains(q, "fail%3A+database") {
			t.Errorf("push %s", q)
		}
	default:
		t.Error("nothing pushed")
	}

	// -prometheus keeps running and serves the results until ctx ends.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append(base, "-prometheus", addr, "-interval", "1h", "-db-size", "2"), io.Discard, io.Discard)
	}()
	var body string
	for i := 0; i < 100 && !strings.Contains(body, "fediops_check_up"); i++ {
		time.Sleep(100 * time.Millisecond)
		if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
		}
	}
	cancel()
	if rc := <-done; rc != 0 {
		t.Errorf("prometheus mode rc %d", rc)
	}
	// Redis does not answer: the Sidekiq collector is left out, the rest is served.
	for _, want := range []string{`fediops_check_up{check="database"} 0`, `fediops_check_status{check="web `,
		`fediops_db_connections_limit{cluster="127.0.0.1"} 47`, `fediops_db_connections_budgeted{cluster="127.0.0.1"} 10`,
		`pgpool_max_conns{pool="mastodon_production"} 2`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}

	// A cron run leaves the results and the budget in FEDIOPS_METRICS_DIR.
	dir := t.TempDir()
	if err := os.WriteFile(env, []byte(data+"FEDIOPS_METRICS_DIR="+dir+"\nFEDIOPS_DB_CONN_LIMIT=22\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if rc := run(context.Background(), base, io.Discard, io.Discard); rc != 1 {
		t.Errorf("textfile run rc %d", rc)
	}
	prom, err := os.ReadFile(filepath.Join(dir, "fediops_health.prom"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`fediops_check_up{check="redis"} 0`, `fediops_db_connections_limit{cluster="127.0.0.1"} 22`} {
		if !strings.Contains(string(prom), want) {
			t.Errorf("textfile lacks %q:\n%s", want, prom)
		}
	}

	for _, args := range [][]string{{"-env", "/nonexistent/.env"}, {"-timeout", "0s"}, {"stray"}, {"-db-size", "-1"}} {
		if rc := run(context.Background(), args, io.Discard, io.Discard); rc != 2 {
			t.Errorf("%v: rc %d, want 2", args, rc)
		}
	}
}
