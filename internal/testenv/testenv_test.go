package testenv_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fediops/fediops/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestPostgresRequiresTLSAndVerifiesAgainstPrivateCA(t *testing.T) {
	pg := testenv.PG(t)
	ctx := context.Background()
	c, err := pgx.Connect(ctx, pg.URL())
	if err != nil {
		t.Fatalf("verify-full connect: %v", err)
	}
	defer c.Close(ctx)
	var ssl bool
	if err := c.QueryRow(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl); err != nil || !ssl {
		t.Fatalf("connection not over TLS: ssl=%v err=%v", ssl, err)
	}
	// As on DO, a plain-text login is refused.
	plain := strings.Replace(pg.URL(), "sslmode=verify-full", "sslmode=disable", 1)
	if c, err := pgx.Connect(ctx, plain); err == nil {
		c.Close(ctx)
		t.Fatal("plain-text connection accepted")
	}
	// And the system roots do not know the private CA.
	noCA := fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=verify-full", pg.User, pg.Password, pg.Addr(), pg.Database)
	if c, err := pgx.Connect(ctx, noCA); err == nil {
		c.Close(ctx)
		t.Fatal("certificate verified without the private CA")
	}
}

// TestPgBouncerBehavesLikeDOPool: through pgBouncer in transaction mode a
// default pgx pool (statement cache, named prepared statements) used
// concurrently fails with the error PREPARED_STATEMENTS=false avoids, while
// the simple protocol passes.
func TestPgBouncerBehavesLikeDOPool(t *testing.T) {
	b := testenv.Bouncer(t)
	ctx := context.Background()

	run := func(cfg *pgxpool.Config) (ok, failed int, firstErr error) {
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		var mu sync.Mutex
		var wg sync.WaitGroup
		for g := 0; g < 30; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for i := 0; i < 40; i++ {
					var n int
					// Different texts per goroutine: each is a new named statement.
					err := pool.QueryRow(ctx, fmt.Sprintf("SELECT $1::int + %d", i%7), g).Scan(&n)
					mu.Lock()
					if err != nil {
						failed++
						if firstErr == nil {
							firstErr = err
						}
					} else {
						ok++
					}
					mu.Unlock()
				}
			}(g)
		}
		wg.Wait()
		return
	}

	def, err := pgxpool.ParseConfig(b.URL())
	if err != nil {
		t.Fatal(err)
	}
	def.MaxConns = 30
	_, failed, firstErr := run(def)
	var pgErr *pgconn.PgError
	if failed == 0 || !errors.As(firstErr, &pgErr) || !strings.Contains(pgErr.Message, "prepared statement") {
		t.Fatalf("default pgx config through transaction pooling: %d failures, first %v; want prepared-statement errors", failed, firstErr)
	}
	t.Logf("default config: %d failures, e.g. %v", failed, firstErr)

	simple, _ := pgxpool.ParseConfig(b.URL())
	simple.MaxConns = 30
	simple.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	ok, failed, firstErr := run(simple)
	if failed != 0 || ok != 30*40 {
		t.Fatalf("simple protocol through the pool: %d ok, %d failed, first %v", ok, failed, firstErr)
	}
}

func TestPgBouncerAdminConsole(t *testing.T) {
	b := testenv.Bouncer(t)
	cfg, err := pgx.ParseConfig(b.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	c, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	rows, err := c.Query(context.Background(), "SHOW POOLS")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for rows.Next() {
		if vals, _ := rows.Values(); len(vals) > 0 && vals[0] == testenv.PoolName {
			found = true
		}
	}
	if !found {
		t.Fatalf("SHOW POOLS lists no %s", testenv.PoolName)
	}
}

func TestRedisIsTLSOnlyAndFailsOver(t *testing.T) {
	ctx := context.Background()
	a := testenv.RedisTLS(t)
	ca := a.Client()
	defer ca.Close()
	if err := ca.Set(ctx, "k", "v1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// Plain text gets no answer that a Redis client accepts.
	if conn, err := net.DialTimeout("tcp", a.Addr(), time.Second); err == nil {
		conn.SetDeadline(time.Now().Add(time.Second))
		fmt.Fprintf(conn, "PING\r\n")
		buf := make([]byte, 16)
		n, _ := conn.Read(buf)
		conn.Close()
		if strings.HasPrefix(string(buf[:n]), "+PONG") {
			t.Fatal("Redis answered plain text")
		}
	}
	// A wrong password is refused.
	bad := *a
	bad.Password = "wrong"
	cb := bad.Client()
	if err := cb.Ping(ctx).Err(); err == nil {
		t.Fatal("wrong password accepted")
	}
	cb.Close()

	b := testenv.NewRedis(t)
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := b.ReplicaOf(cctx, a); err != nil {
		t.Fatal(err)
	}
	cbc := b.Client()
	defer cbc.Close()
	if err := cbc.Set(ctx, "k", "v2", 0).Err(); err == nil || !strings.Contains(err.Error(), "READONLY") {
		t.Fatalf("write to replica: %v, want READONLY", err)
	}
	if err := b.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := cbc.Get(ctx, "k").Result(); err != nil || got != "v1" {
		t.Fatalf("promoted replica: %q %v", got, err)
	}
	if err := cbc.Set(ctx, "k", "v3", 0).Err(); err != nil {
		t.Fatal(err)
	}
}

func TestMariaDB(t *testing.T) {
	m := testenv.Maria(t)
	if err := m.Exec(context.Background(), "CREATE TABLE IF NOT EXISTS posts (id INT PRIMARY KEY); REPLACE INTO posts VALUES (1)"); err != nil {
		t.Fatal(err)
	}
}

// A failing Exec says what failed without the password (it was on the
// client's command line, which the error quotes).
func TestMariaDBExecErrorHasNoPassword(t *testing.T) {
	m := testenv.Maria(t)
	err := m.Exec(context.Background(), "SELECT * FROM no_such_table")
	if err == nil {
		t.Fatal("Exec of a query on a missing table: no error")
	}
	if !strings.Contains(err.Error(), "no_such_table") {
		t.Errorf("error does not say what failed: %v", err)
	}
	if strings.Contains(err.Error(), m.Password) {
		t.Errorf("error holds the password: %v", err)
	}
}

// TestListensOnlyOnLoopback reads the kernel's socket table: every server of
// the stack is bound to 127.0.0.1.
func TestListensOnlyOnLoopback(t *testing.T) {
	ports := map[int]string{
		testenv.PG(t).Port: "postgres", testenv.Bouncer(t).Port: "pgbouncer",
		testenv.RedisTLS(t).Port: "redis", testenv.Maria(t).Port: "mariadb",
	}
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 4 || f[3] != "0A" { // 0A = LISTEN
				continue
			}
			hostPort := strings.Split(f[1], ":")
			port, _ := strconv.ParseInt(hostPort[1], 16, 32)
			name, ours := ports[int(port)]
			if ours && hostPort[0] != "0100007F" {
				t.Errorf("%s listens on %s (%s), not 127.0.0.1", name, f[1], file)
			}
		}
	}
}

// TestCloseLeavesNothingRunning uses a stack of its own and checks that its
// server is gone after Close.
func TestCloseLeavesNothingRunning(t *testing.T) {
	if os.Getenv("FEDIOPS_TEST_REDIS_URL") != "" {
		t.Skip("external Redis configured")
	}
	s, err := testenv.NewStack("")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := s.Redis(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Dir); !os.IsNotExist(err) {
		t.Errorf("stack directory %s left behind", s.Dir)
	}
	d := net.Dialer{Timeout: time.Second}
	if c, err := tls.DialWithDialer(&d, "tcp", r.Addr(), r.TLSConfig()); err == nil {
		c.Close()
		t.Fatalf("Redis still answers on %s after Close", r.Addr())
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Logf("dial after close: %v", err)
	}
}

func TestMissingBinaryNamesTheAptLine(t *testing.T) {
	_, err := testenv.LookPath("pgbouncer-does-not-exist")
	if err == nil || !strings.Contains(err.Error(), "apt-get install -y") {
		t.Fatalf("err = %v", err)
	}
	old := os.Getenv("PATH")
	t.Setenv("PATH", "/nonexistent")
	_, err = testenv.LookPath("redis-server")
	os.Setenv("PATH", old)
	if err == nil || !strings.Contains(err.Error(), "apt-get install -y redis-server") {
		t.Fatalf("err = %v", err)
	}
}

// A malformed external server URL is reported under its own variable and
// without the URL, whose password url.Parse's error would quote.
func TestExternalURLErrorsHideThePassword(t *testing.T) {
	const secret = "s3cr%zzet"
	for _, tc := range []struct {
		env   string
		start func(*testenv.Stack, context.Context) error
	}{
		{"FEDIOPS_TEST_POSTGRES_URL", func(s *testenv.Stack, ctx context.Context) error { _, err := s.Postgres(ctx); return err }},
		{"FEDIOPS_TEST_PGBOUNCER_URL", func(s *testenv.Stack, ctx context.Context) error { _, err := s.PgBouncer(ctx); return err }},
		{"FEDIOPS_TEST_REDIS_URL", func(s *testenv.Stack, ctx context.Context) error { _, err := s.Redis(ctx); return err }},
	} {
		t.Run(tc.env, func(t *testing.T) {
			t.Setenv(tc.env, "postgres://u:"+secret+"@db.example.com:25061/pool")
			s, err := testenv.NewStack("")
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(false)
			err = tc.start(s, context.Background())
			if err == nil {
				t.Fatal("no error for a URL with a bad escape")
			}
			msg := err.Error()
			if strings.Contains(msg, "s3cr") {
				t.Errorf("error holds the password: %v", err)
			}
			if !strings.Contains(msg, tc.env) || strings.Count(msg, "FEDIOPS_TEST_") != 1 {
				t.Errorf("error does not name %s (only): %v", tc.env, err)
			}
		})
	}
}
