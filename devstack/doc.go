// Package devstack runs a DigitalOcean-hosted Mastodon's services on one
// machine, for trying fediops's programs and writing your own: call Start,
// point any tool at Stack.EnvFile (Mastodon's .env.production for the stack),
// and Close when done.
//
//	st, err := devstack.Start(ctx, devstack.Config{MySQL: true})
//	if err != nil { ... }
//	defer st.Close(false)
//	if _, err := st.Seed(ctx, devstack.SeedConfig{}); err != nil { ... }
//	// st.EnvFile, st.Web, st.DO.URL ... are ready for health, backup, provision
//
// Start brings up, all on 127.0.0.1 and on free ports:
//
//   - PostgreSQL 15 with a private CA behind pgBouncer 1.18 in transaction
//     mode (DigitalOcean's direct port 25060 and pool port 25061);
//   - Redis 7 speaking TLS only, reached through an in-process redistls
//     tunnel started from a stunnel-format file (DigitalOcean's managed
//     Redis and the stunnel in front of it);
//   - MariaDB 10.11 when Config.MySQL is set (a WriteFreely-like database);
//   - HTTP stand-ins for Spaces (S3), Backblaze B2 and the DigitalOcean API
//     (a database cluster "majel" with its CA, and the CDN endpoints), each
//     a real loopback listener that lives as long as the Stack;
//   - web and streaming stand-ins answering Mastodon's /health and
//     /api/v1/streaming/health.
//
// The servers are Debian's binaries (postgresql, pgbouncer, redis-server,
// mariadb-server; scripts/deps.sh installs them); a missing one fails Start
// with the apt-get line that installs it. As root they run as the postgres
// user. They die with the process that started them, even when it is
// killed, so a crashed program leaves no server behind.
//
// Start writes into Stack.Dir the files the programs read: .env.production
// (mode 0600; its secrets are the stack's own), seed.env.production (the
// seed document's settings, for provision to rewrite without touching the
// stack's), the tunnel's stunnel file, the age private key the backups are
// encrypted to, and stack.env, the shell exports (`. stack.env`) of
// everything a command line needs: addresses, the DO token and cluster, the
// direct port. Seed fills the stack with Mastodon-like data: a schema with
// accounts, statuses and media attachments, media objects in the Space,
// Sidekiq 7 and 8 queues and processes, WriteFreely posts.
package devstack
