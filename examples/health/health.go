package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/fediops/fediops/command"
	"github.com/fediops/fediops/tiers/health"
)

var healthHelp = command.Help{
	Usage: "health [-env FILE] [-web URLS] [-streaming URLS] [-prometheus ADDR] [-push URL] [flags]",
	About: `Runs every health check of the instance that -env describes (web, streaming, the
pooled database, Redis, Sidekiq, Spaces, OpenSearch), prints a table and exits 0
if none failed, 1 otherwise. With -prometheus it keeps checking every -interval and
serves the results, Sidekiq's queues, the database pool and the connection budget
on /metrics; without it, the results go to FEDIOPS_METRICS_DIR (a node_exporter
textfile) and FEDIOPS_PUSHGATEWAY_URL when they are set. Settings that cannot work
(a CA file without a certificate, a port out of range) are reported before any
check runs, all at once, with exit status 2. Logs: only problems when stderr is
not a terminal; -v adds debug lines (go-redis's own messages included).
The settings below are read from -env, the process environment winning as in Rails.`,
	Env: []command.Var{
		{Name: "DB_*, DATABASE_URL", About: "the database (through pgpool: the pool, its CA in FEDIOPS_DB_CA_FILE, PGSSLROOTCERT or NODE_EXTRA_CA_CERTS)"},
		{Name: "REDIS_*, SIDEKIQ_REDIS_*", About: "Redis and Sidekiq's Redis (FEDIOPS_REDIS_CA_FILE for a private CA)"},
		{Name: "S3_*", About: "Spaces, when S3_ENABLED=true"},
		{Name: "ES_*", About: "OpenSearch, when ES_ENABLED=true"},
		{Name: "WEB_CONCURRENCY, DB_POOL", About: "this node's web connections, for the budget"},
		{Name: "FEDIOPS_DB_CONN_LIMIT", About: "the cluster's connection limit (else -db-size)"},
		{Name: "FEDIOPS_METRICS_DIR", About: "directory for the textfile fediops_health.prom (without -prometheus)"},
		{Name: "FEDIOPS_PUSHGATEWAY_URL", About: "Pushgateway to push the run's metrics to (without -prometheus)"},
	},
	Exit: [3]string{
		"every check passed (warnings allowed); with -prometheus, stopped by SIGINT or SIGTERM",
		"a check failed, the metrics could not be written, or -prometheus could not listen",
	},
}

func runHealth(ctx context.Context, p *command.Program, args []string) error {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	envPath := fs.String("env", ".env.production", "Mastodon's settings `file`")
	web := fs.String("web", "http://127.0.0.1:3000", "comma-separated base `URLs` of web (Puma) nodes")
	streaming := fs.String("streaming", "http://127.0.0.1:4000", "comma-separated base `URLs` of streaming nodes")
	spacesKey := fs.String("spaces-key", "", "an object `key` known to exist in the Space (HEAD through the API and the public URL)")
	timeout := fs.Duration("timeout", 10*time.Second, "per-check timeout")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	promAddr := fs.String("prometheus", "", "serve metrics on `host:port` (loopback, e.g. 127.0.0.1:9101) and keep checking")
	unsafeListen := fs.Bool("unsafe-listen", false, "allow a -prometheus address that is not loopback (metrics for every machine that reaches this one)")
	interval := fs.Duration("interval", 30*time.Second, "time between runs with -prometheus")
	push := fs.String("push", "", "Uptime Kuma push monitor `URL` (https unless loopback: it holds the monitor's token)")
	dbSize := fs.Int("db-size", 0, "database cluster memory in `GiB`, for its connection limit (else FEDIOPS_DB_CONN_LIMIT)")
	poolSize := fs.Int("db-pool-size", 0, "`size` of the DO pool DB_NAME names (0: WEB_CONCURRENCY x DB_POOL)")
	verbose := fs.Bool("v", false, "debug logging")
	if err := p.Parse(fs, args, healthHelp); err != nil {
		return err
	}
	// Every local setting before the first connection.
	switch {
	case *timeout <= 0:
		return command.Usagef("-timeout %s: want a positive duration", *timeout)
	case *interval <= 0:
		return command.Usagef("-interval %s: want a positive duration", *interval)
	case *dbSize < 0 || *poolSize < 0:
		return command.Usagef("-db-size and -db-pool-size are sizes: 0 or more")
	}
	webs, streams := list(*web), list(*streaming)
	for _, u := range append(append([]string{}, webs...), streams...) {
		if err := command.CheckURL(u); err != nil {
			return err
		}
	}
	if *promAddr != "" {
		if err := command.CheckListen(*promAddr, *unsafeListen); err != nil {
			return fmt.Errorf("-prometheus: %w", err)
		}
	}
	if *push != "" {
		if err := command.CheckCredentialURL(*push); err != nil {
			return fmt.Errorf("-push: %w", err)
		}
	}
	log := p.Logger(*verbose)
	if *promAddr != "" {
		log = p.ServiceLogger(*verbose)
	}
	env, _, err := p.ReadEnv(*envPath)
	if err != nil {
		return err
	}
	ex, err := health.NewExporter(ctx, env.Lookup, health.ExportOptions{Serve: *promAddr != "", DBSizeGiB: *dbSize, DBPoolSize: *poolSize,
		Logger: log, Options: health.Options{Web: webs, Streaming: streams, SpacesKey: *spacesKey}})
	if err != nil {
		return command.Usage(fmt.Errorf("%s: %w", env, err))
	}
	defer ex.Close()
	if ex.SettingsErr != nil {
		return command.Usage(fmt.Errorf("%s: %w", env, ex.SettingsErr))
	}

	runOnce := func() health.Report {
		rep := ex.Run(ctx, *timeout)
		if *push != "" {
			if err := health.PushUptimeKuma(ctx, nil, *push, rep); err != nil {
				log.Error("push to Uptime Kuma", "err", err)
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
		if err := write(p.Stdout); err != nil {
			return err
		}
		if err := ex.WriteMetrics(ctx); err != nil {
			return err
		}
		if !rep.OK() {
			return errors.New(rep.Summary())
		}
		return nil
	}

	ln, err := net.Listen("tcp", *promAddr)
	if err != nil {
		return fmt.Errorf("-prometheus: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", ex.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("serving metrics", "addr", ln.Addr().String(), "interval", *interval)
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for {
		rep := runOnce()
		log.Debug("checked", "summary", rep.Summary(), "took", rep.Duration)
		select {
		case err := <-errc:
			return fmt.Errorf("serve metrics: %w", err)
		case <-ctx.Done():
			shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return srv.Shutdown(shut)
		case <-tick.C:
		}
	}
}

// list splits comma-separated URLs; "" gives an empty, non-nil list (no nodes).
func list(s string) []string {
	return append([]string{}, strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })...)
}
