package devstack

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/pgpool"
	"github.com/fediops/fediops/spaces"
)

// SeedConfig says how much Seed writes. Zero values mean the defaults.
type SeedConfig struct {
	Accounts     int // 0 = 1000
	Statuses     int // 0 = 4000
	Attachments  int // media_attachments rows; 0 = 2000
	MediaObjects int // objects put into the Space; 0 = 300
	Jobs         int // Sidekiq jobs over the queues; 0 = 120
	Posts        int // WriteFreely posts, when MariaDB runs; 0 = 500
}

func (c *SeedConfig) defaults() {
	def := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&c.Accounts, 1000)
	def(&c.Statuses, 4000)
	def(&c.Attachments, 2000)
	def(&c.MediaObjects, 300)
	def(&c.Jobs, 120)
	def(&c.Posts, 500)
}

// Seed fills the stack the way a small Mastodon would, through the
// settings of .env.production (as every tool reads them), in parallel:
//
//   - PostgreSQL, over the direct connection as the application user (a
//     schema change bypasses the pool, as a Mastodon migration must):
//     accounts, statuses and media_attachments;
//   - the Space, through spaces.Client: PNG-headed objects under paperclip's
//     keys (Stack.MediaKeys);
//   - Sidekiq's Redis, through the tunnel: the seed's two worker processes
//     (Scotty on Sidekiq 7.3, Decker on 8.1 with the scheduler), jobs in
//     both timestamp formats, retry and schedule sets, totals;
//   - MariaDB, when it runs: a WriteFreely-like posts table.
//
// It replaces what an earlier Seed wrote and returns one line of numbers.
func (s *Stack) Seed(ctx context.Context, cfg SeedConfig) (string, error) {
	cfg.defaults()
	env, err := fediops.ReadEnv(s.EnvFile, fediops.WithEnviron(nil))
	if err != nil {
		return "", fmt.Errorf("seed: %w", err)
	}
	var pgNums, mediaNums, sqNums, myNums string
	var keys []string
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { pgNums, err = seedPostgres(gctx, env, cfg); return err })
	g.Go(func() (err error) { keys, mediaNums, err = seedMedia(gctx, env, cfg.MediaObjects); return err })
	g.Go(func() (err error) { sqNums, err = s.seedSidekiq(gctx, env, cfg.Jobs); return err })
	if s.maria != nil {
		g.Go(func() error {
			n := cfg.Posts
			q := "DROP TABLE IF EXISTS posts; CREATE TABLE posts (id varchar(16) PRIMARY KEY, title text, content mediumtext, created datetime);" +
				"INSERT INTO posts SELECT LPAD(HEX(seq), 16, '0'), CONCAT('Post ', seq), REPEAT(CONCAT('word', seq % 97, ' '), 60), NOW() - INTERVAL seq HOUR FROM seq_1_to_" + strconv.Itoa(n) + ";"
			if err := s.maria.Exec(gctx, q); err != nil {
				return fmt.Errorf("seed mysql: %w", err)
			}
			myNums = fmt.Sprintf("%d WriteFreely posts", n)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return "", err
	}
	s.MediaKeys = keys
	if err := s.writeShellFile(); err != nil {
		return "", err
	}
	nums := []string{pgNums, mediaNums, sqNums}
	if myNums != "" {
		nums = append(nums, myNums)
	}
	return strings.Join(nums, "; "), nil
}

// seedPostgres creates accounts, statuses and media_attachments over the
// direct connection.
func seedPostgres(ctx context.Context, env *fediops.Env, cfg SeedConfig) (string, error) {
	db, err := pgpool.ConfigFromEnv(env.Lookup, pgpool.Options{})
	if err != nil {
		return "", err
	}
	if db.Direct == nil {
		return "", fmt.Errorf("seed postgres: no direct connection: %w", db.DirectErr)
	}
	pool, err := pgpool.Open(ctx, db.Direct)
	if err != nil {
		return "", err
	}
	defer pool.Close()
	a, st, m := cfg.Accounts, cfg.Statuses, cfg.Attachments
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
			FROM generate_series(1, %d) g`, a, st),
		fmt.Sprintf(`INSERT INTO media_attachments (status_id, account_id, file_file_name, file_content_type, file_file_size)
			SELECT s.id, s.account_id, 'image' || g || '.png', 'image/png', 512 + (g * 37) %% 4096
			FROM generate_series(1, %d) g JOIN statuses s ON s.id = 1 + (g * 31) %% %d`, m, st),
		`ANALYZE accounts, statuses, media_attachments`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			return "", fmt.Errorf("seed postgres: %s: %w", firstLine(q), err)
		}
	}
	return fmt.Sprintf("%d accounts, %d statuses, %d media_attachments", a, st, m), nil
}

// MediaKey is where paperclip keeps attachment id's original, with the id
// split into 3-digit folders.
func MediaKey(id int) string {
	d := fmt.Sprintf("%09d", id)
	return fmt.Sprintf("media_attachments/files/%s/%s/%s/original/image%d.png", d[0:3], d[3:6], d[6:9], id)
}

// seedMedia puts n small PNG-headed objects through the Spaces client, 8
// at a time.
func seedMedia(ctx context.Context, env *fediops.Env, n int) ([]string, string, error) {
	scfg, err := spaces.ConfigFromEnv(env.Lookup)
	if err != nil {
		return nil, "", err
	}
	media, err := spaces.New(scfg)
	if err != nil {
		return nil, "", err
	}
	keys := make([]string, n)
	var total int64
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := range n {
		keys[i] = MediaKey(i + 1)
		g.Go(func() error {
			body := make([]byte, 512+mrand.IntN(3584))
			copy(body, "\x89PNG\r\n\x1a\n")
			_, _ = rand.Read(body[8:])
			if _, err := media.Put(gctx, keys[i], bytes.NewReader(body), &spaces.PutOptions{ContentType: "image/png"}); err != nil {
				return fmt.Errorf("seed media: %w", err)
			}
			mu.Lock()
			total += int64(len(body))
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, "", err
	}
	return keys, fmt.Sprintf("%d media objects (%d KiB)", n, total>>10), nil
}
