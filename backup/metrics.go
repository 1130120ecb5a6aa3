package backup

import (
	"context"
	"fmt"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/internal/promfile"
)

// MetricsNotifier leaves each run's results for Prometheus, so that a run
// from cron can be graphed and alerted on (deploy/grafana, deploy/prometheus):
// in node_exporter's textfile directory Dir (fediops_backup.prom,
// fediops_mirror.prom, replaced atomically) and/or at the Pushgateway
// PushURL. Add it to Runner.Notifiers and MirrorConfig.Notifiers
// (MetricsNotifierFromEnv reads both from the environment). With neither set it
// does nothing.
//
// Per source: fediops_backup_last_success_timestamp_seconds,
// _last_run_timestamp_seconds, _success, _duration_seconds, _bytes (stored),
// _objects, _failures; the same with fediops_mirror_ for mirror runs
// (objects and bytes copied, objects failed). A failed run keeps the
// previous success time. Dry runs are not recorded.
type MetricsNotifier struct {
	Dir      string            // node_exporter --collector.textfile.directory
	PushURL  string            // Pushgateway base URL; credentials in it go as basic auth
	Grouping map[string]string // extra Pushgateway grouping labels, e.g. {"instance": host}
}

// MetricsNotifierFromEnv is the MetricsNotifier that FEDIOPS_METRICS_DIR and
// FEDIOPS_PUSHGATEWAY_URL describe, read through env.
// With neither set it does nothing, so a program can always add it.
func MetricsNotifierFromEnv(env fediops.Lookup) MetricsNotifier {
	var n MetricsNotifier
	n.Dir, _ = env(promfile.EnvDir)
	n.PushURL, _ = env(promfile.EnvPushURL)
	return n
}

func (n MetricsNotifier) enabled() bool { return n.Dir != "" || n.PushURL != "" }

func (n MetricsNotifier) config() promfile.Config {
	return promfile.Config{Dir: n.Dir, PushURL: n.PushURL, Grouping: n.Grouping}
}

// Notify implements Notifier: one sample set per source of r.
func (n MetricsNotifier) Notify(ctx context.Context, r Report) error {
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
		return fmt.Errorf("backup: metrics: %w", err)
	}
	return nil
}

// NotifyMirror implements MirrorNotifier: one sample set, source = r.Source.
func (n MetricsNotifier) NotifyMirror(ctx context.Context, r MirrorReport) error {
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
		return fmt.Errorf("backup: mirror metrics: %w", err)
	}
	return nil
}
