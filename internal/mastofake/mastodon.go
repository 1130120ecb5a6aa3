package mastofake

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"sort"
	"time"
)

// Client sends messages to an Exporter's /send-metrics the way the gem's
// PrometheusExporter::Client does (a POST of JSON objects one after the
// other).
type Client struct {
	URL  string // the exporter's base URL, e.g. http://127.0.0.1:9394
	HTTP *http.Client
}

// Send posts msgs in one session.
func (c *Client) Send(ctx context.Context, msgs ...map[string]any) error {
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	for _, m := range msgs {
		if err := enc.Encode(m); err != nil {
			return err
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL+"/send-metrics", &body)
	if err != nil {
		return err
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("send %d metrics to %s: %w", len(msgs), c.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("send %d metrics to %s: %s: %s", len(msgs), c.URL, resp.Status, b)
	}
	return nil
}

// Route is a Mastodon controller action (controller_path and action_name,
// as the gem's middleware labels requests) with its share of the traffic
// and its usual duration.
type Route struct {
	Controller, Action string
	Share              float64 // of the requests
	Seconds            float64 // median duration
}

// Routes are requests a busy Mastodon web node serves (controller paths
// from Mastodon's app/controllers).
var Routes = []Route{
	{"api/v1/timelines/home", "show", 0.22, 0.120},
	{"api/v1/notifications", "index", 0.12, 0.090},
	{"activitypub/inboxes", "create", 0.25, 0.030},
	{"api/v1/statuses", "show", 0.08, 0.040},
	{"api/v1/statuses", "create", 0.02, 0.350},
	{"statuses", "show", 0.07, 0.060},
	{"accounts", "show", 0.05, 0.080},
	{"well_known/webfinger", "show", 0.06, 0.015},
	{"api/v2/search", "index", 0.03, 0.600},
	{"api/v1/media", "create", 0.01, 0.900},
	{"health", "show", 0.09, 0.002},
}

// Web is one Mastodon 4.4+ web droplet with MASTODON_PROMETHEUS_EXPORTER_
// ENABLED and _WEB_DETAILED_METRICS: Puma's master and workers send what
// config/puma.rb and config/initializers/prometheus_exporter.rb start
// (Process and ActiveRecord per worker, Puma stats from the master,
// PrometheusExporter::Middleware per request). Set the load fields, then
// call Step for each slice of time.
type Web struct {
	Hostname            string
	PID                 int // the master's; workers are PID+1...
	Workers, Threads    int // WEB_CONCURRENCY, MAX_THREADS
	Pool                int // DB_POOL (default MAX_THREADS)
	Database, DBHost    string
	RequestsPerSecond   float64
	Slowdown            float64 // duration multiplier (a slow database); 0 means 1
	ErrorShare          float64 // 5xx share of the requests
	DBShare             float64 // share of busy threads holding a database connection; 0 means 0.5
	Rand                *rand.Rand
	opened              []int // AR connections each worker has opened
	gcMajor, gcMinor    []float64
	allocated, requests float64
}

func (w *Web) rng() *rand.Rand {
	if w.Rand == nil {
		w.Rand = rand.New(rand.NewPCG(uint64(w.PID), 1))
	}
	return w.Rand
}

// request is one request the model drew.
type request struct {
	route             Route
	status            int
	total, sql, redis float64 // seconds
}

// draw returns the requests of dt at the current load.
func (w *Web) draw(dt time.Duration) []request {
	r := w.rng()
	slow := w.Slowdown
	if slow <= 0 {
		slow = 1
	}
	n := poisson(r, w.RequestsPerSecond*dt.Seconds())
	out := make([]request, 0, n)
	for range n {
		rt := pick(r, Routes)
		total := rt.Seconds * slow * math.Exp(r.NormFloat64()*0.5)
		status := 200
		switch {
		case r.Float64() < w.ErrorShare:
			status = []int{500, 502, 503}[r.IntN(3)]
		case rt.Controller == "activitypub/inboxes":
			status = 202
		case r.Float64() < 0.03:
			status = 404
		}
		out = append(out, request{rt, status, total, total * (0.2 + 0.4*r.Float64()), total * 0.1 * r.Float64()})
	}
	return out
}

// Step sends the requests of dt at the current load, then the periodic
// reports (the gem sends them every 30 s; a shorter step makes them more
// frequent, which Prometheus cannot tell apart).
func (w *Web) Step(ctx context.Context, c *Client, dt time.Duration) error {
	r := w.rng()
	reqs := w.draw(dt)
	n := len(reqs)
	msgs := make([]map[string]any, 0, n+3*w.Workers+1)
	var busySeconds float64
	for _, q := range reqs {
		busySeconds += q.total
		// PrometheusExporter::Middleware#call (lib/prometheus_exporter/middleware.rb).
		msgs = append(msgs, map[string]any{"type": "web", "status": q.status,
			"timings": map[string]any{"total_duration": q.total,
				"sql":   map[string]any{"duration": q.sql, "calls": 1 + r.IntN(12)},
				"redis": map[string]any{"duration": q.redis, "calls": r.IntN(6)}},
			"queue_time":     0.001 + 0.004*r.Float64(), // X-Request-Start set by nginx
			"default_labels": map[string]any{"action": q.route.Action, "controller": q.route.Controller}})
	}
	w.requests += float64(n)
	capacity := w.Workers * w.Threads
	busy := busySeconds / dt.Seconds() // Little's law
	backlog := 0
	if busy > float64(capacity) {
		backlog = int(busy) - capacity
		busy = float64(capacity)
	}
	// Puma.start in after_worker_boot (master): cluster stats summed over
	// workers (lib/prometheus_exporter/instrumentation/puma.rb).
	msgs = append(msgs, map[string]any{"pid": w.PID, "type": "puma", "hostname": w.Hostname, "metric_labels": map[string]any{},
		"phase": 0, "workers": w.Workers, "booted_workers": w.Workers, "old_workers": 0,
		"request_backlog": backlog, "running_threads": capacity, "thread_pool_capacity": capacity - int(math.Round(busy)),
		"max_threads": capacity, "busy_threads": int(math.Round(busy))})
	if w.opened == nil {
		w.opened = make([]int, w.Workers)
		w.gcMajor, w.gcMinor = make([]float64, w.Workers), make([]float64, w.Workers)
	}
	pool := w.Pool
	if pool == 0 {
		pool = w.Threads
	}
	dbShare := w.DBShare
	if dbShare == 0 {
		dbShare = 0.5
	}
	if w.Slowdown > 1 { // a slow database: the time outside it stays, the time holding a connection grows
		dbShare = 1 - (1-dbShare)/w.Slowdown
	}
	for i := range w.Workers {
		pid := w.PID + 1 + i
		share := busy / float64(w.Workers) * (0.8 + 0.4*r.Float64())
		need := int(math.Round(share * dbShare)) // threads that want a connection now
		dbBusy, waiting := min(pool, need), max(0, need-pool)
		w.opened[i] = max(w.opened[i], min(pool, dbBusy+1))
		// ActiveRecord.start(custom_labels: {type: 'puma'}, config_labels: [:database, :host])
		// in before_worker_boot (config/puma.rb); pool.stat keys.
		msgs = append(msgs, map[string]any{"pid": pid, "type": "active_record", "hostname": w.Hostname,
			"metric_labels": map[string]any{"type": "puma", "pool_name": "primary", "dbconfig_database": w.Database, "dbconfig_host": w.DBHost},
			"size":          pool, "connections": w.opened[i], "busy": dbBusy, "dead": 0, "idle": w.opened[i] - dbBusy, "waiting": waiting, "checkout_timeout": 5})
		w.gcMinor[i] += float64(n) / float64(w.Workers) / 8
		w.gcMajor[i] += float64(n) / float64(w.Workers) / 400
		w.allocated += float64(n) * 40000
		// Process.start(type: 'puma') in before_worker_boot.
		msgs = append(msgs, map[string]any{"type": "process", "metric_labels": map[string]any{"type": "puma"}, "hostname": w.Hostname,
			"pid": pid, "rss": 420e6 + float64(i)*15e6 + 2e4*w.requests/float64(w.Workers), "heap_live_slots": 2.1e6, "heap_free_slots": 3e5,
			"major_gc_ops_total": math.Floor(w.gcMajor[i]), "minor_gc_ops_total": math.Floor(w.gcMinor[i]),
			"allocated_objects_total":     w.allocated / float64(w.Workers),
			"malloc_increase_bytes_limit": 3.2e7, "oldmalloc_increase_bytes_limit": 6.4e7})
	}
	return c.Send(ctx, msgs...)
}

// Job is a Sidekiq worker class of Mastodon and the queue it runs on.
type Job struct {
	Class, Queue string
	Seconds      float64 // median run time
	Fails        float64 // share of runs that raise
}

// Jobs are Mastodon's frequent Sidekiq workers (app/workers) on their
// queues (sidekiq_options queue: in each worker).
var Jobs = []Job{
	{"ActivityPub::DeliveryWorker", "push", 0.25, 0.08},
	{"ActivityPub::DistributionWorker", "push", 0.05, 0},
	{"ActivityPub::ProcessingWorker", "ingress", 0.12, 0.01},
	{"LinkCrawlWorker", "pull", 0.8, 0.1},
	{"FeedInsertWorker", "default", 0.02, 0},
	{"PushUpdateWorker", "default", 0.01, 0},
	{"LocalNotificationWorker", "default", 0.03, 0},
	{"ActionMailer::MailDeliveryJob", "mailers", 0.5, 0.02},
	{"Scheduler::AccountsStatusesCleanupScheduler", "scheduler", 2, 0},
}

// Sidekiq is one Mastodon 4.4+ Sidekiq process with MASTODON_PROMETHEUS_
// EXPORTER_ENABLED and _SIDEKIQ_DETAILED_METRICS, sending what
// config/initializers/sidekiq.rb starts: Process and SidekiqProcess and
// ActiveRecord always, per-job middleware, SidekiqQueue (the queues this
// process listens on) and SidekiqStats with the detailed metrics. The
// queues' backlog is modelled: arrivals per queue against the process's
// throughput, weighted as Mastodon's config/sidekiq.yml weights them.
type Sidekiq struct {
	Hostname         string
	PID              int
	Concurrency      int      // -c
	Queues           []string // -q, or Mastodon's default list
	Pool             int      // DB_POOL (default the concurrency)
	Database, DBHost string
	Arrivals         map[string]float64 // jobs per second arriving per queue
	Throughput       float64            // jobs per second this process can run
	DBShare          float64            // share of busy threads holding a database connection; 0 means 2/3
	Rand             *rand.Rand
	backlog          map[string]float64
	oldest           map[string]float64 // age of the oldest job, s
	processed        float64
	failed           float64
	gcMinor          float64
}

var queueWeight = map[string]float64{"default": 8, "push": 6, "ingress": 4, "mailers": 2, "pull": 1, "scheduler": 1, "fasp": 1}

// ran is one job the model ran.
type ran struct {
	job     Job
	ok      bool
	seconds float64
}

// run moves the queues dt forward and returns the jobs run.
func (s *Sidekiq) run(dt time.Duration) (jobs []ran, queues []string) {
	if s.Rand == nil {
		s.Rand = rand.New(rand.NewPCG(uint64(s.PID), 2))
	}
	if s.backlog == nil {
		s.backlog, s.oldest = map[string]float64{}, map[string]float64{}
	}
	r := s.Rand
	queues = s.Queues
	if len(queues) == 0 {
		queues = []string{"default", "push", "ingress", "mailers", "pull", "scheduler"}
	}
	for _, q := range queues {
		s.backlog[q] += float64(poisson(r, s.Arrivals[q]*dt.Seconds()))
	}
	// Weighted fetch: each queue with jobs gets its weight's share of the
	// throughput; what a queue leaves goes to the others.
	take := map[string]float64{}
	budget := s.Throughput * dt.Seconds()
	for range len(queues) {
		var weights float64
		for _, q := range queues {
			if s.backlog[q]-take[q] >= 1 {
				weights += queueWeight[q]
			}
		}
		if weights == 0 || budget < 1 {
			break
		}
		left := budget
		for _, q := range queues {
			if s.backlog[q]-take[q] < 1 {
				continue
			}
			n := math.Min(s.backlog[q]-take[q], math.Floor(budget*queueWeight[q]/weights))
			take[q] += n
			left -= n
		}
		if left == budget {
			break
		}
		budget = left
	}
	for _, q := range queues {
		n := math.Floor(take[q])
		s.backlog[q] -= n
		switch {
		case s.backlog[q] < 1:
			s.oldest[q] = 0
		case n > 0: // Little's law: the wait of the oldest job at this drain rate
			s.oldest[q] = s.backlog[q] / (n / dt.Seconds())
		default:
			s.oldest[q] += dt.Seconds()
		}
		if n == 0 {
			continue
		}
		var classes []Job
		for _, j := range Jobs {
			if j.Queue == q {
				classes = append(classes, j)
			}
		}
		if len(classes) == 0 {
			classes = []Job{{"UnknownWorker", q, 0.1, 0}}
		}
		for range int(n) {
			j := classes[r.IntN(len(classes))]
			ok := r.Float64() >= j.Fails
			s.processed++
			if !ok {
				s.failed++
			}
			jobs = append(jobs, ran{j, ok, j.Seconds * math.Exp(r.NormFloat64()*0.6)})
		}
	}
	return jobs, queues
}

// stats is Sidekiq::Stats of the model.
func (s *Sidekiq) stats(busyThreads int) SidekiqStats {
	var enqueued float64
	for _, b := range s.backlog {
		enqueued += b
	}
	return SidekiqStats{DeadSize: 3, Enqueued: enqueued, Failed: s.failed, Processed: s.processed, ProcessesSize: 1,
		RetrySize: math.Floor(s.failed / 2), ScheduledSize: 40, WorkersSize: float64(busyThreads)}
}

// Step runs dt of the model and sends its messages.
func (s *Sidekiq) Step(ctx context.Context, c *Client, dt time.Duration) error {
	jobs, queues := s.run(dt)
	var msgs []map[string]any
	busy := 0.0
	for _, j := range jobs {
		busy += j.seconds
		// PrometheusExporter::Instrumentation::Sidekiq#call (instrumentation/sidekiq.rb).
		msgs = append(msgs, map[string]any{"type": "sidekiq", "name": j.job.Class, "queue": j.job.Queue, "success": j.ok,
			"shutdown": false, "duration": j.seconds, "custom_labels": map[string]any{}})
	}
	busyThreads := min(s.Concurrency, int(math.Round(busy/dt.Seconds())))
	sort.Strings(queues)
	pool := s.Pool
	if pool == 0 {
		pool = s.Concurrency
	}
	dbShare := s.DBShare
	if dbShare == 0 {
		dbShare = 2.0 / 3
	}
	dbBusy := min(pool, int(float64(busyThreads)*dbShare))
	s.gcMinor += s.processed / 50
	var qstats []any
	for _, q := range queues {
		// SidekiqQueue#collect_queue_stats: latency is Sidekiq::Queue#latency.to_i.
		qstats = append(qstats, map[string]any{"backlog": s.backlog[q], "latency_seconds": math.Floor(s.oldest[q]), "labels": map[string]any{"queue": q}})
	}
	st := s.stats(busyThreads)
	identity := fmt.Sprintf("%s:%d:0f3a", s.Hostname, s.PID)
	msgs = append(msgs,
		map[string]any{"type": "process", "metric_labels": map[string]any{"type": "sidekiq"}, "hostname": s.Hostname, "pid": s.PID,
			"rss": 610e6 + 1e4*s.processed, "heap_live_slots": 2.6e6, "heap_free_slots": 2e5, "major_gc_ops_total": math.Floor(s.gcMinor / 40),
			"minor_gc_ops_total": math.Floor(s.gcMinor), "allocated_objects_total": 5e4 * s.processed},
		// SidekiqProcess#collect_stats
		map[string]any{"type": "sidekiq_process", "process": map[string]any{"busy": busyThreads, "concurrency": s.Concurrency,
			"labels": map[string]any{"labels": "", "queues": joinSorted(queues), "quiet": "false", "tag": "live", "hostname": s.Hostname, "identity": identity}}},
		map[string]any{"pid": s.PID, "type": "active_record", "hostname": s.Hostname,
			"metric_labels": map[string]any{"type": "sidekiq", "pool_name": "primary", "dbconfig_database": s.Database, "dbconfig_host": s.DBHost},
			"size":          pool, "connections": max(dbBusy, pool/2), "busy": dbBusy, "dead": 0, "idle": max(dbBusy, pool/2) - dbBusy, "waiting": 0, "checkout_timeout": 5},
		map[string]any{"type": "sidekiq_queue", "queues": qstats},
		// SidekiqStats#collect_stats: Sidekiq::Stats, the same from every process.
		map[string]any{"type": "sidekiq_stats", "stats": map[string]any{"dead_size": st.DeadSize, "enqueued": st.Enqueued, "failed": st.Failed,
			"processed": st.Processed, "processes_size": st.ProcessesSize, "retry_size": st.RetrySize, "scheduled_size": st.ScheduledSize,
			"workers_size": st.WorkersSize}},
	)
	return c.Send(ctx, msgs...)
}

func joinSorted(q []string) string {
	s := append([]string(nil), q...)
	sort.Strings(s)
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}

func pick(r *rand.Rand, routes []Route) Route {
	x := r.Float64()
	for _, rt := range routes {
		if x < rt.Share {
			return rt
		}
		x -= rt.Share
	}
	return routes[len(routes)-1]
}

// poisson draws a count with mean m (normal approximation above 30).
func poisson(r *rand.Rand, m float64) int {
	if m <= 0 {
		return 0
	}
	if m > 30 {
		return max(0, int(math.Round(m+math.Sqrt(m)*r.NormFloat64())))
	}
	l, k, p := math.Exp(-m), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}
