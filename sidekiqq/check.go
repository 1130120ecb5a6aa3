package sidekiqq

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// CheckResult is the outcome of one health check.
type CheckResult struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// CheckConfig tunes Check. Zero values mean the defaults.
type CheckConfig struct {
	// Latency is the most latency a queue may have, by queue name; queues
	// not in it get DefaultLatency. Default DefaultLatencyThresholds().
	Latency map[string]time.Duration
	// DefaultLatency for queues not in Latency; default 5 minutes.
	DefaultLatency time.Duration
	// StaleAfter is the heartbeat age that makes a process stale; default
	// DefaultStaleAfter. It must stay below ProcessExpiry: Sidekiq deletes
	// a process's record ProcessExpiry after its last beat, so a longer
	// threshold could never fail (Check then fails "sidekiq heartbeat
	// threshold" instead). A process gone past it is Remember's to report.
	StaleAfter time.Duration
	// Expect are queues that must be served even when empty; default
	// Mastodon's default, push, ingress, mailers, pull and scheduler, and
	// fasp when ExperimentalFeatures names it. An empty non-nil slice
	// expects none beyond the non-empty queues.
	Expect []string
	// ExperimentalFeatures is Mastodon's EXPERIMENTAL_FEATURES: with fasp
	// in it, the fasp queue must be served (Mastodon's admin dashboard
	// warns when no process lists it).
	ExperimentalFeatures string
	// SeenKey is the Redis hash in which Remember keeps the processes it
	// saw; default DefaultSeenKey, "-" for none (no vanished check).
	SeenKey string
	// Forget is how long a vanished process nothing replaced stays
	// reported; default DefaultForget.
	Forget time.Duration
	// Namespace is Mastodon 4.3's REDIS_NAMESPACE (NamespaceFromEnv) for
	// whoever reads the snapshot Check takes: tiers.SidekiqCheck passes it
	// to ReadNamespace. Check itself does not read Redis.
	Namespace string
}

// DefaultLatencyThresholds are per-queue latency limits: tight for what
// users wait for (default: their own posts and timelines; push: delivery to
// other servers), looser for ingress, mailers and scheduler, loosest for
// pull (fetching remote media and threads). [?] no source: tune them.
func DefaultLatencyThresholds() map[string]time.Duration {
	return map[string]time.Duration{
		QueueDefault:   time.Minute,
		QueuePush:      2 * time.Minute,
		QueueIngress:   5 * time.Minute,
		QueueMailers:   5 * time.Minute,
		QueueScheduler: 5 * time.Minute,
		QueuePull:      15 * time.Minute,
		QueueFASP:      15 * time.Minute,
	}
}

func (c CheckConfig) withDefaults() CheckConfig {
	if c.Latency == nil {
		c.Latency = DefaultLatencyThresholds()
	}
	if c.DefaultLatency == 0 {
		c.DefaultLatency = 5 * time.Minute
	}
	if c.StaleAfter == 0 {
		c.StaleAfter = DefaultStaleAfter
	}
	if c.Expect == nil {
		c.Expect = []string{QueueDefault, QueuePush, QueueIngress, QueueMailers, QueuePull, QueueScheduler}
		if HasFeature(c.ExperimentalFeatures, QueueFASP) {
			c.Expect = append(c.Expect, QueueFASP)
		}
	}
	if c.SeenKey == "" {
		c.SeenKey = DefaultSeenKey
	}
	if c.Forget <= 0 {
		c.Forget = DefaultForget
	}
	return c
}

// ProcessExpiry is how long Sidekiq keeps a process's record after its
// last heartbeat (the TTL of its hash, in 6.5 to 8.1): a process that
// stops beating is gone from Redis that long after.
const ProcessExpiry = 60 * time.Second

// DefaultStaleAfter is the heartbeat age CheckConfig.StaleAfter defaults
// to: three missed beats of Sidekiq 7 and 8 (every 10 s), six of 6.5
// (every 5 s), and half of ProcessExpiry, so that a frozen process fails
// the check for the 30 s before its record expires; after that Remember
// reports it as vanished.
const DefaultStaleAfter = 30 * time.Second

// HasFeature reports whether EXPERIMENTAL_FEATURES (a comma-separated
// list) names feature.
func HasFeature(experimentalFeatures, feature string) bool {
	for _, f := range strings.Split(experimentalFeatures, ",") {
		if strings.TrimSpace(f) == feature {
			return true
		}
	}
	return false
}

// Check runs the health checks on a snapshot, in this order:
//
//   - "sidekiq queue NAME latency", per queue: at most its threshold (a
//     queue whose oldest job does not parse fails: its latency is unknown);
//   - "sidekiq queue NAME served", per expected or non-empty queue: at
//     least one live, non-quiet process lists it;
//   - "sidekiq scheduler": exactly one process lists scheduler, and it is
//     not quiet;
//   - "sidekiq heartbeat IDENTITY", per process: its last beat is at most
//     StaleAfter old ("sidekiq heartbeat threshold" fails instead when
//     StaleAfter is not below ProcessExpiry, which no beat can exceed);
//   - "sidekiq vanished IDENTITY", per process of s.Vanished (Remember):
//     always failed.
func Check(s *Stats, cfg CheckConfig) []CheckResult {
	c := cfg.withDefaults()
	var out []CheckResult
	for _, q := range s.Queues {
		limit, ok := c.Latency[q.Name]
		if !ok {
			limit = c.DefaultLatency
		}
		r := CheckResult{Name: "sidekiq queue " + q.Name + " latency"}
		switch {
		case q.Unreadable != "":
			r.Detail = fmt.Sprintf("latency unknown, %d jobs: oldest job unreadable: %s", q.Size, q.Unreadable)
		case q.Latency > limit:
			r.Detail = fmt.Sprintf("latency %s over %s, %d jobs", q.Latency.Round(time.Second), limit, q.Size)
		default:
			r.OK = true
			r.Detail = fmt.Sprintf("latency %s (limit %s), %d jobs", q.Latency.Round(time.Second), limit, q.Size)
		}
		out = append(out, r)
	}

	want := map[string]bool{}
	for _, q := range c.Expect {
		want[q] = true
	}
	for _, q := range s.Queues {
		if q.Size > 0 {
			want[q.Name] = true
		}
	}
	names := make([]string, 0, len(want))
	for q := range want {
		names = append(names, q)
	}
	sort.Strings(names)
	for _, q := range names {
		serving := s.Serving(q)
		r := CheckResult{Name: "sidekiq queue " + q + " served", OK: len(serving) > 0}
		if r.OK {
			threads := 0
			for _, p := range serving {
				threads += p.Concurrency
			}
			r.Detail = fmt.Sprintf("%d processes, %d threads", len(serving), threads)
		} else {
			size := int64(0)
			if qs, ok := s.Queue(q); ok {
				size = qs.Size
			}
			r.Detail = fmt.Sprintf("no live, non-quiet process lists %s (%d jobs waiting)", q, size)
			if q == QueueFASP && HasFeature(c.ExperimentalFeatures, QueueFASP) {
				r.Detail += ": EXPERIMENTAL_FEATURES names fasp, and Mastodon's admin dashboard warns that no Sidekiq process handles it"
			}
		}
		out = append(out, r)
	}

	var sched []string
	quiet := 0
	for _, p := range s.Processes {
		if p.Serves(QueueScheduler) {
			id := p.Identity
			if p.Quiet {
				id += " (quiet)"
				quiet++
			}
			sched = append(sched, id)
		}
	}
	r := CheckResult{Name: "sidekiq scheduler", OK: len(sched) == 1 && quiet == 0}
	switch {
	case len(sched) == 0:
		r.Detail = "no process lists scheduler: Mastodon's periodic jobs do not run"
	case len(sched) > 1:
		r.Detail = fmt.Sprintf("%d processes list scheduler (%s): periodic jobs run once per process", len(sched), strings.Join(sched, ", "))
	case quiet > 0:
		r.Detail = "the one process listing scheduler is quiet: " + sched[0]
	default:
		r.Detail = "served by " + sched[0]
	}
	out = append(out, r)

	if c.StaleAfter >= ProcessExpiry {
		out = append(out, CheckResult{Name: "sidekiq heartbeat threshold", Detail: fmt.Sprintf(
			"StaleAfter %s can never fail: Sidekiq deletes a process's record %s after its last beat; use less than %s (default %s)",
			c.StaleAfter, ProcessExpiry, ProcessExpiry, DefaultStaleAfter)})
	}
	for _, p := range s.Processes {
		r := CheckResult{Name: "sidekiq heartbeat " + p.Identity}
		switch {
		case p.Beat.IsZero():
			r.Detail = "no readable beat"
		case p.HeartbeatAge > c.StaleAfter:
			r.Detail = fmt.Sprintf("last beat %s ago, over %s", p.HeartbeatAge.Round(time.Second), c.StaleAfter)
		default:
			r.OK = true
			r.Detail = fmt.Sprintf("last beat %s ago, %d of %d threads busy", p.HeartbeatAge.Round(100*time.Millisecond), p.Busy, p.Concurrency)
		}
		out = append(out, r)
	}
	for _, v := range s.Vanished {
		ago := "at an unknown time"
		if !v.Beat.IsZero() {
			ago = fmt.Sprintf("%s ago (%s)", s.At.Sub(v.Beat).Round(time.Second), v.Beat.UTC().Format(time.RFC3339))
		}
		out = append(out, CheckResult{Name: "sidekiq vanished " + v.Identity, Detail: fmt.Sprintf(
			"gone since a check saw it beat %s, serving %s; no process on %s started since",
			ago, strings.Join(v.Queues, ", "), v.Hostname)})
	}
	return out
}
