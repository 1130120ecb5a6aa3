package sidekiqq

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// readSequential is the anchor: the same data read one command per round
// trip, as a simple exporter loop does (SMEMBERS, then LLEN and LINDEX per
// queue, HGETALL per process, ZCARD and GET each on their own).
func readSequential(ctx context.Context, c *redis.Client) (queues, procs int, err error) {
	qs, err := c.SMembers(ctx, "queues").Result()
	if err != nil {
		return 0, 0, err
	}
	ps, err := c.SMembers(ctx, "processes").Result()
	if err != nil {
		return 0, 0, err
	}
	for _, k := range []string{"retry", "schedule", "dead"} {
		if err := c.ZCard(ctx, k).Err(); err != nil {
			return 0, 0, err
		}
	}
	for _, k := range []string{"stat:processed", "stat:failed"} {
		if err := c.Get(ctx, k).Err(); err != nil && !errors.Is(err, redis.Nil) {
			return 0, 0, err
		}
	}
	for _, q := range qs {
		if err := c.LLen(ctx, "queue:"+q).Err(); err != nil {
			return 0, 0, err
		}
		raw, err := c.LIndex(ctx, "queue:"+q, -1).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return 0, 0, err
		}
		if err == nil {
			_, _ = ParseJob([]byte(raw))
		}
	}
	for _, p := range ps {
		h, err := c.HGetAll(ctx, p).Result()
		if err != nil {
			return 0, 0, err
		}
		_, _, _ = parseProcess(p, h, time.Now())
	}
	return len(qs), len(ps), nil
}

func loadMany(b testing.TB, c *redis.Client, queues, procs int) {
	ctx := ctx(b)
	pipe := c.Pipeline()
	for i := range queues {
		q := "q" + strconv.Itoa(i)
		pipe.SAdd(ctx, "queues", q)
		for j := range 5 {
			pipe.LPush(ctx, "queue:"+q, `{"class":"X","jid":"j`+strconv.Itoa(j)+`","queue":"`+q+`","enqueued_at":1795654790000}`)
		}
	}
	for i := range procs {
		id := "host" + strconv.Itoa(i) + ":1:abc"
		pipe.SAdd(ctx, "processes", id)
		pipe.HSet(ctx, id, "info", `{"hostname":"h","pid":1,"concurrency":25,"queues":["q1"],"identity":"`+id+`"}`,
			"busy", "1", "beat", "1795654790.0", "quiet", "false", "rss", "1", "rtt_us", "1")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkReadVsSequential times Read (two pipelined round trips) beside
// the one-command-per-round-trip anchor over TLS to the test Redis, for the
// seed's shape (Mastodon's 7 queues, 4 processes) and a large cluster (200
// queues, 100 processes). It reports both and their ratio; it never fails on
// speed.
func BenchmarkReadVsSequential(b *testing.B) {
	for _, size := range []struct {
		name          string
		queues, procs int
	}{{"seed", 7, 4}, {"large", 200, 100}} {
		b.Run(size.name, func(b *testing.B) {
			w, r, _ := testDB(b)
			loadMany(b, w, size.queues, size.procs)
			ctx := ctx(b)
			const rounds = 100
			if _, err := Read(ctx, r, time.Time{}); err != nil { // warm the connection
				b.Fatal(err)
			}
			b.ResetTimer()
			var readT, seqT time.Duration
			for range b.N {
				t0 := time.Now()
				for range rounds {
					s, err := Read(ctx, r, time.Time{})
					if err != nil || len(s.Queues) != size.queues || len(s.Processes) != size.procs {
						b.Fatalf("Read: %v", err)
					}
				}
				readT += time.Since(t0)
				t0 = time.Now()
				for range rounds {
					q, p, err := readSequential(ctx, r)
					if err != nil || q != size.queues || p != size.procs {
						b.Fatalf("sequential: %v", err)
					}
				}
				seqT += time.Since(t0)
			}
			n := float64(b.N * rounds)
			b.ReportMetric(float64(readT.Microseconds())/n, "read_us")
			b.ReportMetric(float64(seqT.Microseconds())/n, "sequential_us")
			b.ReportMetric(float64(seqT)/float64(readT), "ratio")
		})
	}
}
