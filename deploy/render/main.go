// Command render draws the dashboards in deploy/grafana as PNG pictures
// from a real run: it starts the demo stack (PostgreSQL behind pgBouncer,
// two TLS Redis), runs the fediops parts against it for -duration (the
// redistls tunnel with client traffic and two failovers, a Sidekiq load
// generator read by sidekiqq's collector, backup and mirror runs with
// backup/metricsnotify, health checks, the connection budget), lets a
// real Prometheus (Debian package prometheus) scrape them with the alert
// rules loaded, then asks Prometheus for every panel's query over the run
// and draws each dashboard's panels where its grid puts them.
//
//	go run ./deploy/render -out docs/img -duration 2m
//
// Exit status: 0 pictures written, 1 a failure, 2 bad flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	out := fs.String("out", "docs/img", "`dir`ectory the PNG pictures go to")
	dur := fs.Duration("duration", 2*time.Minute, "how long the demo load runs")
	dash := fs.String("dashboards", "deploy/grafana", "`dir`ectory of the Grafana dashboards (*.json)")
	rules := fs.String("rules", "deploy/prometheus/fediops-rules.yml", "Prometheus rules `file` loaded during the run")
	width := fs.Int("width", 1200, "picture width in `pixels`")
	verbose := fs.Bool("v", false, "log progress")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: render [flags]\n\nRuns the demo stack under load, scrapes it with Prometheus and draws deploy/grafana's dashboards as PNG.\nNeeds the Debian packages of make demo plus prometheus (for the prometheus binary).\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if fs.NArg() > 0 || *dur < 20*time.Second || *width < 400 {
		fmt.Fprintln(os.Stderr, "render: unexpected arguments, -duration under 20s or -width under 400")
		os.Exit(2)
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log, *out, *dash, *rules, *dur, *width); err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, out, dashDir, rules string, dur time.Duration, width int) error {
	dashes, err := filepath.Glob(filepath.Join(dashDir, "*.json"))
	if err != nil || len(dashes) == 0 {
		return fmt.Errorf("no dashboards in %s", dashDir)
	}
	rulesAbs, err := filepath.Abs(rules)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	d, err := startDemo(ctx, log)
	if err != nil {
		return err
	}
	defer d.close()
	prom, err := startPrometheus(ctx, d.stack.Dir, d.metricsAddr, rulesAbs)
	if err != nil {
		return err
	}
	defer prom.stop()
	log.Info("prometheus up", "url", prom.url, "metrics", d.metricsAddr)
	start := time.Now()
	if err := d.load(ctx, dur); err != nil {
		return err
	}
	time.Sleep(3 * time.Second) // the last scrapes and rule evaluations
	end := time.Now()
	if res, err := prom.queryRange(ctx, `ALERTS{alertstate="firing"}`, end, end, time.Second); err == nil {
		for _, r := range res {
			fmt.Fprintf(os.Stderr, "render: alert firing at the end: %s %v\n", r.labels["alertname"], r.labels)
		}
	}
	for _, f := range dashes {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		png := filepath.Join(out, "dashboard-"+name+".png")
		if err := renderDashboard(ctx, prom, f, png, start, end, width); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		fi, _ := os.Stat(png)
		fmt.Fprintf(os.Stderr, "render: %s (%d KiB)\n", png, fi.Size()/1024)
	}
	return nil
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))
