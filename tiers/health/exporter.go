package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/internal/promfile"
	"github.com/fediops/fediops/pgpool"
	"github.com/fediops/fediops/sidekiqq"
)

// ErrNoDBLimit says the database cluster's connection limit is unknown:
// neither its size (ExportOptions.DBSizeGiB) nor FEDIOPS_DB_CONN_LIMIT is
// given, so no connection budget is exported.
var ErrNoDBLimit = errors.New("the database's connection limit is unknown: give the cluster's size in GiB or set " + pgpool.EnvConnLimit)

// ExportOptions tunes NewExporter. Zero values mean the defaults.
type ExportOptions struct {
	Options
	// Serve adds the collectors a long-running exporter (health
	// -prometheus) reads on every scrape: sidekiqq.Collector through the
	// checks' Redis client (sidekiq_*) and pgpool.Collector over the
	// checks' database pool (pgpool_*, labelled with the DO pool's name,
	// or the database's when DB_* point at it directly). Without Serve the
	// registry holds only what one run leaves behind for a textfile or a
	// Pushgateway: the check results and the connection budget.
	Serve bool
	// DBSizeGiB is the database cluster's memory, for DO's connection
	// limit (25 per GiB minus 3); FEDIOPS_DB_CONN_LIMIT wins when set.
	// With neither, no budget is exported (Exporter.BudgetErr is
	// ErrNoDBLimit).
	DBSizeGiB int
	// DBPoolSize is the size of the DO pool DB_NAME names; 0 means the
	// connections this node's settings open through it (WEB_CONCURRENCY ×
	// DB_POOL, pgpool.WebFromEnv), so the budget says what they need.
	DBPoolSize int
	// Cluster labels the budget gauges; "" means the database's host.
	Cluster string
	// SidekiqCollector tunes the Sidekiq collector (with Serve); an empty
	// Namespace means REDIS_NAMESPACE (Mastodon 4.3).
	SidekiqCollector sidekiqq.CollectorOptions
	// Logger receives scrape errors (a Redis that does not answer) and,
	// at info, why no budget is exported; default slog.Default().
	Logger *slog.Logger
}

// Exporter runs an instance's health checks (ChecksFromEnv) and keeps what
// the deploy/ dashboards and rules read about it in one registry:
//
//	fediops_check_*              Metrics, set by every Run
//	fediops_db_connections_*     promfile.Budget from pgpool's Budget report
//	sidekiq_*, pgpool_*          with ExportOptions.Serve, read at each scrape
//
// Serve Registry with Handler, or leave it once after Run for
// node_exporter or a Pushgateway with WriteMetrics.
type Exporter struct {
	Registry *prometheus.Registry
	Checks   []Check
	// Budget is the database's connection budget as these settings
	// describe it: the limit, this node's web demand and the pool it goes
	// through. Nil when BudgetErr says why (ErrNoDBLimit, or settings the
	// database check already reports as failing). When the report has
	// problems, Checks ends with a "db budget" check that says so.
	Budget    *pgpool.Report
	BudgetErr error
	// SettingsErr joins the errors of the parts whose settings are wrong
	// (a CA file without a certificate, a port out of range...), each
	// "<check>: <error>"; nil when every part could be set up. Their checks
	// fail on every Run; a program that must tell a configuration error
	// from a failing server (exit 2, not 1) looks here before running.
	SettingsErr error

	metrics *Metrics
	out     promfile.Config
	close   func()
	log     *slog.Logger
}

// NewExporter connects to the parts lookup describes (as ChecksFromEnv
// does) and registers the collectors o asks for. The error is a bad
// budget setting (FEDIOPS_DB_CONN_LIMIT, WEB_CONCURRENCY...) or metrics
// destination (FEDIOPS_METRICS_DIR, FEDIOPS_PUSHGATEWAY_URL) naming the
// variable; bad connection settings become failing checks instead. Close
// releases the connections.
func NewExporter(ctx context.Context, lookup fediops.Lookup, o ExportOptions) (*Exporter, error) {
	out, err := promfile.ConfigFromEnv(lookup)
	if err != nil {
		return nil, err
	}
	in := connect(ctx, lookup, o.Options)
	e := &Exporter{out: out, Registry: prometheus.NewRegistry(), Checks: in.checks, close: in.close, log: o.Logger,
		SettingsErr: errors.Join(in.settings...)}
	if e.log == nil {
		e.log = slog.Default()
	}
	fail := func(err error) (*Exporter, error) { in.close(); return nil, err }
	if e.metrics, err = NewMetrics(e.Registry); err != nil {
		return fail(err)
	}
	if in.db == nil {
		e.BudgetErr = errors.New("no budget: the database settings are wrong (see the database check)")
	} else if b, err := dbBudget(in.db, lookup, o); errors.Is(err, ErrNoDBLimit) {
		e.BudgetErr = err
	} else if err != nil {
		return fail(err)
	} else {
		r := b.Report()
		e.Budget = &r
		g, err := promfile.NewBudget(e.Registry)
		if err != nil {
			return fail(fmt.Errorf("register budget: %w", err))
		}
		cluster := o.Cluster
		if cluster == "" {
			cluster = dbEndpoint(in.db).Host
		}
		g.Set(cluster, r.Limit, r.Used)
		if len(r.Problems) > 0 {
			e.Checks = append(e.Checks, CheckFunc("db budget", func(context.Context) (string, error) {
				detail := fmt.Sprintf("%d of %d connections budgeted", r.Used, r.Limit)
				if r.Err() != nil {
					return detail, r.Err()
				}
				return detail, Warn(errors.New(r.Problems[0]))
			}))
		}
	}
	if e.BudgetErr != nil {
		e.log.Info("no connection budget exported", "why", e.BudgetErr)
	}
	if o.Serve {
		if o.SidekiqCollector.Namespace == "" {
			o.SidekiqCollector.Namespace = sidekiqq.NamespaceFromEnv(lookup)
		}
		if in.redis != nil {
			if err := e.Registry.Register(sidekiqq.NewCollector(in.redis, o.SidekiqCollector)); err != nil {
				return fail(fmt.Errorf("register sidekiq collector: %w", err))
			}
		}
		if in.pool != nil {
			if err := e.Registry.Register(pgpool.NewCollector(in.pool, dbEndpoint(in.db).Database)); err != nil {
				return fail(fmt.Errorf("register pool collector: %w", err))
			}
		}
	}
	return e, nil
}

// dbBudget is the cluster's budget as one node's settings see it: the
// limit (FEDIOPS_DB_CONN_LIMIT, else o.DBSizeGiB under DO's rule), the
// pool DB_NAME names with o.DBPoolSize (default: what goes through it),
// and this node's web demand through that pool, or directly.
func dbBudget(db *pgpool.Config, lookup fediops.Lookup, o ExportOptions) (pgpool.Budget, error) {
	if v, _ := lookup(pgpool.EnvConnLimit); v == "" && o.DBSizeGiB <= 0 {
		return pgpool.Budget{}, ErrNoDBLimit
	}
	b, err := pgpool.BudgetFromEnv(lookup, o.DBSizeGiB)
	if err != nil {
		return pgpool.Budget{}, fmt.Errorf("budget: %w", err)
	}
	web, err := pgpool.WebDemandFromEnv(lookup, "this node")
	if err != nil {
		return pgpool.Budget{}, fmt.Errorf("budget: %w", err)
	}
	if !db.IsPooled {
		return b.Add(web), nil
	}
	size := o.DBPoolSize
	if size <= 0 {
		size = web.Conns
	}
	return b.WithPool(db.Pool.Database, size).Add(web.Via(db.Pool.Database)), nil
}

func dbEndpoint(db *pgpool.Config) pgpool.Endpoint {
	if db.IsPooled {
		return db.Pool
	}
	return db.DirectEndpoint
}

// Run runs the checks, each under timeout, and records the report in the
// fediops_check_* gauges.
func (e *Exporter) Run(ctx context.Context, timeout time.Duration) Report {
	rep := Run(ctx, timeout, e.Checks...)
	e.metrics.Observe(rep)
	return rep
}

// Handler serves Registry for Prometheus. A collector that fails (Redis
// down for the Sidekiq collector) is logged and left out; the rest, the
// failing checks included, is still served.
func (e *Exporter) Handler() http.Handler {
	return promhttp.HandlerFor(e.Registry, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError, ErrorLog: scrapeLog{e.log}})
}

// Close releases the connections of the checks and collectors.
func (e *Exporter) Close() { e.close() }

type scrapeLog struct{ log *slog.Logger }

func (l scrapeLog) Println(v ...any) { l.log.Warn("scrape", "err", fmt.Sprint(v...)) }

// WriteMetrics leaves the registry for a run from cron where
// FEDIOPS_METRICS_DIR (node_exporter's textfile directory, replaced
// atomically) and FEDIOPS_PUSHGATEWAY_URL say, as job "health"; with
// neither set it does nothing.
func (e *Exporter) WriteMetrics(ctx context.Context) error {
	if !e.out.Enabled() {
		return nil
	}
	return e.out.Write(ctx, "health", e.Registry)
}
