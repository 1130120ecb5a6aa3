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
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/internal/testenv"
	"github.com/fediops/fediops/pgpool"
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

	cfg, err := pgpool.ConfigFromEnv(fediops.MapLookup(bouncerEnv(bo)), pgpool.Options{MaxConns: 50})
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
	stackDir := testenv.Shared(b).Dir
	// measure runs one contender and returns its rate and CPU per query:
	// the client's, pgBouncer's and PostgreSQL's. CPU is what a loaded
	// box cannot blur much; the rate is what it shares out.
	type result struct{ tps, client, bouncer, postgres float64 }
	measure := func(f func() (tps float64, queries float64, client time.Duration)) result {
		b0, p0 := serverCPU(stackDir)
		tps, q, cl := f()
		b1, p1 := serverCPU(stackDir)
		us := func(d time.Duration) float64 { return float64(d.Microseconds()) / q }
		return result{tps, us(cl), us(b1 - b0), us(p1 - p0)}
	}
	pgbenchRun := func(mode string) func() (float64, float64, time.Duration) {
		return func() (float64, float64, time.Duration) {
			out, cpu := run("-S", "-M", mode, "-n", "-c", "50", "-j", "2", "-T", strconv.Itoa(secs),
				"-h", bo.Host, "-p", strconv.Itoa(bo.Port), "-U", bo.User, bo.Database)
			m, n := tpsRE.FindStringSubmatch(out), txRE.FindStringSubmatch(out)
			if m == nil || n == nil {
				b.Fatalf("no tps in pgbench's output:\n%s", out)
			}
			v, _ := strconv.ParseFloat(m[1], 64)
			tx, _ := strconv.ParseFloat(n[1], 64)
			return v, tx, cpu
		}
	}
	pgxRun := func(cfg *pgxpool.Config) func() (float64, float64, time.Duration) {
		return func() (float64, float64, time.Duration) { return selectOnly(ctx, b, cfg, secs) }
	}
	contenders := []struct {
		name string
		run  func() (float64, float64, time.Duration)
	}{
		{"pgbench -M extended", pgbenchRun("extended")},
		{"pgx exec (pgpool)", pgxRun(cfg.Pooled)},
		{"pgbench -M simple", pgbenchRun("simple")},
		{"pgx simple protocol", pgxRun(simple)},
	}
	sum := make([]result, len(contenders))
	var ratios []float64
	for r := range rounds {
		// Odd rounds run the contenders in reverse order.
		res := make([]result, len(contenders))
		for i := range contenders {
			j := i
			if r%2 == 1 {
				j = len(contenders) - 1 - i
			}
			res[j] = measure(contenders[j].run)
		}
		line := fmt.Sprintf("round %d:", r+1)
		for i, c := range contenders {
			line += fmt.Sprintf(" %s %.0f tps;", c.name, res[i].tps)
			sum[i].tps += res[i].tps / float64(rounds)
			sum[i].client += res[i].client / float64(rounds)
			sum[i].bouncer += res[i].bouncer / float64(rounds)
			sum[i].postgres += res[i].postgres / float64(rounds)
		}
		b.Log(line + fmt.Sprintf(" exec/pgbench %.2fx", res[1].tps/res[0].tps))
		ratios = append(ratios, res[1].tps/res[0].tps)
	}
	sort.Float64s(ratios)
	median := ratios[len(ratios)/2]
	if len(ratios)%2 == 0 {
		median = (ratios[len(ratios)/2-1] + ratios[len(ratios)/2]) / 2
	}

	b.ReportMetric(sum[0].tps, "pgbench-tps")
	b.ReportMetric(sum[1].tps, "pgx-exec-tps")
	b.ReportMetric(sum[1].tps/sum[0].tps, "exec/pgbench")
	b.ReportMetric(median, "median-round-exec/pgbench")
	b.ReportMetric(sum[3].tps/sum[2].tps, "simple/pgbench-simple")
	report := fmt.Sprintf("select-only, 50 clients, %d rounds of %d s, through pgBouncer 1.18 (transaction mode, TLS); mean per contender:\n"+
		"  %-22s %8s %6s  %s\n", rounds, secs, "", "tps", "ratio", "CPU µs per query: client + pgBouncer + PostgreSQL = total")
	for i, c := range contenders {
		ratio := sum[i].tps / sum[i&^1].tps
		total := sum[i].client + sum[i].bouncer + sum[i].postgres
		report += fmt.Sprintf("  %-22s %8.0f %5.2fx  %.1f + %.1f + %.1f = %.1f\n", c.name, sum[i].tps, ratio, sum[i].client, sum[i].bouncer, sum[i].postgres, total)
	}
	report += fmt.Sprintf("  median of the rounds' pgx exec / pgbench extended: %.2fx", median)
	b.Log(report)
}

// selectOnly runs pgbench's select-only query from 50 goroutines for secs
// seconds after opening every connection, and returns transactions per
// second (connections excluded, as pgbench does), the number of queries
// and the process's CPU time over the whole call.
func selectOnly(ctx context.Context, b *testing.B, cfg *pgxpool.Config, secs int) (tps, queries float64, cpu time.Duration) {
	cpu0 := cpuTime()
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
	pool.Close()
	return float64(n.Load()) / el.Seconds(), float64(n.Load()), cpuTime() - cpu0
}

// cpuTime is the user and system time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serverCPU is the CPU time used so far by the stack's pgBouncer and
// PostgreSQL (postmaster and backends), read from /proc; 0 when the
// servers are not local. Ticks are taken as 100 per second (Linux).
func serverCPU(stackDir string) (bouncer, postgres time.Duration) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0
	}
	type proc struct {
		ppid int
		cpu  time.Duration
		cmd  string
	}
	procs := map[int]proc{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:]) // f[0] is the state; ppid f[1], utime f[11], stime f[12]
		if len(f) < 13 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		cmd, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		procs[pid] = proc{ppid, time.Duration(ut+st) * 10 * time.Millisecond, string(cmd)}
	}
	postmasters := map[int]bool{}
	for pid, p := range procs {
		if !strings.Contains(p.cmd, stackDir) {
			continue
		}
		switch {
		case strings.Contains(p.cmd, "pgbouncer"):
			bouncer += p.cpu
		case strings.Contains(p.cmd, "postgres"):
			postmasters[pid] = true
			postgres += p.cpu
		}
	}
	for _, p := range procs {
		if postmasters[p.ppid] {
			postgres += p.cpu
		}
	}
	return bouncer, postgres
}
