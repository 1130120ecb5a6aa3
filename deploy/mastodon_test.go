package deploy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/fediops/fediops/internal/mastofake"
	"github.com/fediops/fediops/internal/promfile"
	"github.com/fediops/fediops/redistls"
)

// parsePage reads a /metrics page with Prometheus' own parser.
func parsePage(t *testing.T, r io.Reader) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		t.Fatalf("parse metrics: %v", err)
	}
	return fams
}

// seriesNames lists the names a family puts in Prometheus (a summary's
// quantiles under its name, plus _sum and _count).
func seriesNames(f *dto.MetricFamily) []string {
	n := f.GetName()
	if f.GetType() == dto.MetricType_SUMMARY || f.GetType() == dto.MetricType_HISTOGRAM {
		return []string{n, n + "_sum", n + "_count", n + "_bucket"}
	}
	return []string{n}
}

// mastodonNames returns the metric names Mastodon's sources serve, from the
// stand-ins' pages after one step of load: the exporter of 4.4+ (ruby_*)
// and the streaming server.
func mastodonNames(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	e := mastofake.NewExporter(mastofake.PrefixCollector)
	srv := httptest.NewServer(e)
	defer srv.Close()
	c := &mastofake.Client{URL: srv.URL}
	ctx := context.Background()
	if err := (&mastofake.Web{Hostname: "web-1", PID: 10, Workers: 2, Threads: 5, RequestsPerSecond: 100, ErrorShare: 0.1}).Step(ctx, c, time.Second); err != nil {
		t.Fatal(err)
	}
	sk := &mastofake.Sidekiq{Hostname: "sidekiq-1", PID: 20, Concurrency: 10, Throughput: 100,
		Arrivals: map[string]float64{"default": 50, "push": 50, "ingress": 20, "pull": 5, "mailers": 5, "scheduler": 1}}
	if err := sk.Step(ctx, c, time.Second); err != nil {
		t.Fatal(err)
	}
	for _, f := range parsePage(t, strings.NewReader(e.Text())) {
		for _, n := range seriesNames(f) {
			out[n] = "Mastodon's prometheus_exporter (mastofake)"
		}
	}
	st := mastofake.NewStreaming(1)
	st.Step(time.Second)
	ssrv := httptest.NewServer(st)
	defer ssrv.Close()
	resp, err := http.Get(ssrv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for _, f := range parsePage(t, resp.Body) {
		for _, n := range seriesNames(f) {
			out[n] = "Mastodon's streaming server (mastofake)"
		}
	}
	return out
}

// need finds the binaries a test runs, failing with the install line.
func need(t *testing.T, names ...string) map[string]string {
	t.Helper()
	hint := map[string]string{
		"prometheus":               "apt-get install -y prometheus",
		"prometheus-node-exporter": "apt-get install -y prometheus-node-exporter",
		"statsd_exporter":          "GOBIN=/usr/local/bin go install github.com/prometheus/statsd_exporter@v0.31.0",
	}
	out := map[string]string{}
	for _, n := range names {
		p, err := exec.LookPath(n)
		if err != nil {
			t.Fatalf("%s not found; install it with: %s (or scripts/deps.sh)", n, hint[n])
		}
		out[n] = p
	}
	return out
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start runs a server for the test's length, its output in dir/name.log.
func start(t *testing.T, dir, bin string, args ...string) {
	t.Helper()
	log, err := os.Create(filepath.Join(dir, filepath.Base(bin)+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		log.Close()
	})
}

// waitHTTP waits until url answers 200.
func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// serve serves h on a loopback port for the test's length.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// target is one file_sd group, in the format prometheus.yml documents.
type target struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// promDir lays out what a Prometheus host gets: prometheus.yml, the rules
// it loads, and targets/ with the given groups per job (the other jobs'
// files stay as the repository ships them, empty). The one change to
// prometheus.yml: scrape and evaluate every second instead of 15 s.
func promDir(t *testing.T, dir string, targets map[string][]target) {
	t.Helper()
	conf, err := os.ReadFile("prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	const prod = "  scrape_interval: 15s\n  evaluation_interval: 15s\n"
	if strings.Count(string(conf), prod) != 1 {
		t.Fatalf("prometheus.yml: no single %q to shorten", prod)
	}
	conf = []byte(strings.Replace(string(conf), prod, "  scrape_interval: 1s\n  evaluation_interval: 1s\n", 1))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), conf, 0o644); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("prometheus/*-rules.yml")
	shipped, _ := filepath.Glob("prometheus/targets/*.json")
	if len(files) < 2 || len(shipped) < 7 {
		t.Fatalf("rules %v, targets %v", files, shipped)
	}
	if err := os.MkdirAll(filepath.Join(dir, "targets"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range append(files, shipped...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, strings.TrimPrefix(f, "prometheus/"))
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for job, groups := range targets {
		b, err := json.MarshalIndent(groups, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, "targets", job+".json")); err != nil {
			t.Fatalf("prometheus.yml has no targets file for job %s", job)
		}
		if err := os.WriteFile(filepath.Join(dir, "targets", job+".json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type promAPI struct{ url string }

// query runs an instant query and returns the result's series.
func (p promAPI) query(q string) ([]map[string]string, error) {
	resp, err := http.Get(p.url + "/api/v1/query?" + url.Values{"query": {q}}.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status, Error string
		Data          struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("%s", body.Error)
	}
	var out []map[string]string
	for _, r := range body.Data.Result {
		out = append(out, r.Metric)
	}
	return out, nil
}

// rulesHealth returns the rules whose last evaluation failed.
func (p promAPI) rulesHealth() ([]string, int, error) {
	resp, err := http.Get(p.url + "/api/v1/rules")
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name, Health, LastError string
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, 0, err
	}
	var bad []string
	n := 0
	for _, g := range body.Data.Groups {
		for _, r := range g.Rules {
			n++
			if r.Health != "ok" {
				bad = append(bad, fmt.Sprintf("%s: %s %s", r.Name, r.Health, r.LastError))
			}
		}
	}
	return bad, n, nil
}

// panelQuery is one query of a dashboard and the row it is in.
type panelQuery struct {
	where, row, expr string
}

// dashboardQueries returns the queries of a dashboard's variables and
// panels.
func dashboardQueries(t *testing.T, file string) []panelQuery {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Templating struct {
			List []struct {
				Name  string
				Query any `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			Title, Type string
			Targets     []struct{ Expr string } `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	var out []panelQuery
	for _, v := range d.Templating.List {
		if q, ok := v.Query.(map[string]any); ok {
			m := regexp.MustCompile(`^label_values\(\s*([^,]+),`).FindStringSubmatch(fmt.Sprint(q["query"]))
			if m != nil {
				out = append(out, panelQuery{file + " variable " + v.Name, "", m[1]})
			}
		}
	}
	row := ""
	for _, p := range d.Panels { // a row's panels follow it
		if p.Type == "row" {
			row = p.Title
			continue
		}
		for _, tg := range p.Targets {
			out = append(out, panelQuery{fmt.Sprintf("%s panel %q", file, p.Title), row, tg.Expr})
		}
	}
	return out
}

// dashVars stands in for Grafana's variables: every queue and tunnel
// service, a 5 s rate window over 1 s scrapes.
var dashVars = strings.NewReplacer("$__rate_interval", "5s", "$queue", ".*", "$service", ".*")

// only44 marks the row of panels Mastodon 4.2's StatsD cannot feed.
const only44 = "(Mastodon 4.4+ only)"

// fediopsTextfile leaves the connection budget where node_exporter's
// textfile collector reads it, as health does with FEDIOPS_METRICS_DIR.
func fediopsTextfile(t *testing.T, dir string) {
	t.Helper()
	reg := prometheus.NewRegistry()
	b, err := promfile.NewBudget(reg)
	if err != nil {
		t.Fatal(err)
	}
	b.Set("majel", 47, 40)
	if err := (promfile.Config{Dir: dir}).Write(context.Background(), "health", reg); err != nil {
		t.Fatal(err)
	}
}

// loop calls step every 250 ms until the test ends.
func loop(t *testing.T, step func(ctx context.Context, dt time.Duration) error) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			if err := step(ctx, 250*time.Millisecond); err != nil && ctx.Err() == nil {
				t.Errorf("load: %v", err)
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// TestMastodonEndToEnd runs deploy/prometheus as a Prometheus host would,
// twice: against Mastodon 4.4+'s exporters (a web droplet's collector, a
// Sidekiq droplet's in-process server without the ruby_ prefix, the
// streaming server) and against 4.2's StatsD through the real
// statsd_exporter with deploy/statsd's mapping; with the real node_exporter
// serving fediops' textfile metrics and a real fediops tunnel. Each time,
// every target must be up, every rule must evaluate, and every query of the
// Mastodon dashboard (4.2: all but the 4.4-only row) and of the tunnel's
// must return data.
func TestMastodonEndToEnd(t *testing.T) {
	bins := need(t, "prometheus", "prometheus-node-exporter", "statsd_exporter")
	queries := append(dashboardQueries(t, "grafana/mastodon.json"), dashboardQueries(t, "grafana/tunnel.json")...)
	common := func(t *testing.T, dir string) map[string][]target {
		text := filepath.Join(dir, "textfile")
		if err := os.MkdirAll(text, 0o755); err != nil {
			t.Fatal(err)
		}
		fediopsTextfile(t, text)
		node := freeAddr(t)
		start(t, dir, bins["prometheus-node-exporter"], "--web.listen-address="+node, "--collector.textfile.directory="+text,
			"--collector.disable-defaults", "--collector.textfile", "--collector.loadavg")
		st := mastofake.NewStreaming(7)
		st.Clients, st.MessagesPerSec = 800, 0.4
		loop(t, func(_ context.Context, dt time.Duration) error { st.Step(dt); return nil })
		streaming := serve(t, st)
		// The tunnel as it runs on a droplet: a service to a backend not
		// dialled until a client comes, /metrics on its -http address.
		cfg, err := redistls.ParseConfig("redis.conf", strings.NewReader("[redis]\nclient = yes\naccept = 127.0.0.1:0\nconnect = redis.fediops.test:25061\n"))
		if err != nil {
			t.Fatal(err)
		}
		tunnelHTTP := freeAddr(t)
		cfg.HTTPAddr = tunnelHTTP
		tun, err := redistls.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := tun.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			tun.Shutdown(ctx)
		})
		waitHTTP(t, "http://"+node+"/metrics")
		return map[string][]target{
			"mastodon-streaming": {{[]string{streaming}, map[string]string{"tier": "streaming", "droplet": "streaming-1", "region": "nyc3"}}},
			"node":               {{[]string{node}, map[string]string{"tier": "web", "droplet": "web-1", "region": "nyc3"}}},
			"fediops-tunnel":     {{[]string{tunnelHTTP}, map[string]string{"tier": "web", "droplet": "web-1"}}},
		}
	}

	t.Run("exporter 4.4", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		targets := common(t, dir)
		web := mastofake.NewExporter(mastofake.PrefixCollector) // bundle exec prometheus_exporter
		sk := mastofake.NewExporter(mastofake.PrefixLocal)      // MASTODON_PROMETHEUS_EXPORTER_LOCAL=true
		webAddr, skAddr := serve(t, web), serve(t, sk)
		w := &mastofake.Web{Hostname: "web-1", PID: 100, Workers: 2, Threads: 5, Database: "mastodon_production", DBHost: "db",
			RequestsPerSecond: 60, ErrorShare: 0.02}
		s := &mastofake.Sidekiq{Hostname: "sidekiq-1", PID: 200, Concurrency: 25, Database: "mastodon_production", DBHost: "db", Throughput: 80,
			Arrivals: map[string]float64{"default": 30, "push": 60, "ingress": 10, "pull": 4, "mailers": 2, "scheduler": 1}}
		wc, sc := &mastofake.Client{URL: "http://" + webAddr}, &mastofake.Client{URL: "http://" + skAddr}
		loop(t, func(ctx context.Context, dt time.Duration) error {
			if err := w.Step(ctx, wc, dt); err != nil {
				return err
			}
			return s.Step(ctx, sc, dt)
		})
		targets["mastodon-web"] = []target{{[]string{webAddr}, map[string]string{"tier": "web", "droplet": "web-1", "region": "nyc3"}}}
		targets["mastodon-sidekiq"] = []target{{[]string{skAddr}, map[string]string{"tier": "sidekiq", "droplet": "sidekiq-1", "region": "nyc3"}}}
		p := runPrometheus(t, dir, bins["prometheus"], targets)
		checkDashboard(t, p, queries, false)

		// The in-process server's names got the ruby_ prefix, so they
		// cannot meet fediops' own sidekiq_queue_latency_seconds{name}.
		for q, want := range map[string]bool{
			`ruby_sidekiq_queue_latency_seconds{job="mastodon-sidekiq",tier="sidekiq",instance=~"sidekiq-1:[0-9]+"}`: true,
			`sidekiq_queue_latency_seconds{job="mastodon-sidekiq"}`:                                                  false,
			`ruby_puma_max_threads{job="mastodon-web",tier="web",droplet="web-1",instance=~"web-1:[0-9]+"}`:          true,
			`ruby_collector_working{job="mastodon-sidekiq"}`:                                                         true,
		} {
			res, err := p.query(q)
			if err != nil || (len(res) > 0) != want {
				t.Errorf("%s: %d series, want some: %v (%v)", q, len(res), want, err)
			}
		}
	})

	t.Run("statsd 4.2", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		targets := common(t, dir)
		udp, web := freeAddr(t), freeAddr(t)
		mapping, err := filepath.Abs("statsd/mastodon-mapping.yml")
		if err != nil {
			t.Fatal(err)
		}
		start(t, dir, bins["statsd_exporter"], "--statsd.mapping-config="+mapping, "--statsd.listen-udp="+udp,
			"--statsd.listen-tcp=", "--web.listen-address="+web)
		waitHTTP(t, "http://"+web+"/metrics")
		sd, err := mastofake.DialStatsD(udp)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sd.Close() })
		w := &mastofake.Web{Hostname: "web-1", PID: 100, Workers: 2, Threads: 5, RequestsPerSecond: 40, ErrorShare: 0.02}
		s := &mastofake.Sidekiq{Hostname: "sidekiq-1", PID: 200, Concurrency: 25, Throughput: 60,
			Arrivals: map[string]float64{"default": 20, "push": 40, "ingress": 8, "pull": 3, "mailers": 2, "scheduler": 1}}
		loop(t, func(ctx context.Context, dt time.Duration) error {
			if err := sd.WebStep(ctx, w, dt); err != nil {
				return err
			}
			return sd.SidekiqStep(ctx, s, dt)
		})
		targets["mastodon-statsd"] = []target{
			{[]string{web}, map[string]string{"tier": "web", "droplet": "web-1"}},
		}
		p := runPrometheus(t, dir, bins["prometheus"], targets)
		checkDashboard(t, p, queries, true)
	})
}

// runPrometheus starts the Prometheus of promDir and waits until every
// target with a file entry is up.
func runPrometheus(t *testing.T, dir, bin string, targets map[string][]target) promAPI {
	t.Helper()
	promDir(t, dir, targets)
	addr := freeAddr(t)
	start(t, dir, bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	waitHTTP(t, "http://"+addr+"/-/ready")
	p := promAPI{"http://" + addr}
	want := 0
	for _, g := range targets {
		want += len(g)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		up, err := p.query("up == 1")
		if err == nil && len(up) == want {
			return p
		}
		if time.Now().After(deadline) {
			all, _ := p.query("up")
			log, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
			t.Fatalf("targets up: %v of %d (%v)\n%s", all, want, err, log)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// checkDashboard waits until every dashboard query returns data (statsd:
// all but the 4.4-only row), then checks that every rule evaluates.
func checkDashboard(t *testing.T, p promAPI, queries []panelQuery, statsd bool) {
	t.Helper()
	var empty []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		empty = empty[:0]
		for _, q := range queries {
			if statsd && strings.Contains(q.row, only44) {
				continue
			}
			res, err := p.query(dashVars.Replace(q.expr))
			if err != nil {
				t.Fatalf("%s: %s: %v", q.where, q.expr, err)
			}
			if len(res) == 0 {
				empty = append(empty, q.where+": "+q.expr)
			}
		}
		if len(empty) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	sort.Strings(empty)
	for _, e := range empty {
		t.Errorf("no data: %s", e)
	}
	// The 4.4-only row has no data from StatsD: say so in the dashboard
	// rather than let it look broken.
	if statsd {
		for _, q := range queries {
			if strings.Contains(q.row, only44) && strings.HasPrefix(q.expr, "sum by (type) (ruby_") {
				if res, _ := p.query(q.expr); len(res) != 0 {
					t.Errorf("%s has data from StatsD: %v", q.where, res)
				}
			}
		}
	}
	bad, n, err := p.rulesHealth()
	if err != nil || n < 20 {
		t.Fatalf("rules: %d loaded, %v", n, err)
	}
	for _, b := range bad {
		t.Errorf("rule fails to evaluate: %s", b)
	}
}

// TestStatsDMapping feeds the real statsd_exporter the lines Mastodon 4.2
// sends (both worker spellings of the nsa gem, a namespace other than
// Mastodon's two-part default) and reads its /metrics: each line lands on
// its name and labels, and nothing unmapped gets through.
func TestStatsDMapping(t *testing.T) {
	bins := need(t, "statsd_exporter")
	dir := t.TempDir()
	udp, web := freeAddr(t), freeAddr(t)
	start(t, dir, bins["statsd_exporter"], "--statsd.mapping-config=statsd/mastodon-mapping.yml", "--statsd.listen-udp="+udp,
		"--statsd.listen-tcp=", "--web.listen-address="+web)
	waitHTTP(t, "http://"+web+"/metrics")
	sd, err := mastofake.DialStatsD(udp)
	if err != nil {
		t.Fatal(err)
	}
	defer sd.Close()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(sd.Request("Api::V1::Timelines::HomeController", "show", "json", 200, 125, 40, 10))
	must(sd.Request("Api::V1::Timelines::HomeController", "show", "json", 503, 29875, 0, 0))
	must(sd.Request("StatusesController", "show", "", 200, 60, 20, 30))
	must(sd.Query("statuses", "select", 3))
	must(sd.Cache("exist?", 1))
	st := mastofake.SidekiqStats{DeadSize: 3, Enqueued: 120, Failed: 9, Processed: 1000, ProcessesSize: 2, RetrySize: 4, ScheduledSize: 40, WorkersSize: 7}
	must(sd.Job(ctx, "ActivityPub::DeliveryWorker", "push", true, 250, st, 100, 12.5))
	must(sd.Job(ctx, "ActivityPub::DeliveryWorker", "push", false, 0, st, 99, 13))
	sd.NSAGsub = true
	must(sd.Job(ctx, "LinkCrawlWorker", "pull", true, 800, st, 2, 0))
	must(sd.Job(ctx, "ActivityPub::ProcessingWorker", "ingress", true, 90, st, 0, 0))
	other := &mastofake.StatsD{Conn: sd.Conn, Namespace: "Mastodon.production.eu"}
	must(other.Request("Api::V1::StatusesController", "create", "json", 200, 1, 1, 1))

	want := map[string]string{ // series -> value
		`ruby_http_requests_total{action="show",controller="Api.V1.Timelines.HomeController",format="json",status="200"}`:  "1",
		`ruby_http_requests_total{action="show",controller="Api.V1.Timelines.HomeController",format="json",status="503"}`:  "1",
		`ruby_http_requests_total{action="show",controller="StatusesController",format="all",status="200"}`:                "1",
		`ruby_http_request_duration_seconds_sum{action="show",controller="Api.V1.Timelines.HomeController",format="json"}`: "30",
		`ruby_http_request_duration_seconds_count{action="show",controller="StatusesController",format="all"}`:             "1",
		`ruby_http_request_sql_duration_seconds_sum{action="show",controller="StatusesController",format="all"}`:           "0.02",
		`mastodon_http_request_view_duration_seconds_sum{action="show",controller="StatusesController",format="all"}`:      "0.03",
		`mastodon_db_query_duration_seconds_count{statement="select",table="statuses"}`:                                    "1",
		`mastodon_cache_duration_seconds_count{operation="exist?"}`:                                                        "1",
		`ruby_sidekiq_job_duration_seconds_sum{job_name="ActivityPub..DeliveryWorker"}`:                                    "0.25",
		`ruby_sidekiq_jobs_total{job_name="ActivityPub..DeliveryWorker"}`:                                                  "1",
		`ruby_sidekiq_failed_jobs_total{job_name="ActivityPub..DeliveryWorker"}`:                                           "1",
		`ruby_sidekiq_jobs_total{job_name="LinkCrawlWorker"}`:                                                              "1",
		`ruby_sidekiq_jobs_total{job_name="ActivityPub.ProcessingWorker"}`:                                                 "1",
		`ruby_sidekiq_queue_latency_seconds{queue="push"}`:                                                                 "13",
		`ruby_sidekiq_queue_backlog{queue="push"}`:                                                                         "99",
		`ruby_sidekiq_queue_backlog{queue="pull"}`:                                                                         "2",
		`ruby_sidekiq_stats_enqueued`:     "120",
		`ruby_sidekiq_stats_workers_size`: "7",
		`ruby_sidekiq_stats_dead_size`:    "3",
	}
	var got map[string]string
	var names []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + web + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		fams := parsePage(t, resp.Body)
		resp.Body.Close()
		got, names = map[string]string{}, nil
		for name, f := range fams {
			names = append(names, name)
			for _, m := range f.GetMetric() {
				var l []string
				for _, lp := range m.GetLabel() {
					l = append(l, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
				}
				key := func(n string) string {
					if len(l) == 0 {
						return n
					}
					return n + "{" + strings.Join(l, ",") + "}"
				}
				switch {
				case m.Counter != nil:
					got[key(name)] = fmt.Sprint(m.Counter.GetValue())
				case m.Gauge != nil:
					got[key(name)] = fmt.Sprint(m.Gauge.GetValue())
				case m.Summary != nil:
					got[key(name+"_sum")] = fmt.Sprint(m.Summary.GetSampleSum())
					got[key(name+"_count")] = fmt.Sprint(m.Summary.GetSampleCount())
				}
			}
		}
		if got[`ruby_sidekiq_jobs_total{job_name="ActivityPub.ProcessingWorker"}`] != "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		if !strings.HasPrefix(n, "ruby_") && !strings.HasPrefix(n, "mastodon_") && !strings.HasPrefix(n, "statsd_") &&
			!strings.HasPrefix(n, "go_") && !strings.HasPrefix(n, "process_") && !strings.HasPrefix(n, "promhttp_") {
			t.Errorf("unmapped metric %s", n)
		}
	}
	// The three-part namespace was dropped, not mapped.
	for k := range got {
		if strings.Contains(k, `action="create"`) {
			t.Errorf("a namespace of three parts was mapped: %s", k)
		}
	}
}
