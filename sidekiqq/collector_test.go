package sidekiqq

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
)

func TestCollector(t *testing.T) {
	t.Parallel()
	w, r, cnt := testDB(t)
	load(t, w, "sidekiq-8.1")
	col := NewCollector(r, CollectorOptions{Now: func() time.Time { return fixedNow }, ConstLabels: prometheus.Labels{"instance": "vmst.io"}})
	want := `
# HELP sidekiq_busy_workers Threads running a job.
# TYPE sidekiq_busy_workers gauge
sidekiq_busy_workers{instance="vmst.io"} 19
# HELP sidekiq_dead_jobs Jobs in the dead set.
# TYPE sidekiq_dead_jobs gauge
sidekiq_dead_jobs{instance="vmst.io"} 2
# HELP sidekiq_enqueued_jobs Jobs waiting in all queues.
# TYPE sidekiq_enqueued_jobs gauge
sidekiq_enqueued_jobs{instance="vmst.io"} 5
# HELP sidekiq_failed_jobs_total Jobs failed since stats were reset (stat:failed).
# TYPE sidekiq_failed_jobs_total counter
sidekiq_failed_jobs_total{instance="vmst.io"} 43
# HELP sidekiq_processed_jobs_total Jobs processed since stats were reset (stat:processed).
# TYPE sidekiq_processed_jobs_total counter
sidekiq_processed_jobs_total{instance="vmst.io"} 98765
# HELP sidekiq_processes Live Sidekiq processes.
# TYPE sidekiq_processes gauge
sidekiq_processes{instance="vmst.io"} 2
# HELP sidekiq_queue_latency_seconds Age of the oldest job in the queue.
# TYPE sidekiq_queue_latency_seconds gauge
sidekiq_queue_latency_seconds{instance="vmst.io",name="default"} 0
sidekiq_queue_latency_seconds{instance="vmst.io",name="fasp"} 0
sidekiq_queue_latency_seconds{instance="vmst.io",name="ingress"} 44.5
sidekiq_queue_latency_seconds{instance="vmst.io",name="mailers"} 0
sidekiq_queue_latency_seconds{instance="vmst.io",name="pull"} 0
sidekiq_queue_latency_seconds{instance="vmst.io",name="push"} 150
sidekiq_queue_latency_seconds{instance="vmst.io",name="scheduler"} 0.998
# HELP sidekiq_queue_enqueued_jobs Jobs waiting in the queue.
# TYPE sidekiq_queue_enqueued_jobs gauge
sidekiq_queue_enqueued_jobs{instance="vmst.io",name="default"} 0
sidekiq_queue_enqueued_jobs{instance="vmst.io",name="fasp"} 0
sidekiq_queue_enqueued_jobs{instance="vmst.io",name="ingress"} 1
sidekiq_queue_enqueued_jobs{instance="vmst.io",name="mailers"} 0
sidekiq_queue_enqueued_jobs{instance="vmst.io",name="pull"} 0
sidekiq_queue_enqueued_jobs{instance="vmst.io",name="push"} 3
sidekiq_queue_enqueued_jobs{instance="vmst.io",name="scheduler"} 1
# HELP sidekiq_queue_processes Live processes listening on the queue and not quiet (scheduler: exactly 1).
# TYPE sidekiq_queue_processes gauge
sidekiq_queue_processes{instance="vmst.io",name="default"} 1
sidekiq_queue_processes{instance="vmst.io",name="fasp"} 1
sidekiq_queue_processes{instance="vmst.io",name="ingress"} 1
sidekiq_queue_processes{instance="vmst.io",name="mailers"} 1
sidekiq_queue_processes{instance="vmst.io",name="pull"} 1
sidekiq_queue_processes{instance="vmst.io",name="push"} 1
sidekiq_queue_processes{instance="vmst.io",name="scheduler"} 0
# HELP sidekiq_queue_size Jobs waiting in the queue (same as sidekiq_queue_enqueued_jobs).
# TYPE sidekiq_queue_size gauge
sidekiq_queue_size{instance="vmst.io",name="default"} 0
sidekiq_queue_size{instance="vmst.io",name="fasp"} 0
sidekiq_queue_size{instance="vmst.io",name="ingress"} 1
sidekiq_queue_size{instance="vmst.io",name="mailers"} 0
sidekiq_queue_size{instance="vmst.io",name="pull"} 0
sidekiq_queue_size{instance="vmst.io",name="push"} 3
sidekiq_queue_size{instance="vmst.io",name="scheduler"} 1
# HELP sidekiq_retry_jobs Jobs in the retry set.
# TYPE sidekiq_retry_jobs gauge
sidekiq_retry_jobs{instance="vmst.io"} 1
# HELP sidekiq_scheduled_jobs Jobs in the schedule set.
# TYPE sidekiq_scheduled_jobs gauge
sidekiq_scheduled_jobs{instance="vmst.io"} 2
# HELP sidekiq_workers Threads of all live Sidekiq processes.
# TYPE sidekiq_workers gauge
sidekiq_workers{instance="vmst.io"} 22
# HELP fediops_sidekiq_read_problems Entries in Redis that Sidekiq would not have written (see sidekiqq.Stats.Problems).
# TYPE fediops_sidekiq_read_problems gauge
fediops_sidekiq_read_problems{instance="vmst.io"} 0
`
	if err := testutil.CollectAndCompare(col, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if n := cnt.pipelines.Load(); n != 2 {
		t.Errorf("one scrape took %d pipelines", n)
	}
	if n := testutil.CollectAndCount(col, "sidekiq_queue_enqueued_jobs"); n != 7 {
		t.Errorf("%d sidekiq_queue_enqueued_jobs series", n)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(col); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Gather(); err != nil {
		t.Errorf("pedantic gather: %v", err)
	}

	// The same scene under Mastodon 4.3's REDIS_NAMESPACE, next to another
	// scene without one: a collector with Namespace reads the former.
	must(t, w.FlushDB(ctx(t)).Err())
	loadNS(t, w, "mastodon_production", "sidekiq-8.1")
	load(t, w, "sidekiq-7.3")
	col = NewCollector(r, CollectorOptions{Now: func() time.Time { return fixedNow }, ConstLabels: prometheus.Labels{"instance": "vmst.io"},
		Namespace: "mastodon_production"})
	if err := testutil.CollectAndCompare(col, strings.NewReader(want)); err != nil {
		t.Errorf("under a namespace: %v", err)
	}
}

func TestCollectorUnreachable(t *testing.T) {
	t.Parallel()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(c, CollectorOptions{Timeout: 2 * time.Second}))
	if _, err := reg.Gather(); err == nil || !strings.Contains(err.Error(), "read Sidekiq stats: ") {
		t.Errorf("gather err = %v", err)
	}
}
