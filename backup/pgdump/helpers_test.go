package pgdump_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/internal/backuptest"
	"github.com/fediops/fediops/backup/pgdump"
	"github.com/fediops/fediops/internal/testenv"
	"github.com/fediops/fediops/pgpool"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var (
	quiet = backuptest.Quiet
	ctxT  = backuptest.Context
)

// pgSettings are Mastodon's settings for database db of pg, as the admin
// user, direct (not pooled), with the private CA.
func pgSettings(pg *testenv.Postgres, db string) map[string]string {
	return map[string]string{"DB_HOST": pg.Host, "DB_PORT": strconv.Itoa(pg.Port), "DB_NAME": db,
		"DB_USER": pg.AdminUser, "DB_PASS": pg.AdminPassword, "DB_SSLMODE": "require", pgpool.EnvCAFile: pg.CAFile}
}

// pgSource is the Source for db, read from settings the way a program
// reads .env.production.
func pgSource(t testing.TB, pg *testenv.Postgres, db string) *pgdump.Source {
	t.Helper()
	s, err := pgdump.SourceFromEnv(fediops.MapLookup(pgSettings(pg, db)), pgpool.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if s.Conn.SSLMode != pgpool.TLSVerifyFull || s.Conn.SSLRootCert != pg.CAFile {
		t.Fatalf("connection %s, CA %q: want verify-full with the private CA", s.Conn, s.Conn.SSLRootCert)
	}
	return s
}

// seedPG creates a fresh database with a canary row, about mb megabytes
// of random words (compressible like posts) and randomMB megabytes of
// random hex (which zstd's fastest level stores nearly as is, so that a
// test's object is large enough for several B2 parts), and returns its name.
func seedPG(t *testing.T, pg *testenv.Postgres, name, canary string, mb, randomMB int) string {
	t.Helper()
	ctx := ctxT(t)
	c, err := pgx.Connect(ctx, pg.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	u := strings.Replace(pg.AdminURL(), "/"+pg.Database+"?", "/"+name+"?", 1)
	d, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(ctx)
	rows := mb * 1000 // ~1 KB per row
	for _, q := range []string{
		"CREATE TABLE accounts (id bigserial PRIMARY KEY, username text NOT NULL, note text)",
		"CREATE TABLE statuses (id bigserial PRIMARY KEY, account_id bigint, text text NOT NULL)",
		"CREATE TABLE settings (var text PRIMARY KEY, value text)",
		"CREATE TABLE media_blobs (id bigserial PRIMARY KEY, hex text)",
		fmt.Sprintf(`INSERT INTO media_blobs (hex) SELECT string_agg(md5(random()::text), '')
			FROM generate_series(1, %d) g, generate_series(1, 32) h GROUP BY g`, randomMB*1000),
		fmt.Sprintf("INSERT INTO settings VALUES ('otp_secret', '%s')", canary),
		"INSERT INTO accounts (username, note) SELECT 'user' || g, md5(g::text) FROM generate_series(1, 500) g",
		fmt.Sprintf(`INSERT INTO statuses (account_id, text) SELECT g %% 500, string_agg(%s, ' ')
			FROM generate_series(1, %d) g, generate_series(1, 150) h GROUP BY g`, RandomWordSQL, rows),
	} {
		if _, err := d.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), pg.AdminURL())
		if err == nil {
			c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(context.Background())
		}
	})
	return name
}

// RandomWordSQL picks one of 128 words at random: rows of such words are
// "random text" that compresses about as well as real posts do.
var RandomWordSQL = func() string {
	words := strings.Fields(`the a fediverse toot boost follow instance server admin moderation timeline
	federation post reply mention hashtag media image video link preview account profile block mute report
	queue sidekiq redis postgres backup restore encrypt compress stream upload bucket object storage
	retention policy notification slack webhook cron timer systemd droplet snapshot tier puma streaming
	node ruby rails database pool connection transaction replica primary failover tunnel certificate
	authority verify trust key secret password token session cookie cache cdn alias host domain name
	record address port socket latency throughput memory disk network packet request response error retry
	backoff deadline context cancel signal process thread goroutine channel buffer pipe reader writer
	closer seeker flusher logger metric counter gauge histogram summary label value sample window chunk part`)
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = "'" + w + "'"
	}
	return fmt.Sprintf("(ARRAY[%s])[1+floor(random()*%d)::int]", strings.Join(quoted, ","), len(words))
}()

// slowReader throttles a store so that a dump tool blocks mid-stream.
type slowStore struct {
	backup.Store
	delay time.Duration
}

func (s slowStore) Put(ctx context.Context, name string, r io.Reader) (backup.ObjectInfo, error) {
	return s.Store.Put(ctx, name, &slowReader{r: r, delay: s.delay})
}

type slowReader struct {
	r     io.Reader
	delay time.Duration
}

func (s *slowReader) Read(p []byte) (int, error) {
	time.Sleep(s.delay)
	return s.r.Read(p[:min(len(p), 64<<10)])
}

// killChild finds a child process of this test whose command line contains
// name and kills it with SIGKILL; it gives up after timeout.
func killChild(name string, timeout time.Duration, ready func() bool) (int, string, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		dirs, _ := filepath.Glob("/proc/[0-9]*")
		for _, d := range dirs {
			stat, err := os.ReadFile(d + "/stat")
			if err != nil {
				continue
			}
			// pid (comm) state ppid ...
			rest := string(stat[bytes.LastIndexByte(stat, ')')+2:])
			var state string
			var ppid int
			fmt.Sscanf(rest, "%s %d", &state, &ppid)
			cmdline, _ := os.ReadFile(d + "/cmdline")
			if ppid == os.Getpid() && bytes.Contains(cmdline, []byte(name)) {
				if !ready() {
					continue // let it stream for a while first
				}
				var pid int
				fmt.Sscanf(filepath.Base(d), "%d", &pid)
				return pid, string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})), syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0, "", fmt.Errorf("no child process %q appeared", name)
}
