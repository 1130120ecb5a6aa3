package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/internal/promfile"
	"github.com/fediops/fediops/internal/testenv"
)

// TestExporter serves and writes what the deploy/ dashboards read about
// an instance made of real parts: pgBouncer in front of PostgreSQL, a
// TLS-only Redis holding a Sidekiq queue, web and streaming HTTP servers.
func TestExporter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	b := testenv.Bouncer(t)
	r := testenv.RedisTLS(t)

	// One job waiting in the default queue for a minute (Sidekiq 7: float seconds).
	rc := r.Client()
	enq := float64(time.Now().Add(-time.Minute).UnixNano()) / 1e9
	job := fmt.Sprintf(`{"class":"ActivityPub::DeliveryWorker","args":[],"queue":"default","jid":"abc123","created_at":%f,"enqueued_at":%f}`, enq, enq)
	if err := rc.SAdd(ctx, "queues", "default").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rc.LPush(ctx, "queue:default", job).Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Del(context.Background(), "queues", "queue:default") })

	web := webStandIn(t)

	env := pooledEnv(b, "NODE_EXTRA_CA_CERTS")
	env["REDIS_URL"], env["FEDIOPS_REDIS_CA_FILE"] = r.URL(), r.CAFile
	env["WEB_CONCURRENCY"], env["MAX_THREADS"] = "3", "9" // the seed's Puma: 27 connections through the pool
	ho := Options{Web: []string{web}, Streaming: []string{web}}

	// Serving: checks, budget, Sidekiq and pool collectors in one scrape.
	e, err := NewExporter(ctx, fediops.MapLookup(env), ExportOptions{Options: ho, Serve: true, DBSizeGiB: 4, Cluster: "majel"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	rep := e.Run(ctx, 10*time.Second)
	for _, res := range rep.Results {
		t.Logf("%-20s %-4s %s %s", res.Name, res.Status, res.Detail, res.Error)
		if name := strings.Fields(res.Name)[0]; name != "sidekiq" && res.Status != StatusOK { // no Sidekiq process runs
			t.Errorf("%s: %s %s", res.Name, res.Status, res.Error)
		}
	}
	if e.Budget == nil || e.Budget.Limit != 97 || e.Budget.Used != 27 || e.BudgetErr != nil {
		t.Fatalf("budget %+v, %v", e.Budget, e.BudgetErr)
	}
	body := scrape(t, e)
	for _, want := range []string{
		`fediops_check_status{check="database"} 0`, `fediops_check_up{check="redis"} 1`,
		`fediops_check_latency_seconds{check="web `, "fediops_check_last_run_timestamp_seconds ",
		`fediops_db_connections_limit{cluster="majel"} 97`, `fediops_db_connections_budgeted{cluster="majel"} 27`,
		`sidekiq_queue_latency_seconds{name="default"} 6`, `sidekiq_queue_enqueued_jobs{name="default"} 1`,
		"sidekiq_processes 0", "sidekiq_enqueued_jobs 1", "sidekiq_processed_jobs_total ", "sidekiq_dead_jobs 0",
		`pgpool_conns{pool="` + b.Database + `",state="idle"}`, `pgpool_max_conns{pool="` + b.Database + `"} 2`,
		`pgpool_acquires_total{pool="` + b.Database + `"}`, "pgpool_acquire_seconds_total", "pgpool_empty_acquires_total",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", body)
	}

	// A cron run: no live collectors; over the limit FEDIOPS_DB_CONN_LIMIT
	// sets, a failing "db budget" check; written as a textfile.
	over := maps.Clone(env)
	over["FEDIOPS_DB_CONN_LIMIT"] = "20"
	e2, err := NewExporter(ctx, fediops.MapLookup(over), ExportOptions{Options: ho})
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	rep = e2.Run(ctx, 10*time.Second)
	last := rep.Results[len(rep.Results)-1]
	if last.Name != "db budget" || last.Status != StatusFail || !strings.Contains(last.Error, "7 over the limit of 20") {
		t.Errorf("over budget: %+v", last)
	}
	mc := promfile.Config{Dir: t.TempDir()}
	if err := mc.Write(ctx, "health", e2.Registry); err != nil {
		t.Fatal(err)
	}
	mfs, err := promfile.ReadFile(filepath.Join(mc.Dir, "fediops_health.prom"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"fediops_check_status", "fediops_check_up", "fediops_check_latency_seconds",
		"fediops_check_last_run_timestamp_seconds", "fediops_db_connections_limit", "fediops_db_connections_budgeted"} {
		if mfs[want] == nil {
			t.Errorf("textfile lacks %s", want)
		}
	}
	for name := range mfs {
		if strings.HasPrefix(name, "sidekiq_") || strings.HasPrefix(name, "pgpool_") {
			t.Errorf("textfile of a run holds the live %s", name)
		}
	}
	if g := mfs["fediops_db_connections_limit"]; g != nil && g.Metric[0].GetGauge().GetValue() != 20 {
		t.Errorf("limit %v, want 20", g.Metric[0].GetGauge().GetValue())
	}

	// A pool smaller than the demand: clients wait, a warning.
	e3, err := NewExporter(ctx, fediops.MapLookup(env), ExportOptions{Options: ho, DBSizeGiB: 1, DBPoolSize: 15})
	if err != nil {
		t.Fatal(err)
	}
	defer e3.Close()
	if last := e3.Checks[len(e3.Checks)-1]; last.Name() != "db budget" {
		t.Errorf("no db budget check: %s", last.Name())
	} else if _, err := last.Run(ctx); !errors.As(err, new(*Warning)) || !strings.Contains(err.Error(), "12 wait") {
		t.Errorf("waiting clients: %v", err)
	}
}

// TestExporterWithout: no limit known, bad budget settings, and a Redis
// that does not answer.
func TestExporterWithout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	env := map[string]string{"DB_HOST": "127.0.0.1", "DB_PORT": "1", "DB_USER": "mastodon", "DB_PASS": "s3cr3t", "DB_SSLMODE": "require",
		"REDIS_HOST": "127.0.0.1", "REDIS_PORT": "1", "REDIS_PASSWORD": "r3dispw"}
	ho := Options{Web: []string{}, Streaming: []string{}}
	e, err := NewExporter(ctx, fediops.MapLookup(env), ExportOptions{Options: ho, Serve: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.Budget != nil || !errors.Is(e.BudgetErr, ErrNoDBLimit) {
		t.Errorf("budget without a limit: %+v %v", e.Budget, e.BudgetErr)
	}
	if e.SettingsErr != nil {
		t.Errorf("servers that do not answer are no settings error: %v", e.SettingsErr)
	}
	e.Run(ctx, 3*time.Second)
	body := scrape(t, e)
	if !strings.Contains(body, `fediops_check_up{check="redis"} 0`) || !strings.Contains(body, `fediops_check_up{check="database"} 0`) ||
		!strings.Contains(body, "pgpool_max_conns") {
		t.Errorf("scrape with Redis and the database down:\n%s", body)
	}
	if strings.Contains(body, "sidekiq_processes") || strings.Contains(body, "fediops_db_connections") {
		t.Errorf("scrape holds what nobody measured:\n%s", body)
	}

	for key, val := range map[string]string{"WEB_CONCURRENCY": "three", "FEDIOPS_DB_CONN_LIMIT": "0"} {
		bad := maps.Clone(env)
		bad[key] = val
		if _, err := NewExporter(ctx, fediops.MapLookup(bad), ExportOptions{Options: ho, DBSizeGiB: 2}); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s=%s: %v", key, val, err)
		}
	}
}

// TestExporterSettingsErr: parts whose settings are wrong are named in
// SettingsErr (and still fail their checks), without a network call.
func TestExporterSettingsErr(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DB_HOST": "127.0.0.1", "DB_PORT": "1", "DB_PASS": "s3cr3t", "FEDIOPS_DB_CA_FILE": notPEM,
		"REDIS_HOST": "127.0.0.1", "REDIS_PORT": "99999"}
	e, err := NewExporter(context.Background(), fediops.MapLookup(env), ExportOptions{Options: Options{Web: []string{}, Streaming: []string{}}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	msg := fmt.Sprint(e.SettingsErr)
	for _, want := range []string{"database: ", "bad CA", "redis: REDIS_PORT=\"99999\"", "sidekiq: REDIS_PORT"} {
		if !strings.Contains(msg, want) {
			t.Errorf("SettingsErr lacks %q: %s", want, msg)
		}
	}
	if strings.Contains(msg, "s3cr3t") {
		t.Errorf("SettingsErr shows the password: %s", msg)
	}
	if rep := e.Run(context.Background(), time.Second); rep.OK() {
		t.Error("the checks of parts with wrong settings pass")
	}
}

func scrape(t *testing.T, e *Exporter) string {
	t.Helper()
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s\n%s", resp.Status, b)
	}
	return string(b)
}
