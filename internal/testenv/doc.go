// Package testenv starts the real servers fediops's tests and demo run: add
// `func TestMain(m *testing.M) { testenv.Main(m) }` to a test package, then
// ask for a server with PG, Bouncer, RedisTLS, NewRedis or Maria.
//
// The servers are Debian's binaries, started once per test binary on free
// 127.0.0.1 ports and stopped when its tests end (their logs are kept and
// their paths printed when a test failed):
//
//   - PostgreSQL 15 with SSL on and SCRAM logins over TLS only, its
//     certificate signed by a per-run private CA (DigitalOcean's direct port
//     25060);
//   - pgBouncer 1.18 in transaction mode with client TLS and SCRAM, serving
//     the pool the_mastodon_connection_pool (DO's pool port 25061);
//   - Redis 7 with TLS only and a password for user default, with its own
//     CA; NewRedis starts more for failover tests (ReplicaOf, Promote,
//     Stop, Kill), and Stack.StartRedisAt one on a given loopback address
//     and port (nodes on 127.0.0.2 and 127.0.0.3 sharing a port);
//   - MariaDB 10.11 for mysqldump.
//
// Run as root, the servers run as the postgres user (initdb, postgres,
// pgbouncer and mariadbd refuse root). A missing binary fails the test with
// the apt-get line that installs it. FEDIOPS_TEST_POSTGRES_URL,
// FEDIOPS_TEST_PGBOUNCER_URL, FEDIOPS_TEST_REDIS_URL and
// FEDIOPS_TEST_MYSQL_DSN replace a server with one of your own; the build
// tag testcontainers starts containers instead of local binaries.
//
// Programs that are not tests (the demo) use NewStack and Close.
package testenv
