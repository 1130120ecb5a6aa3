// Package tiers does the capacity arithmetic of a Mastodon instance's web
// tier: start with PumaSizing{VCPU: 2, Nodes: 2, DBLimit: 97}.Plan() to get
// WEB_CONCURRENCY, MAX_THREADS and DB_POOL for your web nodes and to see
// whether they fit the database's connection limit and the nodes' memory.
//
// PumaSizing applies the seed's rule (vCPU x 1.5 workers rounded down, x 3
// threads), counts the connections it implies per node and per tier,
// checks them against the connection limit (DBLimit, from pgpool.DO) and
// the memory, and computes alternatives where they do not fit: fewer
// threads, fewer workers, a bigger database, a bigger droplet.
// Sizing.Demands feeds a pgpool.Budget.
//
// The other jobs of the tiers live in their own packages:
// tiers/droplets operates the droplets (inventory by tag, snapshots,
// scale-out behind the load balancer) and tiers/health checks the running
// instance (the health-check framework, the checks built from
// .env.production, the OpenSearch probe, the Prometheus exporter and the
// Uptime Kuma push).
package tiers
