package mastofake

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Prefixes of the exporter's metric names.
const (
	// PrefixCollector is what the gem's collector process puts before every
	// name (lib/prometheus_exporter.rb DEFAULT_PREFIX, applied by
	// server/runner.rb): what a droplet running `prometheus_exporter`
	// serves, and the names fediops' dashboards use.
	PrefixCollector = "ruby_"
	// PrefixLocal is what Mastodon's in-process server serves
	// (MASTODON_PROMETHEUS_EXPORTER_LOCAL=true: lib/mastodon/
	// prometheus_exporter/local_server.rb builds a WebServer without the
	// Runner, so no prefix). deploy/prometheus/prometheus.yml adds ruby_ to
	// these names when it scrapes them.
	PrefixLocal = ""
)

// Exporter is the prometheus_exporter gem's collector process (its
// lib/prometheus_exporter/server/*.rb, version 2.2-2.3 as Mastodon 4.4+
// bundles it) ported to Go: it takes the JSON messages Mastodon's
// instrumentation sends to /send-metrics and serves /metrics with the
// gem's names, labels, types and help texts. It keeps the gem's
// behaviours that show in Prometheus: the web metrics only appear after the
// first request, gauges of a process are replaced by its next report and
// dropped when it stops reporting (30 s for Puma, 60 s for the others),
// summaries carry quantiles 0.99, 0.9, 0.5, 0.1 and 0.01 over the last two
// minutes plus _sum and _count. It is safe for concurrent use.
type Exporter struct {
	prefix string
	now    func() time.Time // for the age of reports

	mu         sync.Mutex
	sessions   float64 // collector_sessions_total
	messages   float64 // collector_metrics_total
	bad        float64 // collector_bad_metrics_total
	web        *webCollector
	sidekiq    *sidekiqCollector
	containers map[string]*container // puma, active_record, process, sidekiq_process, sidekiq_queue, sidekiq_stats
}

// NewExporter returns an exporter whose names start with prefix
// (PrefixCollector or PrefixLocal).
func NewExporter(prefix string) *Exporter {
	e := &Exporter{prefix: prefix, now: time.Now, containers: map[string]*container{}}
	// TTLs and the "same process" filters of server/*_collector.rb.
	samePID := func(a, b map[string]any) bool {
		return str(a["pid"]) == str(b["pid"]) && str(a["hostname"]) == str(b["hostname"])
	}
	e.containers["puma"] = &container{ttl: 30 * time.Second, same: samePID} // puma_collector.rb MAX_PUMA_METRIC_AGE
	e.containers["process"] = &container{ttl: 60 * time.Second, same: samePID}
	e.containers["active_record"] = &container{ttl: 60 * time.Second, same: func(a, b map[string]any) bool {
		return samePID(a, b) && str(obj(a["metric_labels"])["pool_name"]) == str(obj(b["metric_labels"])["pool_name"])
	}}
	e.containers["sidekiq_process"] = &container{ttl: 60 * time.Second}
	e.containers["sidekiq_queue"] = &container{ttl: 60 * time.Second}
	e.containers["sidekiq_stats"] = &container{ttl: 60 * time.Second}
	return e
}

// ErrUnknownType is a message whose type no collector takes (the gem logs
// and counts it as a bad metric; custom metrics are not supported here).
var ErrUnknownType = errors.New("unknown message type")

// Send takes one message as Mastodon's instrumentation sends it (the
// JSON object PrometheusExporter::Client#send_json writes).
func (e *Exporter) Send(msg map[string]any) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.messages++
	typ := str(msg["type"])
	switch typ {
	case "web":
		if e.web == nil {
			e.web = newWebCollector()
		}
		e.web.collect(msg)
	case "sidekiq":
		if e.sidekiq == nil {
			e.sidekiq = newSidekiqCollector()
		}
		e.sidekiq.collect(msg)
	case "sidekiq_process":
		e.containers[typ].add(obj(msg["process"]), e.now())
	case "sidekiq_queue": // sidekiq_queue_collector.rb: one entry per queue
		custom := obj(msg["custom_labels"])
		queues, _ := msg["queues"].([]any)
		for _, q := range queues {
			q := obj(q)
			labels := obj(q["labels"])
			for k, v := range custom {
				labels[k] = v
			}
			q["labels"] = labels
			e.containers[typ].add(q, e.now())
		}
	case "puma", "process", "active_record", "sidekiq_stats":
		e.containers[typ].add(msg, e.now())
	default:
		e.bad++
		return fmt.Errorf("message type %q: %w", typ, ErrUnknownType)
	}
	return nil
}

// ServeHTTP answers /metrics, /ping and /send-metrics (a stream of JSON
// messages, as the gem's client posts them chunk by chunk), as
// server/web_server.rb does.
func (e *Exporter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	switch r.URL.Path {
	case "/metrics":
		io.WriteString(w, e.Text())
	case "/ping":
		io.WriteString(w, "PONG")
	case "/send-metrics":
		e.mu.Lock()
		e.sessions++
		e.mu.Unlock()
		dec := json.NewDecoder(r.Body)
		for {
			var m map[string]any
			if err := dec.Decode(&m); err == io.EOF {
				break
			} else if err != nil {
				e.mu.Lock()
				e.bad++
				e.mu.Unlock()
				http.Error(w, "Bad Metrics "+err.Error(), http.StatusInternalServerError)
				return
			}
			if err := e.Send(m); err != nil {
				http.Error(w, "Bad Metrics "+err.Error(), http.StatusInternalServerError)
				return
			}
		}
		io.WriteString(w, "OK")
	default:
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "Not Found! The Prometheus Ruby Exporter only listens on /ping, /metrics and /send-metrics")
	}
}

// Text renders /metrics: the collector's own metrics, then each type
// collector's, as WebServer#metrics does.
func (e *Exporter) Text() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var fams []*family
	working := newFamily("collector_working", "Is the master process collector able to collect metrics", "gauge")
	working.set(nil, 1)
	rss := newFamily("collector_rss", "total memory used by collector process", "gauge")
	rss.set(nil, 50<<20)
	metrics := newFamily("collector_metrics_total", "Total metrics processed by exporter web.", "counter")
	metrics.set(nil, e.messages)
	sessions := newFamily("collector_sessions_total", "Total send_metric sessions processed by exporter web.", "counter")
	sessions.set(nil, e.sessions)
	bad := newFamily("collector_bad_metrics_total", "Total mis-handled metrics by collector.", "counter")
	bad.set(nil, e.bad)
	fams = append(fams, working, rss, metrics, sessions, bad)
	if e.web != nil {
		fams = append(fams, e.web.families()...)
	}
	now := e.now()
	fams = append(fams, e.processFamilies(now)...)
	if e.sidekiq != nil {
		fams = append(fams, e.sidekiq.families()...)
	}
	fams = append(fams, e.gaugeFamilies("sidekiq_queue", now, "sidekiq_queue_", []gaugeDef{
		{"backlog", "Size of the sidekiq queue."}, {"latency_seconds", "Latency of the sidekiq queue."}},
		func(m map[string]any) map[string]any { return obj(m["labels"]) })...)
	fams = append(fams, e.gaugeFamilies("sidekiq_process", now, "sidekiq_process_", []gaugeDef{
		{"busy", "Number of running jobs"}, {"concurrency", "Maximum concurrency"}},
		func(m map[string]any) map[string]any { return obj(m["labels"]) })...)
	fams = append(fams, e.statsFamilies(now)...)
	fams = append(fams, e.gaugeFamilies("puma", now, "puma_", pumaGauges, func(m map[string]any) map[string]any {
		l := map[string]any{}
		if p, ok := m["phase"]; ok && p != nil {
			l["phase"] = p
		}
		merge(l, obj(m["custom_labels"]))
		merge(l, obj(m["metric_labels"]))
		return l
	})...)
	fams = append(fams, e.gaugeFamilies("active_record", now, "active_record_connection_pool_", activeRecordGauges, func(m map[string]any) map[string]any {
		l := map[string]any{}
		merge(l, obj(m["metric_labels"]))
		l["pid"], l["hostname"] = m["pid"], m["hostname"]
		merge(l, obj(m["custom_labels"]))
		return l
	})...)
	var b strings.Builder
	for _, f := range fams {
		f.write(&b, e.prefix)
	}
	return b.String()
}

type gaugeDef struct{ key, help string }

// puma_collector.rb PUMA_GAUGES. busy_threads is only defined when the
// collector process has Puma >= 6.6 loaded, which the standalone
// prometheus_exporter process never has: dashboards use max_threads -
// thread_pool_capacity for busy threads.
var pumaGauges = []gaugeDef{
	{"workers", "Number of puma workers."},
	{"booted_workers", "Number of puma workers booted."},
	{"old_workers", "Number of old puma workers."},
	{"running_threads", "Number of puma threads currently running."},
	{"request_backlog", "Number of requests waiting to be processed by a puma thread."},
	{"thread_pool_capacity", "Number of puma threads available at current scale."},
	{"max_threads", "Number of puma threads at available at max scale."},
}

// active_record_collector.rb ACTIVE_RECORD_GAUGES.
var activeRecordGauges = []gaugeDef{
	{"connections", "Total connections in pool"},
	{"busy", "Connections in use in pool"},
	{"dead", "Dead connections in pool"},
	{"idle", "Idle connections in pool"},
	{"waiting", "Connection requests waiting"},
	{"size", "Maximum allowed connection pool size"},
}

func (e *Exporter) gaugeFamilies(typ string, now time.Time, namePrefix string, defs []gaugeDef, labels func(map[string]any) map[string]any) []*family {
	entries := e.containers[typ].live(now)
	if len(entries) == 0 {
		return nil
	}
	var out []*family
	for _, d := range defs {
		var f *family
		for _, m := range entries {
			v, ok := num(m[d.key])
			if !ok {
				continue
			}
			if f == nil {
				f = newFamily(namePrefix+d.key, d.help, "gauge")
			}
			f.set(labels(m), v)
		}
		if f != nil {
			out = append(out, f)
		}
	}
	return out
}

// process_collector.rb: gauges and counters named without a type prefix.
func (e *Exporter) processFamilies(now time.Time) []*family {
	entries := e.containers["process"].live(now)
	gauges := []gaugeDef{
		{"heap_free_slots", "Free ruby heap slots."}, {"heap_live_slots", "Used ruby heap slots."},
		{"v8_heap_size", "Total JavaScript V8 heap size (bytes)."}, {"v8_used_heap_size", "Total used JavaScript V8 heap size (bytes)."},
		{"v8_physical_size", "Physical size consumed by V8 heaps."}, {"v8_heap_count", "Number of V8 contexts running."},
		{"rss", "Total RSS used by process."},
		{"malloc_increase_bytes_limit", "Limit before Ruby triggers a GC against current objects (bytes)."},
		{"oldmalloc_increase_bytes_limit", "Limit before Ruby triggers a major GC against old objects (bytes)."},
		{"marking_time", "Time spent in GC marking."}, {"sweeping_time", "Time spent in GC sweeping."},
	}
	counters := []gaugeDef{
		{"major_gc_ops_total", "Major GC operations by process."}, {"minor_gc_ops_total", "Minor GC operations by process."},
		{"allocated_objects_total", "Total number of allocated objects by process."},
	}
	labels := func(m map[string]any) map[string]any {
		l := map[string]any{}
		merge(l, obj(m["metric_labels"]))
		l["pid"], l["hostname"] = m["pid"], m["hostname"]
		merge(l, obj(m["custom_labels"]))
		return l
	}
	var out []*family
	for i, d := range append(gauges, counters...) {
		typ := "gauge"
		if i >= len(gauges) {
			typ = "counter"
		}
		var f *family
		for _, m := range entries {
			if v, ok := num(m[d.key]); ok {
				if f == nil {
					f = newFamily(d.key, d.help, typ)
				}
				f.set(labels(m), v)
			}
		}
		if f != nil {
			out = append(out, f)
		}
	}
	return out
}

// sidekiq_stats_collector.rb: unlabelled gauges from the "stats" object.
func (e *Exporter) statsFamilies(now time.Time) []*family {
	defs := []gaugeDef{
		{"dead_size", "Size of dead the queue"}, {"enqueued", "Number of enqueued jobs"},
		{"failed", "Number of failed jobs"}, {"processed", "Total number of processed jobs"},
		{"processes_size", "Number of processes"}, {"retry_size", "Size of the retries queue"},
		{"scheduled_size", "Size of the scheduled queue"}, {"workers_size", "Number of jobs actively being processed"},
	}
	var stats []map[string]any
	for _, m := range e.containers["sidekiq_stats"].live(now) {
		stats = append(stats, obj(m["stats"]))
	}
	return gaugesOf(stats, defs, "sidekiq_stats_")
}

func gaugesOf(entries []map[string]any, defs []gaugeDef, namePrefix string) []*family {
	var out []*family
	for _, d := range defs {
		var f *family
		for _, m := range entries {
			if v, ok := num(m[d.key]); ok {
				if f == nil {
					f = newFamily(namePrefix+d.key, d.help, "gauge")
				}
				f.set(nil, v)
			}
		}
		if f != nil {
			out = append(out, f)
		}
	}
	return out
}

// webCollector is server/web_collector.rb.
type webCollector struct {
	requests                            *family
	duration, redis, sql, memcache, que *summary
}

func newWebCollector() *webCollector {
	return &webCollector{
		requests: newFamily("http_requests_total", "Total HTTP requests from web app.", "counter"),
		duration: newSummary("http_request_duration_seconds", "Time spent in HTTP reqs in seconds."),
		redis:    newSummary("http_request_redis_duration_seconds", "Time spent in HTTP reqs in Redis, in seconds."),
		sql:      newSummary("http_request_sql_duration_seconds", "Time spent in HTTP reqs in SQL in seconds."),
		memcache: newSummary("http_request_memcache_duration_seconds", "Time spent in HTTP reqs in Memcache in seconds."),
		que:      newSummary("http_request_queue_duration_seconds", "Time spent queueing the request in load balancer in seconds."),
	}
}

func (w *webCollector) collect(m map[string]any) {
	labels := map[string]any{}
	merge(labels, obj(m["default_labels"]))
	merge(labels, obj(m["custom_labels"]))
	withStatus := map[string]any{"status": m["status"]} // nil (Mastodon's queue-time-only middleware) renders as ""
	merge(withStatus, labels)
	w.requests.add(withStatus, 1)
	if t := obj(m["timings"]); len(t) > 0 {
		if v, ok := num(t["total_duration"]); ok {
			w.duration.observe(labels, v)
		}
		for key, s := range map[string]*summary{"redis": w.redis, "sql": w.sql, "memcache": w.memcache} {
			if v, ok := num(obj(t[key])["duration"]); ok {
				s.observe(labels, v)
			}
		}
	}
	if v, ok := num(m["queue_time"]); ok {
		w.que.observe(labels, v)
	}
}

func (w *webCollector) families() []*family {
	return []*family{w.requests, w.duration.family(), w.redis.family(), w.sql.family(), w.memcache.family(), w.que.family()}
}

// sidekiqCollector is server/sidekiq_collector.rb (per-job metrics).
type sidekiqCollector struct {
	duration                       *summary
	jobs, restarted, failed, death *family
}

func newSidekiqCollector() *sidekiqCollector {
	return &sidekiqCollector{
		duration:  newSummary("sidekiq_job_duration_seconds", "Total time spent in sidekiq jobs."),
		jobs:      newFamily("sidekiq_jobs_total", "Total number of sidekiq jobs executed.", "counter"),
		restarted: newFamily("sidekiq_restarted_jobs_total", "Total number of sidekiq jobs that we restarted because of a sidekiq shutdown.", "counter"),
		failed:    newFamily("sidekiq_failed_jobs_total", "Total number of failed sidekiq jobs.", "counter"),
		death:     newFamily("sidekiq_dead_jobs_total", "Total number of dead sidekiq jobs.", "counter"),
	}
}

func (s *sidekiqCollector) collect(m map[string]any) {
	labels := map[string]any{"job_name": m["name"], "queue": m["queue"]}
	merge(labels, obj(m["custom_labels"]))
	if b, _ := m["dead"].(bool); b {
		s.death.add(labels, 1)
		return
	}
	if v, ok := num(m["duration"]); ok {
		s.duration.observe(labels, v)
	}
	s.jobs.add(labels, 1)
	shutdown, _ := m["shutdown"].(bool)
	success, _ := m["success"].(bool)
	if shutdown {
		s.restarted.add(labels, 1)
	}
	if !success && !shutdown {
		s.failed.add(labels, 1)
	}
}

func (s *sidekiqCollector) families() []*family {
	return []*family{s.duration.family(), s.jobs, s.restarted, s.failed, s.death}
}

// container is server/metrics_container.rb: reports expire after ttl, and
// a new report replaces the ones same() matches.
type container struct {
	ttl     time.Duration
	same    func(a, b map[string]any) bool
	entries []entry
}

type entry struct {
	m       map[string]any
	expires time.Time
}

func (c *container) add(m map[string]any, now time.Time) {
	kept := c.entries[:0]
	for _, e := range c.entries {
		if e.expires.Before(now) || (c.same != nil && c.same(m, e.m)) {
			continue
		}
		kept = append(kept, e)
	}
	c.entries = append(kept, entry{m, now.Add(c.ttl)})
}

func (c *container) live(now time.Time) []map[string]any {
	var out []map[string]any
	for _, e := range c.entries {
		if !e.expires.Before(now) {
			out = append(out, e.m)
		}
	}
	return out
}

// family is one metric name with its samples, keyed by rendered labels.
type family struct {
	name, help, typ string
	keys            []string
	values          map[string]float64
}

func newFamily(name, help, typ string) *family {
	return &family{name: name, help: help, typ: typ, values: map[string]float64{}}
}

func (f *family) set(labels map[string]any, v float64) {
	k := labelText(labels)
	if _, ok := f.values[k]; !ok {
		f.keys = append(f.keys, k)
	}
	f.values[k] = v
}

func (f *family) add(labels map[string]any, v float64) {
	k := labelText(labels)
	if _, ok := f.values[k]; !ok {
		f.keys = append(f.keys, k)
	}
	f.values[k] += v
}

// write renders Base#to_prometheus_text.
func (f *family) write(b *strings.Builder, prefix string) {
	name := prefix + f.name
	fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, f.help, name, f.typ)
	for _, k := range f.keys {
		fmt.Fprintf(b, "%s%s %s\n", name, k, formatValue(f.values[k]))
	}
	b.WriteString("\n")
}

// summary is metric/summary.rb: quantiles over two buffers that rotate
// every two minutes, and running sums and counts.
type summary struct {
	name, help string
	keys       []string
	labels     map[string]map[string]any
	buf        [2]map[string][]float64
	sum, count map[string]float64
	rotated    time.Time
	cur        int
}

// The summary's quantiles, as metric/summary.rb DEFAULT_QUANTILES.
var quantiles = []float64{0.99, 0.9, 0.5, 0.1, 0.01}

func newSummary(name, help string) *summary {
	return &summary{name: name, help: help, labels: map[string]map[string]any{},
		buf: [2]map[string][]float64{{}, {}}, sum: map[string]float64{}, count: map[string]float64{}, rotated: time.Now()}
}

func (s *summary) observe(labels map[string]any, v float64) {
	k := labelText(labels)
	if _, ok := s.labels[k]; !ok {
		s.keys = append(s.keys, k)
		s.labels[k] = labels
	}
	if time.Since(s.rotated) > 2*time.Minute { // ROTATE_AGE
		s.rotated = time.Now()
		for key := range s.buf[s.cur] {
			s.buf[s.cur][key] = s.buf[s.cur][key][:0]
		}
		s.cur = 1 - s.cur
	}
	s.buf[0][k] = append(s.buf[0][k], v)
	s.buf[1][k] = append(s.buf[1][k], v)
	s.sum[k] += v
	s.count[k]++
}

// family renders the quantiles (sorted[ceil(n*q)-1] of the current
// buffer), _sum and _count under one summary family.
func (s *summary) family() *family {
	f := newFamily(s.name, s.help, "summary")
	for _, k := range s.keys {
		data := append([]float64(nil), s.buf[s.cur][k]...)
		if len(data) == 0 {
			continue
		}
		sort.Float64s(data)
		for _, q := range quantiles {
			l := map[string]any{"quantile": q}
			merge(l, s.labels[k])
			f.set(l, data[int(math.Ceil(float64(len(data))*q))-1])
		}
		f.keys = append(f.keys, "_sum"+k, "_count"+k)
		f.values["_sum"+k], f.values["_count"+k] = s.sum[k], s.count[k]
	}
	return f
}

// labelText renders {k="v",...} (sorted by key), values as Ruby's to_s
// renders them; nothing for no labels.
func labelText(labels map[string]any) string {
	if len(labels) == 0 {
		return ""
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteString(`="`)
		b.WriteString(strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(str(labels[k])))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// str is Ruby's to_s of a JSON value.
func str(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return formatValue(x)
	case int:
		return strconv.Itoa(x)
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(v)
}

func formatValue(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func num(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	}
	return 0, false
}

func obj(v any) map[string]any {
	if m, ok := v.(map[string]any); ok {
		out := make(map[string]any, len(m))
		for k, x := range m {
			out[k] = x
		}
		return out
	}
	return map[string]any{}
}

func merge(dst, src map[string]any) {
	for k, v := range src {
		dst[k] = v
	}
}
