package sidekiqq

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// CollectorOptions tune NewCollector. Zero values mean the defaults.
type CollectorOptions struct {
	// Timeout bounds one scrape's Read; default 5 s.
	Timeout time.Duration
	// ConstLabels are added to every metric (e.g. {"instance": "vmst.io"}).
	ConstLabels prometheus.Labels
	// Now is the clock latencies are measured with; default time.Now.
	Now func() time.Time
	// Namespace is Mastodon 4.3's REDIS_NAMESPACE (NamespaceFromEnv): every
	// key is read under it (ReadNamespace); "" for 4.4 and later.
	Namespace string
}

// Collector is a prometheus.Collector that reads Sidekiq's statistics from
// Redis on every scrape (two round trips), under the names of Strech's
// sidekiq-prometheus-exporter, plus sidekiq_queue_size{name} (the same value
// as sidekiq_queue_enqueued_jobs) and fediops_sidekiq_read_problems. A
// failed read makes the scrape fail (an invalid metric), so the target shows
// as down.
type Collector struct {
	client    redis.Cmdable
	timeout   time.Duration
	now       func() time.Time
	namespace string

	processed, failed, workers, busy, processes, enqueued, scheduled, retry, dead *prometheus.Desc
	queueLatency, queueEnqueued, queueSize, problems                              *prometheus.Desc
	queueProcesses                                                                *prometheus.Desc
}

// NewCollector returns a collector reading through c.
func NewCollector(c redis.Cmdable, opts CollectorOptions) *Collector {
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, opts.ConstLabels)
	}
	return &Collector{
		client:         c,
		timeout:        opts.Timeout,
		now:            opts.Now,
		namespace:      opts.Namespace,
		processed:      d("sidekiq_processed_jobs_total", "Jobs processed since stats were reset (stat:processed)."),
		failed:         d("sidekiq_failed_jobs_total", "Jobs failed since stats were reset (stat:failed)."),
		workers:        d("sidekiq_workers", "Threads of all live Sidekiq processes."),
		busy:           d("sidekiq_busy_workers", "Threads running a job."),
		processes:      d("sidekiq_processes", "Live Sidekiq processes."),
		enqueued:       d("sidekiq_enqueued_jobs", "Jobs waiting in all queues."),
		scheduled:      d("sidekiq_scheduled_jobs", "Jobs in the schedule set."),
		retry:          d("sidekiq_retry_jobs", "Jobs in the retry set."),
		dead:           d("sidekiq_dead_jobs", "Jobs in the dead set."),
		queueLatency:   d("sidekiq_queue_latency_seconds", "Age of the oldest job in the queue.", "name"),
		queueEnqueued:  d("sidekiq_queue_enqueued_jobs", "Jobs waiting in the queue.", "name"),
		queueSize:      d("sidekiq_queue_size", "Jobs waiting in the queue (same as sidekiq_queue_enqueued_jobs).", "name"),
		problems:       d("fediops_sidekiq_read_problems", "Entries in Redis that Sidekiq would not have written (see sidekiqq.Stats.Problems)."),
		queueProcesses: d("sidekiq_queue_processes", "Live processes listening on the queue and not quiet (scheduler: exactly 1).", "name"),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.processed, c.failed, c.workers, c.busy, c.processes, c.enqueued, c.scheduled,
		c.retry, c.dead, c.queueLatency, c.queueEnqueued, c.queueSize, c.problems, c.queueProcesses} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	s, err := ReadNamespace(ctx, c.client, c.namespace, c.now())
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.processes, err)
		return
	}
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	ch <- prometheus.MustNewConstMetric(c.processed, prometheus.CounterValue, float64(s.Processed))
	ch <- prometheus.MustNewConstMetric(c.failed, prometheus.CounterValue, float64(s.Failed))
	threads, busy := s.Concurrency()
	g(c.workers, float64(threads))
	g(c.busy, float64(busy))
	g(c.processes, float64(len(s.Processes)))
	g(c.enqueued, float64(s.Enqueued))
	g(c.scheduled, float64(s.Scheduled))
	g(c.retry, float64(s.Retry))
	g(c.dead, float64(s.Dead))
	for _, q := range s.Queues {
		g(c.queueLatency, q.Latency.Seconds(), q.Name)
		g(c.queueEnqueued, float64(q.Size), q.Name)
		g(c.queueSize, float64(q.Size), q.Name)
	}
	g(c.problems, float64(len(s.Problems)))
	// Every queue in the queues set or listed by a process, so that a queue
	// nobody serves shows 0 and a served queue shows before its first job.
	seen := map[string]bool{}
	for _, q := range s.Queues {
		seen[q.Name] = true
	}
	for _, p := range s.Processes {
		for _, q := range p.Queues {
			seen[q] = true
		}
	}
	for q := range seen {
		g(c.queueProcesses, float64(len(s.Serving(q))), q)
	}
}
