// Package demo runs fediops end to end on a local stand-in of a
// DigitalOcean-hosted Mastodon: give Run a testenv.Stack and an io.Writer,
// read the Report it returns (Report.OK, Report.WriteTable).
//
// Run brings up PostgreSQL behind pgBouncer (transaction mode, TLS with a
// private CA), a TLS-only Redis reached through an in-process redistls tunnel
// started from a stunnel-format file, s3fake as Spaces, b2fake as Backblaze B2
// and, when Config.MySQL is set, MariaDB. It writes a .env.production for
// that stack and reads it back with internal/envfile, so every later step
// configures itself through the same FromEnv functions an admin's tools use
// (pgpool.FromEnv, spaces.ConfigFromEnv, b2store.ConfigFromEnv,
// tiers.ChecksFromEnv, pgdump.SourceFromEnv, rdb.SourceFromEnv). It seeds a small Mastodon-like
// schema over the direct connection, media objects through spaces.Client.Put
// and Sidekiq 7/8 data through the tunnel, then runs five steps, each timed:
//
//  1. plan: tiers.PumaSizing for two 2 vCPU web nodes against the cluster's
//     pgpool budget, and sidekiqq.SeedLayout's summary;
//  2. health: tiers checks (pooled database ping, Redis PING through the
//     tunnel, Spaces HEAD, Sidekiq), with httptest stand-ins for web and
//     streaming;
//  3. backup: backup.Runner with pgdump's Source over pgpool's direct
//     connection, rdb's through the tunnel and mysqldump's, to B2, sealed
//     by agezstd to an age key made for the run;
//  4. restore drill: pgdump's Drill into a scratch database;
//  5. mirror: backup/mirror from the Spaces bucket to a B2 bucket, then a
//     second, incremental pass that must copy nothing.
//
// Everything Run starts besides the Stack (tunnel, fakes, HTTP stand-ins)
// stops before it returns; the caller closes the Stack. No secret is ever
// printed: the .env is shown through envfile's Redacted.
package demo
