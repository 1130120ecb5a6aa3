package mastofake

import (
	"context"
	"io"
	"net"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// parse checks that Prometheus' own text parser reads the page and returns
// its families.
func parse(t *testing.T, text string) map[string]bool {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("Prometheus cannot read the page: %v\n%s", err, text)
	}
	names := map[string]bool{}
	for n := range fams {
		names[n] = true
	}
	return names
}

func TestExporterNamesAndLabels(t *testing.T) {
	clock := time.Now()
	e := NewExporter(PrefixCollector)
	e.now = func() time.Time { return clock }
	send := func(m map[string]any) {
		t.Helper()
		if err := e.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	// PrometheusExporter::Middleware, then Mastodon's queue-time-only middleware (no status, no timings).
	send(map[string]any{"type": "web", "status": 200, "timings": map[string]any{"total_duration": 0.25, "sql": map[string]any{"duration": 0.1}},
		"queue_time": 0.002, "default_labels": map[string]any{"action": "show", "controller": "api/v1/timelines/home"}})
	send(map[string]any{"type": "web", "queue_time": 0.001, "default_labels": map[string]any{"action": "index", "controller": "api/v1/notifications"}})
	send(map[string]any{"pid": 10, "type": "puma", "hostname": "web1", "metric_labels": map[string]any{}, "phase": 0, "workers": 2,
		"booted_workers": 2, "old_workers": 0, "request_backlog": 1, "running_threads": 10, "thread_pool_capacity": 3, "max_threads": 10, "busy_threads": 7})
	send(map[string]any{"pid": 11, "type": "active_record", "hostname": "web1",
		"metric_labels": map[string]any{"type": "puma", "pool_name": "primary", "dbconfig_database": "mastodon_production", "dbconfig_host": "db"},
		"size":          5, "connections": 4, "busy": 2, "dead": 0, "idle": 2, "waiting": 0})
	send(map[string]any{"type": "process", "metric_labels": map[string]any{"type": "puma"}, "hostname": "web1", "pid": 11, "rss": 4.2e8, "major_gc_ops_total": 3})
	send(map[string]any{"type": "sidekiq", "name": "ActivityPub::DeliveryWorker", "queue": "push", "success": true, "shutdown": false, "duration": 0.3})
	send(map[string]any{"type": "sidekiq", "name": "ActivityPub::DeliveryWorker", "queue": "push", "success": false, "shutdown": false, "duration": 0.1})
	send(map[string]any{"type": "sidekiq", "name": "LinkCrawlWorker", "dead": true})
	send(map[string]any{"type": "sidekiq_queue", "queues": []any{map[string]any{"backlog": 12, "latency_seconds": 4, "labels": map[string]any{"queue": "push"}}}})
	send(map[string]any{"type": "sidekiq_process", "process": map[string]any{"busy": 3, "concurrency": 25,
		"labels": map[string]any{"labels": "", "queues": "default,push", "quiet": "false", "tag": "live", "hostname": "sk1", "identity": "sk1:5:ab"}}})
	send(map[string]any{"type": "sidekiq_stats", "stats": map[string]any{"enqueued": 12, "processed": 100, "dead_size": 1}})
	if err := e.Send(map[string]any{"type": "custom_thing"}); err == nil {
		t.Error("an unknown type is accepted")
	}

	text := e.Text()
	names := parse(t, text)
	for _, line := range []string{
		`ruby_http_requests_total{action="show",controller="api/v1/timelines/home",status="200"} 1`,
		`ruby_http_requests_total{action="index",controller="api/v1/notifications",status=""} 1`,
		`ruby_http_request_duration_seconds{action="show",controller="api/v1/timelines/home",quantile="0.99"} 0.25`,
		`ruby_http_request_duration_seconds_count{action="show",controller="api/v1/timelines/home"} 1`,
		`ruby_http_request_sql_duration_seconds_sum{action="show",controller="api/v1/timelines/home"} 0.1`,
		`ruby_http_request_queue_duration_seconds_count{action="index",controller="api/v1/notifications"} 1`,
		`ruby_puma_thread_pool_capacity{phase="0"} 3`,
		`ruby_puma_max_threads{phase="0"} 10`,
		`ruby_puma_request_backlog{phase="0"} 1`,
		`ruby_active_record_connection_pool_busy{dbconfig_database="mastodon_production",dbconfig_host="db",hostname="web1",pid="11",pool_name="primary",type="puma"} 2`,
		`ruby_rss{hostname="web1",pid="11",type="puma"} 420000000`,
		`ruby_major_gc_ops_total{hostname="web1",pid="11",type="puma"} 3`,
		`ruby_sidekiq_jobs_total{job_name="ActivityPub::DeliveryWorker",queue="push"} 2`,
		`ruby_sidekiq_failed_jobs_total{job_name="ActivityPub::DeliveryWorker",queue="push"} 1`,
		`ruby_sidekiq_dead_jobs_total{job_name="LinkCrawlWorker",queue=""} 1`,
		`ruby_sidekiq_queue_latency_seconds{queue="push"} 4`,
		`ruby_sidekiq_queue_backlog{queue="push"} 12`,
		`ruby_sidekiq_process_concurrency{hostname="sk1",identity="sk1:5:ab",labels="",queues="default,push",quiet="false",tag="live"} 25`,
		`ruby_sidekiq_stats_processed 100`,
		`ruby_collector_working 1`,
		`ruby_collector_metrics_total 12`,
		`ruby_collector_bad_metrics_total 1`,
	} {
		if !strings.Contains(text, line+"\n") {
			t.Errorf("no line %s", line)
		}
	}
	// busy_threads is not a gauge of the standalone collector (no Puma loaded there).
	if names["ruby_puma_busy_threads"] {
		t.Error("ruby_puma_busy_threads is served")
	}
	// A Puma report is dropped after 30 s without a new one, the others after 60 s.
	clock = clock.Add(45 * time.Second)
	names = parse(t, e.Text())
	if names["ruby_puma_max_threads"] || !names["ruby_active_record_connection_pool_busy"] || !names["ruby_sidekiq_queue_backlog"] {
		t.Errorf("after 45 s: puma %v, active_record %v, queue %v", names["ruby_puma_max_threads"], names["ruby_active_record_connection_pool_busy"], names["ruby_sidekiq_queue_backlog"])
	}
	clock = clock.Add(30 * time.Second)
	names = parse(t, e.Text())
	if names["ruby_active_record_connection_pool_busy"] || names["ruby_rss"] || names["ruby_sidekiq_stats_processed"] {
		t.Error("reports older than 60 s are still served")
	}
	if !names["ruby_http_requests_total"] {
		t.Error("the request counter went away")
	}
	// A new report from the same process replaces the old one.
	for _, busy := range []int{1, 4} {
		send(map[string]any{"pid": 11, "type": "active_record", "hostname": "web1", "metric_labels": map[string]any{"pool_name": "primary"}, "busy": busy})
	}
	if text := e.Text(); strings.Count(text, "ruby_active_record_connection_pool_busy{") != 1 || !strings.Contains(text, `pool_name="primary"} 4`) {
		t.Errorf("two reports of one process:\n%s", text)
	}
}

// The local server of MASTODON_PROMETHEUS_EXPORTER_LOCAL has no prefix.
func TestExporterLocalPrefix(t *testing.T) {
	e := NewExporter(PrefixLocal)
	if err := e.Send(map[string]any{"type": "sidekiq_queue", "queues": []any{map[string]any{"backlog": 1, "latency_seconds": 2, "labels": map[string]any{"queue": "default"}}}}); err != nil {
		t.Fatal(err)
	}
	names := parse(t, e.Text())
	if !names["sidekiq_queue_latency_seconds"] || !names["collector_working"] || names["ruby_sidekiq_queue_latency_seconds"] {
		t.Errorf("names: %v", names)
	}
}

// The models post over HTTP as the gem's client does, and what they send
// shows on the page.
func TestWebAndSidekiqOverHTTP(t *testing.T) {
	e := NewExporter(PrefixCollector)
	srv := httptest.NewServer(e)
	defer srv.Close()
	c := &Client{URL: srv.URL}
	ctx := context.Background()
	web := &Web{Hostname: "web1", PID: 100, Workers: 2, Threads: 5, Database: "mastodon_production", DBHost: "db", RequestsPerSecond: 50}
	sk := &Sidekiq{Hostname: "sk1", PID: 200, Concurrency: 25, Database: "mastodon_production", DBHost: "db",
		Arrivals: map[string]float64{"default": 40, "push": 30, "pull": 2}, Throughput: 50}
	for range 5 {
		if err := web.Step(ctx, c, time.Second); err != nil {
			t.Fatal(err)
		}
		if err := sk.Step(ctx, c, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	names := parse(t, e.Text())
	for _, n := range []string{"ruby_http_requests_total", "ruby_http_request_duration_seconds", "ruby_puma_max_threads",
		"ruby_active_record_connection_pool_size", "ruby_rss", "ruby_sidekiq_jobs_total", "ruby_sidekiq_job_duration_seconds",
		"ruby_sidekiq_queue_latency_seconds", "ruby_sidekiq_process_busy", "ruby_sidekiq_stats_enqueued", "ruby_collector_sessions_total"} {
		if !names[n] {
			t.Errorf("no %s", n)
		}
	}
	// Arrivals above throughput leave a backlog with a latency.
	if !strings.Contains(e.Text(), `ruby_sidekiq_queue_backlog{queue="default"}`) {
		t.Error("no default queue backlog")
	}
}

func TestStreamingNames(t *testing.T) {
	s := NewStreaming(1)
	s.Clients, s.MessagesPerSec = 500, 0.5
	s.Step(time.Second)
	srv := httptest.NewServer(s)
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	names := parse(t, page)
	for _, n := range []string{"connected_clients", "connected_channels", "redis_subscriptions", "redis_messages_received_total",
		"messages_sent_total", "pg_pool_total_connections", "pg_pool_idle_connections", "pg_pool_waiting_queries",
		"process_resident_memory_bytes", "nodejs_eventloop_lag_p99_seconds"} {
		if !names[n] {
			t.Errorf("no %s", n)
		}
	}
	if !strings.Contains(page, `connected_channels{channel="hashtag:local",type="eventsource"} 0`) {
		t.Error("channels are not primed at 0")
	}
}

func TestStatsDLines(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	s, err := DialStatsD(pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got []string
	read := func(n int) {
		buf := make([]byte, 1500)
		for range n {
			pc.SetReadDeadline(time.Now().Add(2 * time.Second))
			k, _, err := pc.ReadFrom(buf)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, string(buf[:k]))
		}
	}
	if err := s.Request("Api::V1::StatusesController", "index", "*/*", 200, 12.5, 3, 0.25); err != nil {
		t.Fatal(err)
	}
	read(4)
	ctx := context.Background()
	if err := s.Job(ctx, "ActivityPub::DeliveryWorker", "push", true, 250, SidekiqStats{Enqueued: 7}, 5, 1.5); err != nil {
		t.Fatal(err)
	}
	read(12)
	s.NSAGsub = true
	if err := s.Job(ctx, "ActivityPub::DeliveryWorker", "push", false, 0, SidekiqStats{}, 0, 0); err != nil {
		t.Fatal(err)
	}
	read(11)
	for _, want := range []string{
		"Mastodon.production.web.Api.V1.StatusesController.index.all.total_duration:12.5|ms",
		"Mastodon.production.web.Api.V1.StatusesController.index.all.view_time:0.25|ms",
		"Mastodon.production.web.Api.V1.StatusesController.index.all.status.200:1|c",
		"Mastodon.production.sidekiq.ActivityPub..DeliveryWorker.processing_time:250|ms",
		"Mastodon.production.sidekiq.ActivityPub..DeliveryWorker.success:1|c",
		"Mastodon.production.sidekiq.enqueued:7|g",
		"Mastodon.production.sidekiq.queues.push.enqueued:5|g",
		"Mastodon.production.sidekiq.queues.push.latency:1.5|g",
		"Mastodon.production.sidekiq.ActivityPub.DeliveryWorker.failure:1|c",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("no line %s in %q", want, got)
		}
	}
	if slices.Contains(got, "Mastodon.production.sidekiq.ActivityPub.DeliveryWorker.processing_time:0|ms") {
		t.Error("a failed job is timed")
	}
}

func TestControllerClass(t *testing.T) {
	for path, want := range map[string]string{
		"api/v1/timelines/home": "Api::V1::Timelines::HomeController",
		"activitypub/inboxes":   "ActivityPub::InboxesController",
		"well_known/webfinger":  "WellKnown::WebfingerController",
		"statuses":              "StatusesController",
	} {
		if got := ControllerClass(path); got != want {
			t.Errorf("ControllerClass(%q) = %q, want %q", path, got, want)
		}
	}
}
