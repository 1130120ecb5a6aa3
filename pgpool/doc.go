// Package pgpool connects Go programs to a DigitalOcean managed PostgreSQL
// the way Mastodon's .env.production describes it: call ConfigFromEnv with
// (*fediops.Env).Lookup, open Config.Pooled for everyday queries
// through DO's pgBouncer pool and Config.Direct for migrations and dumps.
//
// # Pooled and direct
//
// DO puts pgBouncer in transaction mode on port 25061, where DB_NAME is
// the pool's name; the database itself listens on 25060 under its own
// name. ConfigFromEnv reads Mastodon's settings (DATABASE_URL, whose parts win,
// then DB_HOST localhost, DB_PORT 5432, DB_NAME mastodon_production,
// DB_USER mastodon, DB_PASS, DB_SSLMODE prefer, PREPARED_STATEMENTS true)
// and derives the direct endpoint by DO's convention: port 25061 becomes
// 25060 and the pool name becomes the database named by
// FEDIOPS_DB_DIRECT_NAME. That variable is needed because only DO's API
// knows which database a pool maps to ((*Manager).DirectDatabase reads
// it). FEDIOPS_DB_POOLED, FEDIOPS_DB_DIRECT_PORT and FEDIOPS_DB_DIRECT_HOST
// cover a pool that is not on 25061; Options override every variable.
//
// On the pool port ConfigFromEnv refuses PREPARED_STATEMENTS unset or true
// (ErrPreparedStatements: Rails would fail with `prepared statement
// "a1" already exists`) and a DB_NAME that is not a pool (ErrNotPoolName),
// naming the variable. It reads PREPARED_STATEMENTS as Rails does, through
// YAML: only false/no/off spellings are false, "0" is true.
// ProbePreparedStatements asks a pool whether it would carry prepared
// statements across transactions (pgBouncer 1.21+ can; DO does not say).
//
// # Why QueryExecModeExec
//
// A transaction pool hands the client a different server connection after
// every transaction, so nothing may outlive one: no named prepared
// statement, no SET, no LISTEN, no advisory lock, no temporary table. The
// pooled config sets pgx's DefaultQueryExecMode to QueryExecModeExec and
// both statement caches to 0. Exec sends Parse of the unnamed statement,
// Bind, Describe, Execute and Sync in one message batch: one round trip,
// ending at a Sync, so pgBouncer sees the whole query on one server
// connection and the unnamed statement is gone when it is done.
// Parameters travel separately from the SQL (text format, encoded from the
// Go values, their types inferred by the server), so there is no
// client-side quoting.
//
// The other modes were considered: CacheStatement (pgx's default) and
// CacheDescribe keep per-connection state and break; the test shows the
// default failing on thousands of 10,000 queries. DescribeExec needs two
// round trips with a Sync between them, after which pgBouncer may switch
// server connections outside a transaction and lose the unnamed
// statement. SimpleProtocol is also safe and one message instead of five:
// beside pgbench it cost client, pgBouncer and PostgreSQL together about
// 5-15% less CPU per query than Exec (BENCHMARKS.md). But it interpolates
// parameters into the SQL text on the client and sends []byte as bytea,
// while Exec keeps parameters apart from the SQL and already matches
// pgbench -M extended; so Exec is the default, and a hot query that needs
// the difference can pass pgx.QueryExecModeSimpleProtocol as its first
// argument.
//
// Inside a transaction, use SET LOCAL for settings; use Config.Direct for
// session state and schema changes. ConfigFromEnv installs a SessionGuard tracer
// on the pooled config that logs a warning for SET, LISTEN, PREPARE, temp
// tables or session advisory locks run outside a transaction (replace
// ConnConfig.Tracer to use your own).
//
// # TLS
//
// TLS is verify-full against the cluster's CA by default: from
// Options.CAPEM or Options.CAFile, else FEDIOPS_DB_CA_FILE, DATABASE_URL's
// sslrootcert, PGSSLROOTCERT or NODE_EXTRA_CA_CERTS (where the seed keeps
// DO's CA), even when DB_SSLMODE=require as in DO's own URIs. A named but
// missing or invalid CA file is an error (ErrBadCA). DB_SSLMODE=require
// without any CA connects unverified and logs a warning through
// Options.Logger; prefer without a CA is ErrNoCA. (*Manager).FetchCA
// writes the CA from DO's API.
//
// # Migration mode
//
// Schema migrations must bypass the pool. ToDirect rewrites .env.production
// for them (DB_PORT to the direct port, DB_NAME to the database,
// PREPARED_STATEMENTS removed), keeping the original in a 0600 sidecar;
// ToPooled writes the exact original bytes back, and refuses if the file
// was edited in between.
//
// # Connection budget
//
// DO allows 25 connections per GiB minus 3 (Limits, DO), shared by the
// sizes of all pools and every direct connection. Budget adds the demand
// (Web, Sidekiq, Streaming, Direct) and Report gives the headroom or the
// exact overflow, naming the variables; (*Manager).PlanPools and Apply
// create and resize pools through godo within it. DO's figures are not all
// confirmed: LimitsFromEnv takes FEDIOPS_DB_CONN_LIMIT and
// FEDIOPS_DB_MAX_POOLS into Manager.Limits.
//
// # Provisioning
//
// A provisioning program asks a Manager for the cluster's Host, the Room
// a pool may take (limit minus the other pools and Reserve), whether the
// CA file is current (CAChanged, the dry run of FetchCA), then plans the
// pool, and writes PooledSettings into .env.production with
// (*fediops.Env).Set; examples/provision does exactly that.
//
// # Health
//
// Check pings through the pool and reads SHOW POOLS and SHOW STATS from
// pgBouncer's admin console where it is reachable (not on DO);
// NewCollector exports the client-side pool's statistics to Prometheus.
//
// No error or log line of this package contains the database password or
// the API token.
package pgpool
