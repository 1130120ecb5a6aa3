// Package fediops is a toolkit for running a Mastodon instance on
// DigitalOcean managed services; import the package for the service you
// operate, or run one of the programs under examples/.
//
// The module follows one instance's layout (managed PostgreSQL behind DO's
// pgBouncer pool, TLS-only managed Redis, Spaces with a CDN, Sidekiq worker
// droplets, backups to Backblaze B2) and maps it to packages:
//
//   - pgpool: pooled (pgBouncer, transaction mode, port 25061) and direct
//     (25060) pgx configurations from .env.production, DO's CA, migration
//     mode, the connection budget and pool management through DO's API.
//   - doapi: the one DigitalOcean API client (retries, timeouts, https
//     unless loopback) and its error type.
//   - redistls: the stunnel replacement, a TLS tunnel for Redis that
//     resolves the name for every connection and follows a failover, plus
//     go-redis options for clients that speak TLS themselves.
//   - spaces: the S3 client for Spaces from Mastodon's S3_* settings,
//     public URLs through S3_ALIAS_HOST, and the CDN endpoint.
//   - backup: streaming, compressed, age-encrypted database backups to B2
//     with retention, restore drills and Slack: a core on the standard
//     library alone, dump tools (backup/pgdump, backup/rdb,
//     backup/mysqldump), stores (backup/b2store, backup/filestore) and the
//     media mirror (backup/mirror) around it.
//   - sidekiqq: the Sidekiq queue layout over worker nodes, its systemd
//     units, and live queue statistics read from Redis.
//   - tiers: Puma sizing against the connection budget; tiers/droplets:
//     droplet tiers by tag, snapshots, scale-out behind the load balancer;
//     tiers/health: the health checks, OpenSearch included, their exporter.
//   - systemd: the one unit renderer (services, timers, Mastodon's
//     sandbox, ExecStart quoted for systemd) behind every printed unit.
//   - mastometrics: the settings that turn on Mastodon's own Prometheus
//     exporter (4.4+) or its StatsD (4.2), per tier, and Prometheus'
//     scrape targets written from the droplet inventory.
//   - chart: the pictures, in one style: the connection budget as a PNG
//     (plan budget), and what the dashboards' pictures share.
//   - devstack: the whole layout on one machine (real PostgreSQL,
//     pgBouncer, TLS Redis behind the tunnel, MariaDB; stand-ins for
//     Spaces, B2, the DO API, web and streaming) with its .env.production,
//     for the demo, the README's test and your own experiments.
//
// # Settings
//
// This package is the one reader of Mastodon's settings. ReadEnv reads
// .env.production the way Rails and Sidekiq read it (Ruby dotenv's quoting,
// $NAME expansion and comments), with the process environment winning, as
// a systemd Environment= line wins for Rails; Lint reports each value the
// streaming server (node's dotenv) reads differently, without printing a
// secret. Every package builds its configuration from a Lookup, and each
// constructor is spelled TFromEnv(env Lookup, ...) for the T it returns:
// pgpool.ConfigFromEnv reads DB_*, redistls.ClientOptionsFromEnv REDIS_*,
// spaces.ConfigFromEnv S3_*; no other package reads those variables.
//
// # Errors
//
// An error says what was being done to which object, once per layer, and
// the program adds its own name once: "backup: restore pg/x.zst.age:
// object does not exist". Sentinel errors (errors.Is) carry no package
// prefix, and no error holds a password, key or token.
//
// Inside the module, internal/envfile is the engine behind ReadEnv;
// internal/testenv starts the real servers the tests and devstack use;
// internal/s3fake and internal/b2fake are the local stand-ins for Spaces and
// B2; internal/mastofake stands in for Mastodon's metric sources;
// internal/promfile leaves cron jobs' metrics for node_exporter or a
// Pushgateway. deploy/ holds the Prometheus configuration, Grafana
// dashboards and alert rules for the metrics the packages and Mastodon
// export.
//
// The programs under examples/ (demo, provision, tunnel, backup, plan,
// health) are thin mains over these packages: they parse flags, read the
// settings with ReadEnv, print Lint's findings, build the package configs
// and call them. Package command holds what they share (one exit rule:
// 0 done, 1 a runtime failure, 2 a usage or configuration error, a
// program's own statuses beyond them, such as backup's 3; the -h
// text, the signal context, the log format, the listen and URL checks);
// no other package parses flags or exits. They import no internal package,
// so any of them can be copied into another module; internal/e2e runs them
// as built, and internal/readmetest runs every command README.md shows on
// `demo -serve`'s stack.
package fediops
