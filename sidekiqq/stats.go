package sidekiqq

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Stats is a snapshot of a Sidekiq cluster read from Redis.
type Stats struct {
	At        time.Time `json:"at"`
	Processed int64     `json:"processed"` // stat:processed
	Failed    int64     `json:"failed"`    // stat:failed
	Enqueued  int64     `json:"enqueued"`  // jobs in all queues
	Retry     int64     `json:"retry"`     // ZCARD retry
	Scheduled int64     `json:"scheduled"` // ZCARD schedule
	Dead      int64     `json:"dead"`      // ZCARD dead
	// Queues are the members of the queues set, by name.
	Queues []QueueStats `json:"queues"`
	// Processes are the live processes, by identity.
	Processes []ProcessStats `json:"processes"`
	// Gone are members of the processes set whose hash has expired: a
	// process that died without cleaning up (Sidekiq prunes them later).
	Gone []string `json:"gone,omitempty"`
	// Vanished are the processes an earlier check saw alive that are gone
	// with nothing started in their place; Remember sets it, Read does not.
	Vanished []SeenProcess `json:"vanished,omitempty"`
	// Problems are data Sidekiq would not have written; Read goes on.
	Problems []Problem `json:"problems,omitempty"`
	// RoundTrips is the number of pipelines Read sent (1 or 2).
	RoundTrips int `json:"round_trips"`
}

// QueueStats is one queue's size and latency.
type QueueStats struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	// Latency is now minus the oldest job's enqueued_at; 0 when empty.
	Latency time.Duration `json:"latency"`
	// Oldest is the oldest job (the list's tail) when it parsed.
	Oldest *Job `json:"oldest,omitempty"`
	// Unreadable says why the oldest job did not parse; Latency is then 0
	// and unknown.
	Unreadable string `json:"unreadable,omitempty"`
}

// Serving returns the live processes that list the queue and are not quiet.
func (s *Stats) Serving(queue string) []ProcessStats {
	var out []ProcessStats
	for _, p := range s.Processes {
		if !p.Quiet && p.Serves(queue) {
			out = append(out, p)
		}
	}
	return out
}

// Queue returns the named queue's stats.
func (s *Stats) Queue(name string) (QueueStats, bool) {
	for _, q := range s.Queues {
		if q.Name == name {
			return q, true
		}
	}
	return QueueStats{}, false
}

// Concurrency and Busy sum the live processes' threads and busy threads.
func (s *Stats) Concurrency() (threads, busy int) {
	for _, p := range s.Processes {
		threads += p.Concurrency
		busy += p.Busy
	}
	return threads, busy
}

// Read reads the cluster's statistics from Redis in at most two pipelined
// round trips, whatever the number of queues and processes:
//
//  1. SMEMBERS queues, SMEMBERS processes, ZCARD retry, schedule and dead,
//     GET stat:processed and stat:failed;
//  2. per queue LLEN and LINDEX -1 (the oldest job), per process HGETALL of
//     its heartbeat hash.
//
// c is any go-redis client: a plain one to a local tunnel (redistls,
// stunnel) or one speaking TLS itself. Keys are Sidekiq's own, without a
// namespace (Mastodon 4.4 and later; ReadNamespace reads 4.3's
// REDIS_NAMESPACE). now is the time latencies and heartbeat ages are
// measured against; zero means time.Now().
//
// Redis errors that concern one key (WRONGTYPE: a key of another type) and
// data Sidekiq would not have written become Problems; Read fails only when
// Redis cannot be reached or ctx ends.
func Read(ctx context.Context, c redis.Cmdable, now time.Time) (*Stats, error) {
	return ReadNamespace(ctx, c, "", now)
}

// ReadNamespace is Read with every key it reads under namespace, as
// Mastodon 4.3 writes them when REDIS_NAMESPACE is set (NamespaceFromEnv):
// "mastodon_production" reads mastodon_production:queues,
// mastodon_production:queue:default, mastodon_production:processes, the
// process hashes mastodon_production:IDENTITY, mastodon_production:retry
// and so on. Identities and queue names are reported as Sidekiq knows them,
// without the namespace; Problems name the key as it is in Redis. "" reads
// the keys without a namespace, as Read does.
func ReadNamespace(ctx context.Context, c redis.Cmdable, namespace string, now time.Time) (*Stats, error) {
	if now.IsZero() {
		now = time.Now()
	}
	ns := func(key string) string { return key }
	if namespace != "" {
		ns = func(key string) string { return namespace + ":" + key }
	}
	s := &Stats{At: now}
	problem := func(key, format string, a ...any) {
		s.Problems = append(s.Problems, Problem{Key: key, Detail: fmt.Sprintf(format, a...)})
	}

	p1 := c.Pipeline()
	queuesCmd := p1.SMembers(ctx, ns("queues"))
	procsCmd := p1.SMembers(ctx, ns("processes"))
	retryCmd := p1.ZCard(ctx, ns("retry"))
	schedCmd := p1.ZCard(ctx, ns("schedule"))
	deadCmd := p1.ZCard(ctx, ns("dead"))
	processedCmd := p1.Get(ctx, ns("stat:processed"))
	failedCmd := p1.Get(ctx, ns("stat:failed"))
	s.RoundTrips++
	if _, err := p1.Exec(ctx); err != nil && fatal(err) {
		return nil, fmt.Errorf("read Sidekiq stats: %w", err)
	}
	for _, cmd := range p1.Cmds() {
		if err := cmd.Err(); fatal(err) {
			return nil, fmt.Errorf("read Sidekiq stats: %s: %w", cmd.Name(), err)
		}
	}
	members := func(key string, cmd *redis.StringSliceCmd) []string {
		v, err := cmd.Result()
		if err != nil {
			problem(key, "%v", err)
			return nil
		}
		sort.Strings(v)
		return v
	}
	queueNames := members(ns("queues"), queuesCmd)
	procNames := members(ns("processes"), procsCmd)
	count := func(key string, cmd *redis.IntCmd) int64 {
		v, err := cmd.Result()
		if err != nil {
			problem(key, "%v", err)
		}
		return v
	}
	s.Retry = count(ns("retry"), retryCmd)
	s.Scheduled = count(ns("schedule"), schedCmd)
	s.Dead = count(ns("dead"), deadCmd)
	counter := func(key string, cmd *redis.StringCmd) int64 {
		v, err := cmd.Result()
		if errors.Is(err, redis.Nil) {
			return 0
		}
		if err != nil {
			problem(key, "%v", err)
			return 0
		}
		n, perr := strconv.ParseInt(v, 10, 64)
		if perr != nil || n < 0 {
			problem(key, "%s is not a count", clip([]byte(v)))
			return 0
		}
		return n
	}
	s.Processed = counter(ns("stat:processed"), processedCmd)
	s.Failed = counter(ns("stat:failed"), failedCmd)
	if len(queueNames) == 0 && len(procNames) == 0 {
		return s, nil
	}

	p2 := c.Pipeline()
	type qcmds struct {
		size   *redis.IntCmd
		oldest *redis.StringCmd
	}
	qc := make([]qcmds, len(queueNames))
	for i, q := range queueNames {
		qc[i] = qcmds{p2.LLen(ctx, ns("queue:"+q)), p2.LIndex(ctx, ns("queue:"+q), -1)}
	}
	pc := make([]*redis.MapStringStringCmd, len(procNames))
	for i, id := range procNames {
		pc[i] = p2.HGetAll(ctx, ns(id))
	}
	s.RoundTrips++
	if _, err := p2.Exec(ctx); err != nil && fatal(err) {
		return nil, fmt.Errorf("read Sidekiq stats: %w", err)
	}
	for _, cmd := range p2.Cmds() {
		if err := cmd.Err(); fatal(err) {
			return nil, fmt.Errorf("read Sidekiq stats: %s: %w", cmd.Name(), err)
		}
	}
	for i, name := range queueNames {
		key := ns("queue:" + name)
		q := QueueStats{Name: name}
		size, err := qc[i].size.Result()
		if err != nil {
			problem(key, "%v", err)
			s.Queues = append(s.Queues, q)
			continue
		}
		q.Size = size
		s.Enqueued += size
		raw, err := qc[i].oldest.Result()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			problem(key, "%v", err)
		default:
			job, jerr := ParseJob([]byte(raw))
			if jerr != nil {
				q.Unreadable = jerr.Error()
				problem(key, "oldest job: %v", jerr)
				break
			}
			q.Oldest = &job
			q.Latency = max(now.Sub(job.EnqueuedAt), 0)
		}
		s.Queues = append(s.Queues, q)
	}
	for i, id := range procNames {
		h, err := pc[i].Result()
		if err != nil {
			problem(ns(id), "%v", err)
			continue
		}
		if len(h) == 0 {
			s.Gone = append(s.Gone, id)
			continue
		}
		p, ok, probs := parseProcess(id, h, now)
		for _, pr := range probs {
			pr.Key = ns(id) // the hash's key, namespace included
			s.Problems = append(s.Problems, pr)
		}
		if ok {
			s.Processes = append(s.Processes, p)
		}
	}
	return s, nil
}

// fatal tells a failure to talk to Redis from a reply about one key.
func fatal(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) {
		return false
	}
	var re redis.Error
	return !errors.As(err, &re)
}
