package devstack

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/redistls"
	"github.com/fediops/fediops/sidekiqq"
)

// Sidekiq's timing, as Sidekiq 7 and 8 keep it: a process beats every
// 10 s and its hash expires 60 s after the last beat.
const processExpiry = 60 * time.Second

var (
	beatEvery = 10 * time.Second
	// jobsServedAfter is how old a job gets before the stand-in's workers
	// take it (and enqueue a fresh one): queue latencies stay below it
	// plus one beat, under every default latency threshold.
	jobsServedAfter = 20 * time.Second
)

var jobClasses = map[string]string{
	sidekiqq.QueueDefault: "LinkCrawlWorker", sidekiqq.QueuePush: "ActivityPub::DeliveryWorker",
	sidekiqq.QueueIngress: "ActivityPub::ProcessingWorker", sidekiqq.QueueMailers: "ActionMailer::MailDeliveryJob",
	sidekiqq.QueuePull: "ActivityPub::FetchRepliesWorker", sidekiqq.QueueScheduler: "Scheduler::AccountsStatusesCleanupScheduler",
}

// sidekiqSim stands in for the seed's two Sidekiq processes while the
// stack runs: it beats for them and serves their queues, so that the
// health checks see what a live instance shows.
type sidekiqSim struct {
	c      *redis.Client
	ids    []string
	n      int
	stop   context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	failed error // the last beat's error, for a test to read
}

// job is one job as Sidekiq writes it: integer milliseconds from Sidekiq 8
// on, float seconds before (ms false: jobs left from before an upgrade).
func (sim *sidekiqSim) job(q string, at time.Time, ms bool) string {
	sim.n++
	ts := any(float64(at.UnixMicro()) / 1e6)
	if ms {
		ts = at.UnixMilli()
	}
	js, _ := json.Marshal(map[string]any{"retry": true, "queue": q, "class": jobClasses[q], "args": []int{sim.n},
		"jid": strings.ToLower(randHex(12)), "created_at": ts, "enqueued_at": ts})
	return string(js)
}

// seedSidekiq writes what the seed's two Sidekiq nodes would (Scotty on
// Sidekiq 7.3, Decker on 8.1 with the scheduler): their process hashes,
// jobs in both timestamp formats, retry and schedule sets, totals; then
// keeps them beating until Close.
func (s *Stack) seedSidekiq(ctx context.Context, env *fediops.Env, jobs int) (string, error) {
	if s.sidekiq != nil {
		s.sidekiq.stop()
		<-s.sidekiq.done
	}
	opt, err := redistls.ClientOptionsFromEnv(env.Lookup, "REDIS_")
	if err != nil {
		return "", err
	}
	sim := &sidekiqSim{c: redis.NewClient(opt), done: make(chan struct{})}
	c := sim.c
	if err := c.FlushDB(ctx).Err(); err != nil {
		c.Close()
		return "", fmt.Errorf("seed sidekiq: %w", err)
	}
	now := time.Now()
	layout := sidekiqq.SeedLayout()
	pipe := c.TxPipeline()
	for i, p := range layout.Processes {
		host := strings.ToLower(p.Node)
		pid := 4000 + i*17
		id := fmt.Sprintf("%s:%d:%s", host, pid, strings.ToLower(randHex(6)))
		sim.ids = append(sim.ids, id)
		names, weights := []string{}, map[string]int{}
		for _, q := range p.Queues {
			names = append(names, q.Name)
			weights[q.Name] = q.Weight
		}
		info := map[string]any{"hostname": host, "started_at": float64(now.Add(-time.Hour).UnixMicro()) / 1e6,
			"pid": pid, "tag": "mastodon", "queues": names, "weights": []map[string]int{weights},
			"labels": []string{}, "identity": id, "embedded": false}
		fields := map[string]any{"busy": i + 1, "beat": beatValue(now), "quiet": "false", "rss": 480000 + i*1000, "rtt_us": 150}
		if i == 0 { // Sidekiq 7.3 (Mastodon 4.4): concurrency in info
			info["version"], info["concurrency"] = "7.3.9", p.Threads
		} else { // Sidekiq 8.1 (Mastodon 4.6): capsules and the hash field
			info["version"] = "8.1.2"
			info["capsules"] = map[string]any{"default": map[string]any{"concurrency": p.Threads, "mode": "weighted", "weights": weights}}
			fields["concurrency"] = p.Threads
		}
		js, err := json.Marshal(info)
		if err != nil {
			c.Close()
			return "", err
		}
		fields["info"] = string(js)
		pipe.SAdd(ctx, "processes", id)
		pipe.HSet(ctx, id, fields)
		pipe.Expire(ctx, id, processExpiry)
	}
	queues := []string{"default", "default", "default", "push", "push", "ingress", "mailers", "pull"}
	for _, q := range []string{"default", "push", "ingress", "mailers", "pull", "scheduler"} {
		pipe.SAdd(ctx, "queues", q)
	}
	for n := range jobs {
		q := queues[n%len(queues)]
		// oldest first, a few seconds old; pull holds 7.x jobs left from before an upgrade
		at := now.Add(-time.Duration(jobs-n) * 50 * time.Millisecond)
		pipe.LPush(ctx, "queue:"+q, sim.job(q, at, q != "pull"))
	}
	retry, _ := json.Marshal(map[string]any{"retry": true, "queue": "push", "class": jobClasses["push"], "args": []int{7},
		"jid": strings.ToLower(randHex(12)), "created_at": now.Add(-time.Hour).UnixMilli(), "enqueued_at": now.Add(-time.Hour).UnixMilli(),
		"error_message": "Net::ReadTimeout", "error_class": "HTTP::TimeoutError", "failed_at": now.Add(-time.Hour).UnixMilli(), "retry_count": 2})
	pipe.ZAdd(ctx, "retry", redis.Z{Score: float64(now.Add(10 * time.Minute).Unix()), Member: string(retry)})
	pipe.ZAdd(ctx, "schedule", redis.Z{Score: float64(now.Add(time.Hour).Unix()), Member: sim.job("default", now, true)})
	pipe.Set(ctx, "stat:processed", 1234567, 0)
	pipe.Set(ctx, "stat:failed", 321, 0)
	pipe.Set(ctx, "stat:processed:"+now.UTC().Format(time.DateOnly), 4321, 0)
	if _, err := pipe.Exec(ctx); err != nil {
		c.Close()
		return "", fmt.Errorf("seed sidekiq: %w", err)
	}
	var bctx context.Context
	bctx, sim.stop = context.WithCancel(context.Background())
	go sim.run(bctx)
	s.sidekiq = sim
	s.stop = append(s.stop, func() { sim.stop(); <-sim.done })
	return fmt.Sprintf("%d Sidekiq jobs, %d processes (scotty 7.3, decker 8.1 + scheduler)", jobs, len(layout.Processes)), nil
}

func beatValue(t time.Time) string { return fmt.Sprintf("%.6f", float64(t.UnixMicro())/1e6) }

// run beats every beatEvery until ctx ends.
func (sim *sidekiqSim) run(ctx context.Context) {
	defer close(sim.done)
	defer sim.c.Close()
	t := time.NewTicker(beatEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := sim.beat(ctx)
		sim.mu.Lock()
		sim.failed = err
		sim.mu.Unlock()
	}
}

// beat renews the processes' hashes as Sidekiq's heartbeat does, and lets
// the workers take every job older than jobsServedAfter while a fresh one
// arrives for each.
func (sim *sidekiqSim) beat(ctx context.Context) error {
	now := time.Now()
	pipe := sim.c.TxPipeline()
	for _, id := range sim.ids {
		pipe.HSet(ctx, id, "beat", beatValue(now))
		pipe.Expire(ctx, id, processExpiry)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	served := 0
	for _, q := range []string{"default", "push", "ingress", "mailers", "pull", "scheduler"} {
		for {
			oldest, err := sim.c.LIndex(ctx, "queue:"+q, -1).Result()
			if err != nil { // redis.Nil: the queue is empty
				break
			}
			var j struct {
				EnqueuedAt json.Number `json:"enqueued_at"`
			}
			if json.Unmarshal([]byte(oldest), &j) != nil {
				break
			}
			at, ms := jobTime(j.EnqueuedAt)
			if now.Sub(at) < jobsServedAfter {
				break
			}
			p := sim.c.TxPipeline()
			p.RPop(ctx, "queue:"+q)
			p.LPush(ctx, "queue:"+q, sim.job(q, now, ms))
			if _, err := p.Exec(ctx); err != nil {
				return err
			}
			served++
		}
	}
	if served > 0 {
		return sim.c.IncrBy(ctx, "stat:processed", int64(served)).Err()
	}
	return nil
}

// jobTime reads enqueued_at: float seconds (Sidekiq 6.5, 7) or integer
// milliseconds (8).
func jobTime(n json.Number) (time.Time, bool) {
	if strings.ContainsAny(string(n), ".eE") {
		f, _ := n.Float64()
		return time.UnixMicro(int64(f * 1e6)), false
	}
	ms, _ := n.Int64()
	return time.UnixMilli(ms), true
}
