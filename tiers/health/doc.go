// Package health checks a running Mastodon instance: build its checks from
// .env.production with ChecksFromEnv(ctx, env.Lookup, Options{}), run them
// with Run and print the Report with WriteTable.
//
// The parts:
//
//   - Check, CheckFunc, ErrCheck, Warn: one check of a part, healthy (nil),
//     degraded (Warn) or failing (any other error).
//   - Run and Report: every check concurrently, each under its own
//     timeout; a check that ignores its context is abandoned and fails
//     with ErrCheckTimeout. Report.Summary, WriteTable, WriteJSON.
//   - The checks of an instance: HTTPCheck (WebHealth for Puma's /health,
//     StreamingHealth for /api/v1/streaming/health), DBCheck (pgpool),
//     RedisCheck (through the tunnel), SidekiqCheck (queues, scheduler,
//     heartbeats), SpacesCheck, and OpenSearchProbe (cluster health and
//     Mastodon's indices under ES_PREFIX), all built from the settings by
//     ChecksFromEnv; a part whose settings are wrong becomes a failing
//     check that names the variable.
//   - Metrics exports a Report as fediops_check_* gauges; PushUptimeKuma
//     sends it to an Uptime Kuma push monitor.
//   - Exporter (NewExporter): the checks plus the database's connection
//     budget and, when serving, the Sidekiq and pool collectors in one
//     Prometheus registry; Handler serves it, WriteMetrics leaves it in a
//     textfile directory or a Pushgateway after a cron run.
//
// No error contains a password or a push token.
package health
