// Command health runs every health check of a Mastodon instance described
// by its .env.production (web, streaming, the pooled database, Redis
// through the tunnel, Sidekiq, Spaces, OpenSearch), prints a table and
// exits 0 when nothing failed, 1 otherwise.
//
//	health -env /home/mastodon/live/.env.production
//	health -env .env.production -prometheus 127.0.0.1:9101 -interval 30s
//	health -env .env.production -push 'https://status.example/api/push/TOKEN'
//
// With -prometheus it keeps running, checking every -interval and serving
// the results on /metrics (fediops_check_up, fediops_check_status,
// fediops_check_latency_seconds). -push reports each run to an Uptime Kuma
// push monitor (status=up|down, msg, ping in ms).
package main

import (
	"context"
	"encoding/json"
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

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/fediops/fediops/internal/envfile"
	"github.com/fediops/fediops/tiers"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
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
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: health [flags]\n\nRuns every health check of the instance in -env and exits 0 if none failed, 1 otherwise.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 || *timeout <= 0 || *interval <= 0 {
		fmt.Fprintln(stderr, "health: unexpected arguments or non-positive -timeout/-interval")
		return 2
	}
	env, err := envfile.Read(*envPath)
	if err != nil {
		fmt.Fprintln(stderr, "health:", err)
		return 2
	}
	redis.SetLogger(redisLog{}) // go-redis's own messages go to slog at debug
	checks, closeAll := tiers.ChecksFromEnv(ctx, env.Get, tiers.HealthOptions{
		Web: list(*web), Streaming: list(*streaming), SpacesKey: *spacesKey})
	defer closeAll()

	runOnce := func() tiers.Report {
		rep := tiers.Run(ctx, *timeout, checks...)
		if *push != "" {
			if err := tiers.PushUptimeKuma(ctx, nil, *push, rep); err != nil {
				slog.Error("push", "err", err)
			}
		}
		return rep
	}
	if *promAddr == "" {
		rep := runOnce()
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			enc.Encode(rep)
		} else {
			rep.WriteTable(stdout)
		}
		if !rep.OK() {
			return 1
		}
		return 0
	}

	reg := prometheus.NewRegistry()
	metrics, err := tiers.NewMetrics(reg)
	if err != nil {
		fmt.Fprintln(stderr, "health:", err)
		return 1
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Addr: *promAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for {
		rep := runOnce()
		metrics.Observe(rep)
		slog.Info("checked", "summary", rep.Summary(), "took", rep.Duration)
		select {
		case err := <-errc:
			fmt.Fprintln(stderr, "health: serve metrics:", err)
			return 1
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

func list(s string) []string {
	out := []string{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
