// Package sidekiqq plans Mastodon's Sidekiq processes over worker nodes and
// reads their live state from Redis: call Plan with your nodes and the
// database connections Sidekiq may use, write the units it returns, then
// watch the cluster with Read, Check and NewCollector.
//
// # Layout
//
// Mastodon's queues and their weights come from config/sidekiq.yml
// (Releases, LookupRelease): default 8, push 6, ingress 4, mailers 2, pull,
// scheduler, and since 4.4 fasp (only with EXPERIMENTAL_FEATURES=fasp).
// SeedLayout is the seed document's two worker droplets, Scotty and Decker,
// with scheduler on Decker only. Plan sizes processes and threads from
// vCPUs, memory and a connection budget (see Plan for the heuristic), never
// lists scheduler twice (sidekiq-scheduler pushes periodic jobs once per
// process listening on it) and sets DB_POOL to each process's threads.
// Process.SystemdUnit renders a unit in the shape of Mastodon's
// dist/mastodon-sidekiq.service and Process.Command the same as a command
// line.
//
// # Statistics
//
// Read takes any go-redis client (a plain one to a local TLS tunnel such as
// redistls, or one speaking TLS) and needs at most two pipelined round trips
// for everything: queue sizes and latencies, processes, the retry, schedule
// and dead sets, processed and failed totals. It reads Sidekiq 6.5 to 8.1
// data (job timestamps as float seconds or integer milliseconds, detected
// per job; concurrency from the hash, info or capsules). What Sidekiq would
// not have written is reported in Stats.Problems, never a panic. Check
// turns a snapshot into health results: a heartbeat older than 30 s fails
// (Sidekiq deletes a process's record 60 s after its last beat, so a
// threshold at 60 s could never fail), and Remember, run between Read and
// Check, keeps the processes seen in a Redis hash so that the next run
// reports one that vanished with nothing started in its place. With
// EXPERIMENTAL_FEATURES=fasp the fasp queue must be served, and
// Layout.Notes says so of a layout that lists it nowhere. Collector
// exports a snapshot to Prometheus under the names of the common Sidekiq
// exporters.
//
// # REDIS_NAMESPACE
//
// Mastodon 4.3 (Sidekiq 6.5 with redis-namespace) puts every Sidekiq key
// under REDIS_NAMESPACE when it is set: mastodon_production:queues,
// mastodon_production:queue:default, mastodon_production:processes and the
// process hashes, mastodon_production:retry, mastodon_production:stat:processed...
// NamespaceFromEnv reads it; ReadNamespace, CollectorOptions.Namespace and
// CheckConfig.Namespace (for tiers.SidekiqCheck) read under it, Read reads
// without one. The option is deprecated: Mastodon's documentation says so
// since 4.3, whose later patch releases warn about it at boot [?]; 4.4 and later
// no longer honour it and refuse to start while it is set ("the
// REDIS_NAMESPACE environment variable is no longer supported, and a
// migration is required") until the keys are renamed
// (github.com/mastodon/redis_namespace_migration) and the variable removed;
// from then on there is no namespace to read.
package sidekiqq
