// Package promfile gets a cron job's metrics to Prometheus: set
// Config.Dir to node_exporter's textfile directory (or Config.PushURL to a
// Pushgateway), record each source of a run with Runs.Observe, then call
// Runs.Write once at the end of the run.
//
// Jobs that run from cron or a systemd timer (backup, mirror, health
// without -prometheus) are gone before Prometheus could scrape them. They
// leave their results behind instead, in one of two ways:
//
//   - a file Dir/fediops_<job>.prom in the text exposition format, which
//     node_exporter's textfile collector serves. The file is replaced
//     atomically (temporary file, fsync, rename), so the collector never
//     reads half of it.
//   - a push to a Prometheus Pushgateway, grouped by job (and by source for
//     Runs), which Prometheus scrapes with honor_labels: true.
//
// The format comes from Prometheus's own encoder (expfmt) over a registry's
// Gather, so whatever a registry can hold can be written. Runs holds the
// backup and mirror metrics (last run and last success time, duration,
// bytes, objects and failures per source) that the dashboards and alert
// rules in deploy/ use; Budget holds a database's connection budget;
// Config.Write writes any registry (the health checks' health.Metrics).
package promfile
