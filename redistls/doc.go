// Package redistls replaces stunnel in front of a TLS-only managed Redis:
// point it at your existing /etc/stunnel/redis.conf (ReadConfig, New,
// Run) and Mastodon keeps talking plain Redis to 127.0.0.1:6379.
//
// For every client connection the Tunnel resolves the backend name again
// (what stunnel's "delay = yes" does): /etc/hosts is checked on every
// connection and read again once it changed (Go's own resolver keeps it
// for 5 s), and DNS is asked afresh (Go keeps no DNS answers), with or
// without cgo. It verifies the certificate against CAfile or the system
// roots (stunnel verifies nothing without verifyChain; here skipping
// needs Config.InsecureSkipVerify), resumes TLS sessions, and copies both
// ways in an epoll event loop: four syscalls a request, and no goroutine
// or buffer held by an idle connection. The Tunnel runs on Linux only
// (Start says so elsewhere); ParseConfig, ClientOptionsFromEnv and
// DropOnReadOnly work everywhere.
//
// A monitor closes the client connections pinned to a node that is no
// longer the primary, idle ones included: the name resolves elsewhere,
// ROLE answers "slave" (for a node a probe saw as the primary, or one that
// sent -READONLY: a name that points at a replica on purpose is left
// alone), a reply carried -READONLY, or the node stopped answering
// (refused at once, timeouts after 3 probe budgets). It probes every
// Config.ProbeInterval (default 250 ms; the tunnel program's
// -probe-interval) and at once when a connection saw -READONLY or lost its
// backend. A failover demotes or loses the primary before its name moves:
// while the name still resolves only to such a node, a new connection
// waits, the name resolved again every 20 ms, and is dialed as soon as
// the name moves or the node answers as the primary again; after the
// service's TIMEOUTconnect (default 10 s) it is dialed where the name
// points, as stunnel would. So clients that retry (go-redis does)
// reconnect once and see no error, instead of landing on the old node
// again and again. The ROLE probe and /healthz authenticate with
// Config.Username/Password (REDIS_USER/REDIS_PASSWORD); without a
// password only the name, -READONLY and dropped connections are watched.
//
// The configuration is stunnel's: global options (pid, debug, foreground,
// include) and defaults before the first [section]; per service client,
// accept, connect, delay, CAfile, verifyChain, checkHost, sni,
// TIMEOUTconnect, TIMEOUTidle and TIMEOUTclose. Any other key is an error
// naming its file:line; Config.Validate lists every problem at once (bad
// lines, CA files that do not load, addresses), and Config.Notes says what
// a valid file still deserves a look for (no CAfile: the system roots
// verify the backend, where stunnel verified nothing). Every service must say client = yes; delay is
// always on. "accept = 6379" means every IPv4 address, as in stunnel, and
// is refused unless Config.AllowNonLoopback is set. SIGHUP-style Reload
// keeps open connections; Shutdown closes each connection once no command
// waits for its reply.
//
// Handler serves /healthz (TLS, AUTH and PING through every service) and
// /metrics (redistls_connections_active, redistls_dials_total,
// redistls_dial_errors_total{reason}, redistls_failovers_total{reason},
// redistls_failover_closed_connections_total,
// redistls_connections_held_total{outcome}, redistls_bytes_total{direction});
// every labelled series starts at 0 when its service starts. A failover
// counts once per node judged no longer the primary, until it is the
// primary again; the closed-connections counter counts every connection
// the monitor closed, and the held counter every connection that waited
// for the name to move (released, timeout, client_closed).
//
// Go programs that speak TLS to Redis themselves use ClientOptionsFromEnv and
// DropOnReadOnly instead of the tunnel.
package redistls
