package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/fediops/fediops/pgpool"
	"github.com/fediops/fediops/sidekiqq"
	"github.com/fediops/fediops/spaces"
)

func redisClient(o *redis.Options) *redis.Client { return redis.NewClient(o) }

// seed fills the stack in parallel: the schema over the direct connection,
// media through spaces.Client.Put, Sidekiq's data through the tunnel and,
// when MariaDB is up, a WriteFreely-like table.
func (r *run) seed(ctx context.Context) (string, error) {
	var pgNums, mediaNums, sqNums, myNums string
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { pgNums, err = r.seedPostgres(gctx); return err })
	g.Go(func() (err error) { mediaNums, err = r.seedMedia(gctx); return err })
	g.Go(func() (err error) { sqNums, err = r.seedSidekiq(gctx); return err })
	if r.maria != nil {
		g.Go(func() (err error) { myNums, err = r.seedMySQL(gctx); return err })
	}
	if err := g.Wait(); err != nil {
		return "", err
	}
	nums := []string{pgNums, mediaNums, sqNums}
	if myNums != "" {
		nums = append(nums, myNums)
	}
	return strings.Join(nums, "; "), nil
}

// seedPostgres creates accounts, statuses and media_attachments as the
// application user over the direct connection (schema changes bypass the
// pool, as a Mastodon migration must).
func (r *run) seedPostgres(ctx context.Context) (string, error) {
	pool, err := pgpool.Open(ctx, r.db.Direct)
	if err != nil {
		return "", err
	}
	defer pool.Close()
	a, s, m := r.cfg.Accounts, r.cfg.Statuses, r.cfg.Attachments
	for _, q := range []string{
		`DROP TABLE IF EXISTS media_attachments, statuses, accounts`,
		`CREATE TABLE accounts (id bigserial PRIMARY KEY, username text NOT NULL, domain text,
			display_name text NOT NULL DEFAULT '', created_at timestamptz NOT NULL DEFAULT now())`,
		`CREATE TABLE statuses (id bigserial PRIMARY KEY, account_id bigint NOT NULL REFERENCES accounts,
			text text NOT NULL, visibility integer NOT NULL DEFAULT 0, created_at timestamptz NOT NULL)`,
		`CREATE INDEX index_statuses_on_account_id_id ON statuses (account_id, id DESC)`,
		`CREATE TABLE media_attachments (id bigserial PRIMARY KEY, status_id bigint REFERENCES statuses,
			account_id bigint NOT NULL REFERENCES accounts, file_file_name text, file_content_type text,
			file_file_size integer, created_at timestamptz NOT NULL DEFAULT now())`,
		fmt.Sprintf(`INSERT INTO accounts (username, domain, display_name)
			SELECT 'user' || g, CASE WHEN g %% 3 = 0 THEN NULL ELSE 'remote' || (g %% 50) || '.example' END, 'User ' || g
			FROM generate_series(1, %d) g`, a),
		fmt.Sprintf(`INSERT INTO statuses (account_id, text, visibility, created_at)
			SELECT 1 + (g * 7919) %% %d, 'toot ' || g || ': ' || md5(g::text) || ' #fediops', g %% 4, now() - make_interval(mins => g)
			FROM generate_series(1, %d) g`, a, s),
		fmt.Sprintf(`INSERT INTO media_attachments (status_id, account_id, file_file_name, file_content_type, file_file_size)
			SELECT st.id, st.account_id, 'image' || g || '.png', 'image/png', 512 + (g * 37) %% 4096
			FROM generate_series(1, %d) g JOIN statuses st ON st.id = 1 + (g * 31) %% %d`, m, s),
		`ANALYZE accounts, statuses, media_attachments`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			return "", fmt.Errorf("postgres seed: %s: %w", firstLine(q), err)
		}
	}
	return fmt.Sprintf("%d accounts, %d statuses, %d media_attachments", a, s, m), nil
}

// mediaKey is where paperclip keeps an attachment's original, with the id
// split into 3-digit folders.
func mediaKey(id int) string {
	d := fmt.Sprintf("%09d", id)
	return fmt.Sprintf("media_attachments/files/%s/%s/%s/original/image%d.png", d[0:3], d[3:6], d[6:9], id)
}

// seedMedia puts small PNG-headed objects through the Spaces client, 8 at
// a time.
func (r *run) seedMedia(ctx context.Context) (string, error) {
	n := r.cfg.MediaObjects
	keys := make([]string, n)
	var total int64
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := range n {
		keys[i] = mediaKey(i + 1)
		g.Go(func() error {
			body := make([]byte, 512+mrand.IntN(3584))
			copy(body, "\x89PNG\r\n\x1a\n")
			_, _ = rand.Read(body[8:])
			if _, err := r.media.Put(gctx, keys[i], bytes.NewReader(body), &spaces.PutOptions{ContentType: "image/png"}); err != nil {
				return err
			}
			mu.Lock()
			total += int64(len(body))
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return "", err
	}
	r.keys = keys
	return fmt.Sprintf("%d media objects (%d KiB)", n, total>>10), nil
}

// seedSidekiq writes what two Sidekiq nodes would: the seed's layout
// (Scotty on Sidekiq 7.3, Decker on 8.1 with scheduler), their process
// hashes, jobs in both timestamp formats, retry and schedule sets, totals.
func (r *run) seedSidekiq(ctx context.Context) (string, error) {
	c := r.sq
	if err := c.FlushDB(ctx).Err(); err != nil {
		return "", fmt.Errorf("sidekiq seed: %w", err)
	}
	now := time.Now()
	layout := sidekiqq.SeedLayout()
	pipe := c.TxPipeline()
	for i, p := range layout.Processes {
		host := strings.ToLower(p.Node)
		pid := 4000 + i*17
		id := fmt.Sprintf("%s:%d:%s", host, pid, strings.ToLower(randHex(6)))
		names, weights := []string{}, map[string]int{}
		for _, q := range p.Queues {
			names = append(names, q.Name)
			weights[q.Name] = q.Weight
		}
		info := map[string]any{"hostname": host, "started_at": float64(now.Add(-time.Hour).UnixMicro()) / 1e6,
			"pid": pid, "tag": "mastodon", "queues": names, "weights": []map[string]int{weights},
			"labels": []string{}, "identity": id, "embedded": false}
		fields := map[string]any{"busy": i + 1, "beat": fmt.Sprintf("%.6f", float64(now.UnixMicro())/1e6),
			"quiet": "false", "rss": 480000 + i*1000, "rtt_us": 150}
		if i == 0 { // Sidekiq 7.3 (Mastodon 4.4): concurrency in info
			info["version"], info["concurrency"] = "7.3.9", p.Threads
		} else { // Sidekiq 8.1 (Mastodon 4.6): capsules and the hash field
			info["version"] = "8.1.2"
			info["capsules"] = map[string]any{"default": map[string]any{"concurrency": p.Threads, "mode": "weighted", "weights": weights}}
			fields["concurrency"] = p.Threads
		}
		js, err := json.Marshal(info)
		if err != nil {
			return "", err
		}
		fields["info"] = string(js)
		pipe.SAdd(ctx, "processes", id)
		pipe.HSet(ctx, id, fields)
		pipe.Expire(ctx, id, time.Minute)
	}
	classes := map[string]string{
		sidekiqq.QueueDefault: "LinkCrawlWorker", sidekiqq.QueuePush: "ActivityPub::DeliveryWorker",
		sidekiqq.QueueIngress: "ActivityPub::ProcessingWorker", sidekiqq.QueueMailers: "ActionMailer::MailDeliveryJob",
		sidekiqq.QueuePull: "ActivityPub::FetchRepliesWorker", sidekiqq.QueueScheduler: "Scheduler::AccountsStatusesCleanupScheduler",
	}
	queues := []string{"default", "default", "default", "push", "push", "ingress", "mailers", "pull"}
	job := func(q string, n int, at time.Time, ms bool) string {
		ts := any(float64(at.UnixMicro()) / 1e6)
		if ms {
			ts = at.UnixMilli()
		}
		js, _ := json.Marshal(map[string]any{"retry": true, "queue": q, "class": classes[q], "args": []int{n},
			"jid": strings.ToLower(randHex(12)), "created_at": ts, "enqueued_at": ts})
		return string(js)
	}
	for _, q := range []string{"default", "push", "ingress", "mailers", "pull", "scheduler"} {
		pipe.SAdd(ctx, "queues", q)
	}
	for n := range r.cfg.Jobs {
		q := queues[n%len(queues)]
		// oldest first, a few seconds old; pull holds 7.x jobs left from before an upgrade
		at := now.Add(-time.Duration(r.cfg.Jobs-n) * 50 * time.Millisecond)
		pipe.LPush(ctx, "queue:"+q, job(q, n, at, q != "pull"))
	}
	retry, _ := json.Marshal(map[string]any{"retry": true, "queue": "push", "class": classes["push"], "args": []int{7},
		"jid": strings.ToLower(randHex(12)), "created_at": now.Add(-time.Hour).UnixMilli(), "enqueued_at": now.Add(-time.Hour).UnixMilli(),
		"error_message": "Net::ReadTimeout", "error_class": "HTTP::TimeoutError", "failed_at": now.Add(-time.Hour).UnixMilli(), "retry_count": 2})
	pipe.ZAdd(ctx, "retry", redis.Z{Score: float64(now.Add(10 * time.Minute).Unix()), Member: string(retry)})
	pipe.ZAdd(ctx, "schedule", redis.Z{Score: float64(now.Add(time.Hour).Unix()), Member: job("default", 0, now, true)})
	pipe.Set(ctx, "stat:processed", 1234567, 0)
	pipe.Set(ctx, "stat:failed", 321, 0)
	pipe.Set(ctx, "stat:processed:"+now.UTC().Format(time.DateOnly), 4321, 0)
	if _, err := pipe.Exec(ctx); err != nil {
		return "", fmt.Errorf("sidekiq seed: %w", err)
	}
	return fmt.Sprintf("%d Sidekiq jobs, %d processes (scotty 7.3, decker 8.1 + scheduler)", r.cfg.Jobs, len(layout.Processes)), nil
}

// seedMySQL makes a WriteFreely-like posts table.
func (r *run) seedMySQL(ctx context.Context) (string, error) {
	n := 500
	q := "DROP TABLE IF EXISTS posts; CREATE TABLE posts (id varchar(16) PRIMARY KEY, title text, content mediumtext, created datetime);" +
		"INSERT INTO posts SELECT LPAD(HEX(seq), 16, '0'), CONCAT('Post ', seq), REPEAT(CONCAT('word', seq % 97, ' '), 60), NOW() - INTERVAL seq HOUR FROM seq_1_to_" + strconv.Itoa(n) + ";"
	if err := r.maria.Exec(ctx, q); err != nil {
		return "", fmt.Errorf("mysql seed: %w", err)
	}
	return fmt.Sprintf("%d WriteFreely posts", n), nil
}
