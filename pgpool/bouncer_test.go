package pgpool_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/internal/testenv"
	"github.com/fediops/fediops/pgpool"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// bouncerEnv is the seed's .env.production pointed at testenv's pgBouncer.
// Its port is not 25061, so FEDIOPS_DB_POOLED and FEDIOPS_DB_DIRECT_PORT
// say what DO's convention would.
func bouncerEnv(b *testenv.PgBouncer) map[string]string {
	return map[string]string{
		"DB_HOST": b.Host, "DB_PORT": strconv.Itoa(b.Port), "DB_NAME": b.Database,
		"DB_USER": b.User, "DB_PASS": b.Password, "DB_SSLMODE": "require",
		"PREPARED_STATEMENTS": "false", "NODE_EXTRA_CA_CERTS": b.CAFile,
		pgpool.EnvPooled: "true", pgpool.EnvDirectName: b.Backend.Database,
		pgpool.EnvDirectPort: strconv.Itoa(b.Backend.Port),
	}
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// workload runs goroutines × perG iterations through pool: parameterised
// single queries and multi-statement transactions. It returns the errors
// (at most 20 kept) and their count.
func workload(ctx context.Context, pool *pgxpool.Pool, goroutines, perG int) (int64, []error) {
	var n atomic.Int64
	var mu sync.Mutex
	var kept []error
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perG {
				if err := oneOp(ctx, pool, g, i); err != nil {
					n.Add(1)
					mu.Lock()
					if len(kept) < 20 {
						kept = append(kept, err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return n.Load(), kept
}

func oneOp(ctx context.Context, pool *pgxpool.Pool, g, i int) error {
	id := g*1000 + i
	switch i % 4 {
	case 0: // a transaction of four statements
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "INSERT INTO pgpool_t (id, g, note) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET note = EXCLUDED.note", id, g, fmt.Sprintf("n%d", i)); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = '5s'"); err != nil {
				return err
			}
			var got string
			if err := tx.QueryRow(ctx, "SELECT note FROM pgpool_t WHERE id = $1", id).Scan(&got); err != nil {
				return err
			}
			if got != fmt.Sprintf("n%d", i) {
				return fmt.Errorf("read %q back", got)
			}
			_, err := tx.Exec(ctx, "UPDATE pgpool_t SET note = note || $2 WHERE id = $1", id, "!")
			return err
		})
	case 1:
		var c int
		return pool.QueryRow(ctx, "SELECT count(*) FROM pgpool_t WHERE g = $1 AND id <= $2", g, id).Scan(&c)
	default:
		var sum int64
		var s string
		if err := pool.QueryRow(ctx, "SELECT $1::int8 + $2::int8, $3::text", int64(g), int64(i), "x").Scan(&sum, &s); err != nil {
			return err
		}
		if sum != int64(g+i) || s != "x" {
			return fmt.Errorf("got %d %q", sum, s)
		}
		return nil
	}
}

func TestPooledThroughPgBouncer(t *testing.T) {
	b := testenv.Bouncer(t)
	ctx := ctxT(t, 90*time.Second)
	var logs bytes.Buffer
	cfg, err := pgpool.ConfigFromEnv(fediops.MapLookup(bouncerEnv(b)), pgpool.Options{MaxConns: 50,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLS != pgpool.TLSVerifyFull || cfg.CASource != "NODE_EXTRA_CA_CERTS" {
		t.Fatalf("TLS %s from %q, want verify-full from NODE_EXTRA_CA_CERTS", cfg.TLS, cfg.CASource)
	}

	direct, err := pgpool.Open(ctx, cfg.Direct)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	if _, err := direct.Exec(ctx, "DROP TABLE IF EXISTS pgpool_t; CREATE TABLE pgpool_t (id int PRIMARY KEY, g int, note text)"); err != nil {
		t.Fatal(err)
	}
	var port int
	if err := direct.QueryRow(ctx, "SELECT inet_server_port()").Scan(&port); err != nil || port != b.Backend.Port {
		t.Fatalf("direct config reached port %d (%v), want PostgreSQL's %d", port, err, b.Backend.Port)
	}

	pooled, err := pgpool.Open(ctx, cfg.Pooled)
	if err != nil {
		t.Fatal(err)
	}
	defer pooled.Close()
	start := time.Now()
	n, errs := workload(ctx, pooled, 50, 200)
	if n != 0 {
		t.Fatalf("%d of 10000 operations failed through the pooled config; first: %v", n, errs)
	}
	t.Logf("pooled config: 50 goroutines × 200 operations, 0 errors, %v", time.Since(start).Round(time.Millisecond))
	if strings.Contains(logs.String(), "session state") {
		t.Fatalf("the workload (SET LOCAL inside transactions) was flagged: %s", logs.String())
	}
	// A SET outside a transaction is flagged by the SessionGuard.
	if _, err := pooled.Exec(ctx, "SET statement_timeout = '7s'"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "session state outside a transaction") || !strings.Contains(logs.String(), "statement=SET") {
		t.Fatalf("SET outside a transaction not flagged: %q", logs.String())
	}
	var rows int
	if err := direct.QueryRow(ctx, "SELECT count(*) FROM pgpool_t WHERE note LIKE '%!'").Scan(&rows); err != nil || rows != 50*50 {
		t.Fatalf("%d committed transactions (%v), want 2500", rows, err)
	}

	// The same workload through pgx's defaults (cached named prepared
	// statements) breaks on a transaction pool: the test can fail.
	def, err := pgxpool.ParseConfig(b.URL())
	if err != nil {
		t.Fatal(err)
	}
	def.MaxConns = 50
	dp, err := pgxpool.NewWithConfig(ctx, def)
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	n, errs = workload(ctx, dp, 50, 200)
	if n == 0 {
		t.Fatal("pgx's default config ran without errors through pgBouncer in transaction mode; expected prepared-statement failures")
	}
	prepared := 0
	for _, e := range errs {
		if strings.Contains(e.Error(), "prepared statement") {
			prepared++
		}
	}
	if prepared == 0 {
		t.Fatalf("default config: %d errors, none about prepared statements: %v", n, errs)
	}
	t.Logf("default pgx config: %d of 10000 operations failed, e.g. %v", n, errs[0])

	// Health: a ping through the pool and pgBouncer's own counters.
	admin, err := cfg.AdminConfig(b.AdminUser, b.AdminPassword)
	if err != nil {
		t.Fatal(err)
	}
	h, err := pgpool.Check(ctx, pooled, admin)
	if err != nil || h.AdminErr != nil {
		t.Fatalf("check: %v, admin: %v", err, h.AdminErr)
	}
	var found bool
	for _, p := range h.Pools {
		if p.Database == b.Database && p.Mode == "transaction" {
			found = true
		}
	}
	var xacts int64
	for _, s := range h.Stats {
		if s.Database == b.Database {
			xacts = s.Transactions
		}
	}
	if !found || xacts < 10000 {
		t.Fatalf("SHOW POOLS has our pool in transaction mode: %v; SHOW STATS transactions %d, want >= 10000", found, xacts)
	}
	t.Logf("health: ping %v, pgBouncer counted %d transactions", h.Ping, xacts)

	// A wrong admin password is reported, not fatal.
	bad, _ := cfg.AdminConfig(b.AdminUser, "wrong-"+b.AdminPassword)
	if h, err := pgpool.Check(ctx, pooled, bad); err != nil || h.AdminErr == nil {
		t.Fatalf("check with a bad console password: err %v, AdminErr %v", err, h.AdminErr)
	}

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(pgpool.NewCollector(pooled, "mastodon"))
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 8 {
		t.Fatalf("collector: %d metrics, %v", n, err)
	}
	if strings.Contains(logs.String(), b.Password) {
		t.Fatal("the password is in the log")
	}
}

func TestTLSAgainstRealServer(t *testing.T) {
	b := testenv.Bouncer(t)
	ctx := ctxT(t, 60*time.Second)

	// require without a CA: works, with a warning, and no password logged.
	env := bouncerEnv(b)
	delete(env, "NODE_EXTRA_CA_CERTS")
	var logs bytes.Buffer
	cfg, err := pgpool.ConfigFromEnv(fediops.MapLookup(env), pgpool.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLS != pgpool.TLSRequire || !strings.Contains(logs.String(), "without verifying the host") {
		t.Fatalf("TLS %s, log %q", cfg.TLS, logs.String())
	}
	if strings.Contains(logs.String(), b.Password) {
		t.Fatal("password in the log")
	}
	p, err := pgpool.Open(ctx, cfg.Pooled)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Ping(ctx); err != nil {
		t.Fatalf("require mode: %v", err)
	}
	p.Close()

	// verify-full against a CA that did not sign the server: refused.
	env["NODE_EXTRA_CA_CERTS"] = testenv.Shared(t).RedisCA.File
	cfg, err = pgpool.ConfigFromEnv(fediops.MapLookup(env), pgpool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err = pgpool.Open(ctx, cfg.Pooled)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	err = p.Ping(ctx)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("verify-full with the wrong CA: %v, want a certificate error", err)
	}
	if strings.Contains(err.Error(), b.Password) {
		t.Fatal("password in the error")
	}

	// A wrong password: the error does not echo it.
	env = bouncerEnv(b)
	env["DB_PASS"] = "Wr0ng$ecret-" + b.Password
	cfg, err = pgpool.ConfigFromEnv(fediops.MapLookup(env), pgpool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := pgpool.Open(ctx, cfg.Pooled)
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if _, err = pgpool.Check(ctx, p2, nil); err == nil || strings.Contains(err.Error(), env["DB_PASS"]) {
		t.Fatalf("wrong password: %v", err)
	}
}

func TestProbePreparedStatements(t *testing.T) {
	b := testenv.Bouncer(t)
	ctx := ctxT(t, 60*time.Second)
	cfg, err := pgpool.ConfigFromEnv(fediops.MapLookup(bouncerEnv(b)), pgpool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// pgBouncer 1.18 keeps no prepared statements across transactions.
	p, err := pgpool.ProbePreparedStatements(ctx, cfg.Pooled.ConnConfig, 0)
	if err != nil {
		t.Fatal(err)
	}
	if p.Supported || !strings.Contains(p.Detail, "does not exist") {
		t.Fatalf("pgBouncer 1.18: %+v, want unsupported with `prepared statement ... does not exist`", p)
	}
	t.Logf("probe through pgBouncer 1.18: %+v", p)
	// Straight to PostgreSQL every transaction is on one server: the probe
	// says it cannot tell rather than guessing.
	_, err = pgpool.ProbePreparedStatements(ctx, cfg.Direct.ConnConfig, 2)
	if !errors.Is(err, pgpool.ErrInconclusive) {
		t.Fatalf("direct: %v, want ErrInconclusive", err)
	}
}
