// Package tiers sizes and operates the droplet tiers of a Mastodon instance
// on DigitalOcean: start with PumaSizing{VCPU: 2, Nodes: 2, DBLimit: 97}.Plan()
// to get WEB_CONCURRENCY, MAX_THREADS and DB_POOL for your web nodes and see
// whether they fit the database's connection limit and the nodes' memory.
//
// The rest follows the seed's layout (web, streaming, sidekiq, proxy and
// search droplets, a snapshot per tier, a load balancer in front):
//
//   - PumaSizing: the seed's rule (vCPU x 1.5 workers, x 3 threads), the
//     connections it implies per node and per tier, the checks against the
//     connection budget and memory, and computed alternatives.
//   - Client: inventory of each tier's droplets by tag, the newest snapshot
//     per tier, snapshot refresh with pruning, and scale out from the newest
//     snapshot (Plan, then Apply; a dry run unless told to execute) with the
//     load balancer attached, all through godo.
//   - OpenSearchProbe: cluster health, unassigned shards and Mastodon's
//     indices through opensearch-go.
//   - Check, Run and Report: every health check of a tier (HTTP, database,
//     Redis, Spaces, Sidekiq, OpenSearch) run concurrently, each with a
//     timeout, gathered into one report.
//
// Snapshots of a tier are named "<tier>-YYYYMMDD-HHMM" (UTC); a droplet
// snapshot that carries the tier's tag also counts. Every godo call is made
// with ctx and wrapped with the operation in its error.
package tiers
