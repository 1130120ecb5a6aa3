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
//
// `health -h` lists the flags, the settings it reads and its exit
// statuses: 0 every check passed, 1 a check failed, 2 a usage or
// configuration error.
package main

import "github.com/fediops/fediops/command"

func main() { command.Main("health", runHealth) }
