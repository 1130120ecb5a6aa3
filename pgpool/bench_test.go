package pgpool_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fediops/fediops/internal/testenv"
	"github.com/fediops/fediops/pgpool"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// BenchmarkSelectOnlyVsPgbench runs, in one run and through testenv's
// pgBouncer in transaction mode, pgbench's select-only script (-S -M
// extended, 50 clients) and the same query from 50 goroutines through
// pgpool's pooled config (QueryExecModeExec), then both again with the
// simple protocol for comparison, and reports the rates and pgx/pgbench. It never fails on
// speed. Run it with
//
//	go test -run '^$' -bench SelectOnlyVsPgbench -benchtime 1x ./pgpool/
//
// FEDIOPS_BENCH_SECONDS sets each run's length (default 5 s) and
// FEDIOPS_BENCH_ROUNDS the number of rounds (default 2).
func BenchmarkSelectOnlyVsPgbench(b *testing.B) {
	bo := testenv.Bouncer(b)
	pgbench := testenv.Binary(b, "pgbench")
	secs := 5
	if v, err := strconv.Atoi(os.Getenv("FEDIOPS_BENCH_SECONDS")); err == nil && v > 0 {
		secs = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(4*secs+120)*time.Second)
	defer cancel()

	env := append(os.Environ(), "PGPASSWORD="+bo.Password, "PGSSLMODE=verify-full", "PGSSLROOTCERT="+bo.CAFile)
	run := func(args ...string) (string, time.Duration) {
		cmd := exec.CommandContext(ctx, pgbench, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("pgbench %v: %v\n%s", args, err, out)
		}
		return string(out), cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	// Tables straight on PostgreSQL as the application user (scale 1:
	// 100,000 accounts); the runs go through the pool.
	pg := bo.Backend
	_, _ = run("-i", "-q", "-s", "1", "-h", pg.Host, "-p", strconv.Itoa(pg.Port), "-U", pg.User, pg.Database)

	cfg, err := pgpool.FromEnv(pgpool.Map(bouncerEnv(bo)), pgpool.Options{MaxConns: 50})
	if err != nil {
		b.Fatal(err)
	}
	simple := cfg.Pooled.Copy()
	simple.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	tpsRE := regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)
	txRE := regexp.MustCompile(`number of transactions actually processed: (\d+)`)

	// The box is shared: alternate the three in rounds so that a change of
	// load hits all of them, and compare the means.
	rounds := 2
	if v, err := strconv.Atoi(os.Getenv("FEDIOPS_BENCH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	var benchTPS, benchSimpleTPS, execTPS, simpleTPS float64
	pgbenchTPS := func(mode string) (float64, float64) {
		out, cpu := run("-S", "-M", mode, "-n", "-c", "50", "-j", "2", "-T", strconv.Itoa(secs),
			"-h", bo.Host, "-p", strconv.Itoa(bo.Port), "-U", bo.User, bo.Database)
		m, n := tpsRE.FindStringSubmatch(out), txRE.FindStringSubmatch(out)
		if m == nil || n == nil {
			b.Fatalf("no tps in pgbench's output:\n%s", out)
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		tx, _ := strconv.ParseFloat(n[1], 64)
		return v, float64(cpu.Microseconds()) / tx
	}
	var ratios []float64
	for r := range rounds {
		// Odd rounds start with pgx, even ones with pgbench.
		var bt, bc, et, ec, bs, bsc, st, sc float64
		if r%2 == 0 {
			bt, bc = pgbenchTPS("extended")
			et, ec = selectOnly(ctx, b, cfg.Pooled, secs)
			bs, bsc = pgbenchTPS("simple")
			st, sc = selectOnly(ctx, b, simple, secs)
		} else {
			et, ec = selectOnly(ctx, b, cfg.Pooled, secs)
			bt, bc = pgbenchTPS("extended")
			st, sc = selectOnly(ctx, b, simple, secs)
			bs, bsc = pgbenchTPS("simple")
		}
		b.Logf("round %d: tps (client CPU µs per query): pgbench extended %.0f (%.1f), pgx exec %.0f (%.1f) = %.2fx; pgbench simple %.0f (%.1f), pgx simple %.0f (%.1f)",
			r+1, bt, bc, et, ec, et/bt, bs, bsc, st, sc)
		ratios = append(ratios, et/bt)
		benchTPS += bt / float64(rounds)
		execTPS += et / float64(rounds)
		benchSimpleTPS += bs / float64(rounds)
		simpleTPS += st / float64(rounds)
	}
	sort.Float64s(ratios)
	median := ratios[len(ratios)/2]
	if len(ratios)%2 == 0 {
		median = (ratios[len(ratios)/2-1] + ratios[len(ratios)/2]) / 2
	}

	b.ReportMetric(benchTPS, "pgbench-tps")
	b.ReportMetric(execTPS, "pgx-exec-tps")
	b.ReportMetric(execTPS/benchTPS, "exec/pgbench")
	b.ReportMetric(median, "median-round-exec/pgbench")
	b.ReportMetric(simpleTPS/benchSimpleTPS, "simple/pgbench-simple")
	b.Logf("select-only, 50 clients, %d rounds of %d s each, through pgBouncer 1.18 (transaction mode, TLS):\n"+
		"  pgbench -S -M extended -c 50 -j 2: %8.0f tps\n"+
		"  pgx via pgpool (exec mode):         %8.0f tps  %.2fx pgbench extended\n"+
		"  pgbench -S -M simple -c 50 -j 2:   %8.0f tps\n"+
		"  pgx, simple protocol:               %8.0f tps  %.2fx pgbench simple\n"+
		"  median of the rounds' pgx exec / pgbench extended: %.2fx",
		rounds, secs, benchTPS, execTPS, execTPS/benchTPS, benchSimpleTPS, simpleTPS, simpleTPS/benchSimpleTPS, median)
}

// selectOnly runs pgbench's select-only query from 50 goroutines for secs
// seconds after opening every connection, and returns transactions per second.
func selectOnly(ctx context.Context, b *testing.B, cfg *pgxpool.Config, secs int) (tps, cpuPerQuery float64) {
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	const clients = 50
	// Connect all first: pgbench's figure excludes connection time too.
	conns := make([]*pgxpool.Conn, 0, clients)
	for range clients {
		c, err := pool.Acquire(ctx)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Release()
	}
	var n, fails atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	cpu0 := cpuTime()
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var bal int64
			for time.Now().Before(deadline) {
				aid := rand.Int64N(100000) + 1
				if err := pool.QueryRow(ctx, "SELECT abalance FROM pgbench_accounts WHERE aid = $1", aid).Scan(&bal); err != nil {
					fails.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprint(err))
					continue
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if fails.Load() > 0 {
		b.Fatalf("%d queries failed, first: %v", fails.Load(), firstErr.Load())
	}
	el := time.Since(start)
	cpu := cpuTime() - cpu0
	return float64(n.Load()) / el.Seconds(), float64(cpu.Microseconds()) / float64(n.Load())
}

// cpuTime is the user and system time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
