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
//     mode, the connection budget and pool management through godo.
//   - redistls: the stunnel replacement, a TLS tunnel for Redis that
//     resolves the name for every connection and follows a failover, plus
//     go-redis options for clients that speak TLS themselves.
//   - spaces: the S3 client for Spaces from Mastodon's S3_* settings,
//     public URLs through S3_ALIAS_HOST, and the CDN endpoint.
//   - backup: streaming, compressed, age-encrypted database backups to B2
//     with retention, restore drills and Slack; the media mirror.
//   - sidekiqq: the Sidekiq queue layout over worker nodes, its systemd
//     units, and live queue statistics read from Redis.
//   - tiers: Puma sizing, droplet tiers from snapshots, the load balancer
//     and per-tier health, OpenSearch included.
//
// Inside the module: internal/envfile reads and writes .env.production the
// way Mastodon reads it; internal/testenv starts the real servers the tests
// and the demo use; internal/s3fake and internal/b2fake are the local
// stand-ins for Spaces and B2; internal/promfile leaves cron jobs' metrics
// for node_exporter or a Pushgateway; internal/demo is the README's main job.
// deploy/ holds Grafana dashboards and Prometheus alert rules for the
// metrics the packages export.
//
// The programs under examples/ (demo, provision, tunnel, backup, plan,
// health) are thin mains over these packages: they parse flags, build the
// package configs and call them.
package fediops
