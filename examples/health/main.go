// Command health runs every health check of a Mastodon instance described by
// its .env.production (web, streaming, the pooled database, Redis, Sidekiq,
// Spaces, OpenSearch), prints a table and exits 0 when none failed, else 1.
//
//	health -env /home/mastodon/live/.env.production
//	health -env .env.production -prometheus 127.0.0.1:9101 -interval 30s -db-size 4
//	health -env .env.production -push 'https://status.example/api/push/TOKEN'
//
// With -prometheus it keeps checking every -interval and serves on /metrics
// the results (fediops_check_*), Sidekiq's queues (sidekiq_*), its database
// pool (pgpool_*) and the connection budget (fediops_db_connections_*, with
// -db-size or FEDIOPS_DB_CONN_LIMIT). Without it, the run's results and budget
// go to FEDIOPS_METRICS_DIR and/or FEDIOPS_PUSHGATEWAY_URL when set (job
// "health"). -push reports each run to an Uptime Kuma push monitor.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/tiers/health"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop) // the first signal cancels ctx; a second one ends the process
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	envPath := fs.String("env", ".env.production", "Mastodon's `file` of settings")
	web := fs.String("web", "http://127.0.0.1:3000", "comma-separated base `URLs` of web (Puma) nodes")
	streaming := fs.String("streaming", "http://127.0.0.1:4000", "comma-separated base `URLs` of streaming nodes")
	spacesKey := fs.String("spaces-key", "", "an object `key` known to exist in the Space (HEAD through the API and the public URL)")
	timeout := fs.Duration("timeout", 10*time.Second, "per-check timeout")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	promAddr := fs.String("prometheus", "", "serve metrics on `addr` (e.g. 127.0.0.1:9101) and keep checking")
	interval := fs.Duration("interval", 30*time.Second, "time between runs with -prometheus")
	push := fs.String("push", "", "Uptime Kuma push monitor `URL`")
	dbSize := fs.Int("db-size", 0, "database cluster memory in `GiB`, for its connection limit (else FEDIOPS_DB_CONN_LIMIT)")
	poolSize := fs.Int("db-pool-size", 0, "`size` of the DO pool DB_NAME names (0: WEB_CONCURRENCY x DB_POOL)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: health [flags]\n\nRuns every health check of the instance in -env and exits 0 if none failed, 1 otherwise.\n\n")
		fs.PrintDefaults()
	}
	fail := func(code int, err error) int { fmt.Fprintln(stderr, "health:", err); return code }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 || *timeout <= 0 || *interval <= 0 || *dbSize < 0 || *poolSize < 0 {
		fmt.Fprintln(stderr, "health: unexpected arguments, non-positive -timeout/-interval or negative -db-size/-db-pool-size")
		return 2
	}
	env, err := fediops.ReadEnv(*envPath) // the environment wins, as in Rails
	if err != nil {
		return fail(2, err)
	}
	for _, f := range env.Lint() {
		fmt.Fprintf(stderr, "health: warning: %s\n", f)
	}
	redis.SetLogger(redisLog{}) // go-redis's own messages go to slog at debug
	ex, err := health.NewExporter(ctx, env.Lookup, health.ExportOptions{Serve: *promAddr != "", DBSizeGiB: *dbSize, DBPoolSize: *poolSize,
		Options: health.Options{Web: list(*web), Streaming: list(*streaming), SpacesKey: *spacesKey}})
	if err != nil {
		return fail(2, err)
	}
	defer ex.Close()

	runOnce := func() health.Report {
		rep := ex.Run(ctx, *timeout)
		if *push != "" {
			if err := health.PushUptimeKuma(ctx, nil, *push, rep); err != nil {
				slog.Error("push", "err", err)
			}
		}
		return rep
	}
	if *promAddr == "" {
		rep := runOnce()
		write := rep.WriteTable
		if *asJSON {
			write = rep.WriteJSON
		}
		write(stdout)
		if err := ex.WriteMetrics(ctx); err != nil {
			return fail(1, err)
		}
		if !rep.OK() {
			return 1
		}
		return 0
	}

	mux := http.NewServeMux()
	mux.Handle("/metrics", ex.Handler())
	srv := &http.Server{Addr: *promAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for {
		rep := runOnce()
		slog.Info("checked", "summary", rep.Summary(), "took", rep.Duration)
		select {
		case err := <-errc:
			return fail(1, fmt.Errorf("serve metrics: %w", err))
		case <-ctx.Done():
			shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(shut)
			return 0
		case <-tick.C:
		}
	}
}

type redisLog struct{}

func (redisLog) Printf(ctx context.Context, format string, v ...any) {
	slog.DebugContext(ctx, fmt.Sprintf(format, v...))
}

// list splits comma-separated URLs; "" gives an empty, non-nil list (no nodes).
func list(s string) []string {
	return append([]string{}, strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })...)
}
