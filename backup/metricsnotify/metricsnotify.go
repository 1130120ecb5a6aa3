// Package metricsnotify leaves each backup and media mirror run's results
// for Prometheus: add NotifierFromEnv(env) (FEDIOPS_METRICS_DIR,
// FEDIOPS_PUSHGATEWAY_URL) to backup.Runner's Notifiers and mirror.Config's,
// so that a run from cron can be graphed and alerted on (deploy/grafana,
// deploy/prometheus).
package metricsnotify

import (
	"context"
	"fmt"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/mirror"
	"github.com/fediops/fediops/internal/promfile"
)

// Notifier leaves each run's results in node_exporter's textfile
// directory Dir (fediops_backup.prom, fediops_mirror.prom, replaced
// atomically) and/or at the Pushgateway PushURL. With neither set it does
// nothing.
//
// Per source: fediops_backup_last_success_timestamp_seconds,
// _last_run_timestamp_seconds, _success, _duration_seconds, _bytes (stored),
// _objects, _failures; the same with fediops_mirror_ for mirror runs
// (objects and bytes copied, objects failed). A failed run keeps the
// previous success time. Dry runs are not recorded.
type Notifier struct {
	Dir      string            // node_exporter --collector.textfile.directory
	PushURL  string            // Pushgateway base URL; credentials in it go as basic auth
	Grouping map[string]string // extra Pushgateway grouping labels, e.g. {"instance": host}
}

var (
	_ backup.Notifier = Notifier{}
	_ mirror.Notifier = Notifier{}
)

// NotifierFromEnv is the Notifier that FEDIOPS_METRICS_DIR and
// FEDIOPS_PUSHGATEWAY_URL describe, read through env. With neither set it
// does nothing, so a program can always add it.
func NotifierFromEnv(env fediops.Lookup) Notifier {
	var n Notifier
	n.Dir, _ = env(promfile.EnvDir)
	n.PushURL, _ = env(promfile.EnvPushURL)
	return n
}

func (n Notifier) enabled() bool { return n.Dir != "" || n.PushURL != "" }

func (n Notifier) config() promfile.Config {
	return promfile.Config{Dir: n.Dir, PushURL: n.PushURL, Grouping: n.Grouping}
}

// Notify records a backup run: one sample set per source of r.
func (n Notifier) Notify(ctx context.Context, r backup.Report) error {
	if !n.enabled() {
		return nil
	}
	runs, err := promfile.NewRuns("backup")
	if err != nil {
		return err
	}
	start := r.Started // sources run one after another
	for _, res := range r.Results {
		pr := promfile.Result{Source: res.Source, Start: start, Duration: res.Duration, Bytes: res.StoredBytes, Err: res.Err}
		if res.Err == nil {
			pr.Objects = 1
		}
		runs.Observe(pr)
		start = start.Add(res.Duration)
	}
	if err := runs.Write(ctx, n.config()); err != nil {
		return fmt.Errorf("write backup metrics: %w", err)
	}
	return nil
}

// NotifyMirror records a media mirror run: one sample set, source =
// r.Source.
func (n Notifier) NotifyMirror(ctx context.Context, r mirror.Report) error {
	if r.DryRun || !n.enabled() {
		return nil
	}
	runs, err := promfile.NewRuns("mirror")
	if err != nil {
		return err
	}
	pr := promfile.Result{Source: r.Source, Start: r.Started, Duration: r.Finished.Sub(r.Started),
		Bytes: r.CopiedBytes, Objects: int64(r.Copied), Failures: int64(r.Errors), Err: r.Err}
	if r.Interrupted && pr.Err == nil {
		pr.Err = context.Canceled
	}
	runs.Observe(pr)
	if err := runs.Write(ctx, n.config()); err != nil {
		return fmt.Errorf("write mirror metrics: %w", err)
	}
	return nil
}
