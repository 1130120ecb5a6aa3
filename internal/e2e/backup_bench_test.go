package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fediops/fediops/internal/testenv"
)

// BenchmarkSideBySide backs up one generated database four ways in one run
// and prints wall time, output size and peak RSS of each:
//
//	pg_dump -Fc (gzip, the typical script) | wc -c
//	pg_dump -Fc -Z0 > /dev/null            (the floor: dump alone)
//	pg_dump -Z0 | zstd -1 -T0 | age | wc -c (the shell pipeline)
//	backup run → internal/b2fake    (fediops, zstd default and fastest)
//
// The database is FEDIOPS_BENCH_DB_MB megabytes of random-word text
// (default 200; the issue asks for about 1000). Peak RSS is GNU time's %M
// (wait4's ru_maxrss): the largest single process of the command (for
// fediops, the Go process or its pg_dump child). The B2 stand-in runs in
// the benchmark's process and competes for the same CPUs. Each command
// runs twice; the faster run is shown. FEDIOPS_BENCH_VARIANTS
// ("default;fastest GOMEMLIMIT=64MiB;default -zstd-workers=2") lists
// fediops variants: a zstd level, then environment and flags. Run:
//
// With an external server (FEDIOPS_TEST_POSTGRES_URL), FEDIOPS_BENCH_REUSE=1
// keeps a database an earlier run seeded with the same size.
//
//	FEDIOPS_BENCH_DB_MB=1000 go test -run '^$' -bench SideBySide -benchtime 1x -timeout 60m ./internal/e2e/
func BenchmarkSideBySide(b *testing.B) {
	mb := 200
	if v, err := strconv.Atoi(os.Getenv("FEDIOPS_BENCH_DB_MB")); err == nil && v > 0 {
		mb = v
	}
	for _, bin := range []string{"pg_dump", "zstd", "age", "wc"} {
		testenv.Binary(b, bin)
	}
	pg := testenv.PG(b)
	t0 := time.Now()
	if os.Getenv("FEDIOPS_BENCH_REUSE") != "" && bkSeeded(pg, "bk_bench", mb) {
		b.Logf("reusing database bk_bench (FEDIOPS_BENCH_REUSE)")
	} else {
		bkSeed(b, pg, "bk_bench", "CANARY-bench", mb)
		b.Logf("seeded %d MB of random text in %s", mb, time.Since(t0).Round(time.Second))
	}
	f := newBkFixture(b, "bk_bench")
	pgEnv := []string{"PGPASSWORD=" + pg.AdminPassword, "PGSSLMODE=verify-full", "PGSSLROOTCERT=" + pg.CAFile}
	conn := fmt.Sprintf("-h %s -p %d -U %s -d bk_bench", pg.Host, pg.Port, pg.AdminUser)
	shell := func(script string) bkResult {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		cmd, rss := bkTimed(b, ctx, "/bin/bash", "-o", "pipefail", "-c", script)
		cmd.Env = append(os.Environ(), pgEnv...)
		t0 := time.Now()
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("%s: %v", script, err)
		}
		return bkResult{stdout: strings.TrimSpace(string(out)), wall: time.Since(t0), maxRSS: rss()}
	}
	type row struct {
		name string
		res  bkResult
		size int64
	}
	var rows []row
	best := func(name string, f func() (bkResult, int64)) {
		var r row
		for i := 0; i < 2; i++ { // best of two: the machine is shared
			res, size := f()
			if i == 0 || res.wall < r.res.wall {
				r = row{name, res, size}
			}
		}
		rows = append(rows, r)
	}
	size := func(r bkResult) int64 { n, _ := strconv.ParseInt(r.stdout, 10, 64); return n }
	// FEDIOPS_BENCH_NO_GZIP=1 skips the slow gzip row (its size is then
	// taken as 0.202 of the raw dump, what it was on the generated text).
	noGzip := os.Getenv("FEDIOPS_BENCH_NO_GZIP") != ""
	if !noGzip {
		best("pg_dump -Fc (gzip) | wc -c", func() (bkResult, int64) { r := shell("pg_dump -Fc " + conn + " | wc -c"); return r, size(r) })
	}
	// Timed exactly as the issue writes it; the size comes from one more,
	// untimed, run through wc.
	raw := size(shell("pg_dump -Fc -Z0 " + conn + " | wc -c"))
	best("pg_dump -Fc -Z0 > /dev/null", func() (bkResult, int64) { return shell("pg_dump -Fc -Z0 " + conn + " > /dev/null"), raw })
	recip := f.id.Recipient().String()
	best("pg_dump -Z0 | zstd -1 -T0 | age", func() (bkResult, int64) {
		r := shell("pg_dump -Z0 " + conn + " | zstd -q -1 -T0 | age -r " + recip + " | wc -c")
		return r, size(r)
	})
	variants := "default;fastest" // zstd level, then extra KEY=value environment
	if v := os.Getenv("FEDIOPS_BENCH_VARIANTS"); v != "" {
		variants = v
	}
	for _, v := range strings.Split(variants, ";") {
		level, extra, _ := strings.Cut(v, " ")
		best("fediops run -zstd-level "+v, func() (bkResult, int64) {
			before := f.b2.Calls("b2_finish_large_file") + f.b2.Calls("b2_upload_file")
			env, args := append([]string{}, f.env...), f.args("run", "-zstd-level", level, "-keep-last", "1", "-keep", "1ns")
			for _, x := range strings.Fields(extra) { // -flag=value or KEY=value
				if strings.HasPrefix(x, "-") {
					args = append(args, x)
				} else {
					env = append(env, x)
				}
			}
			r := bkRun(b, env, args...)
			if r.code != 0 || f.b2.Calls("b2_finish_large_file")+f.b2.Calls("b2_upload_file") <= before {
				b.Fatalf("fediops run: exit %d: %s", r.code, r.stderr)
			}
			var n int64
			for _, file := range f.b2.Files("fediops-backups") {
				if strings.HasSuffix(file.Name, ".zst.age") {
					n = file.Size // one backup left after pruning
				}
			}
			return r, n
		})
	}
	if noGzip {
		rows = append([]row{{name: "(gzip skipped: 0.202 x raw)", size: rows[0].size * 202 / 1000}}, rows...)
	}
	floor, gz := rows[1], rows[0]
	fmt.Printf("\nbackup side by side, %d MB database (%s)\n", mb, time.Now().UTC().Format(time.DateOnly))
	fmt.Printf("%-52s %9s %12s %10s %9s %9s\n", "command", "wall", "output", "peak RSS", "vs -Z0", "vs gzip")
	for _, r := range rows {
		fmt.Printf("%-52s %8.2fs %10.1fMB %8.1fMiB %8.2fx %8.2fx\n", r.name, r.res.wall.Seconds(), float64(r.size)/1e6,
			float64(r.res.maxRSS)/(1<<20), r.res.wall.Seconds()/floor.res.wall.Seconds(), float64(r.size)/float64(gz.size))
	}

}

// bkSeeded reports whether db already holds the rows bkSeed writes for mb.
func bkSeeded(pg *testenv.Postgres, db string, mb int) bool {
	ctx := context.Background()
	c, err := pgx.Connect(ctx, strings.Replace(pg.AdminURL(), "/"+pg.Database+"?", "/"+db+"?", 1))
	if err != nil {
		return false
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM statuses").Scan(&n); err != nil {
		return false
	}
	return n == mb*1000*1000/1200
}
