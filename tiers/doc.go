// Package tiers sizes and operates the droplet tiers of a Mastodon instance
// on DigitalOcean: start with PumaSizing{VCPU: 2, Nodes: 2, DBLimit: 97}.Plan()
// to get WEB_CONCURRENCY, MAX_THREADS and DB_POOL for your web nodes and to
// see whether they fit the database's connection limit and the nodes' memory.
//
// The rest follows the seed's layout (web, streaming, sidekiq, proxy and
// search droplets, a snapshot per tier, a load balancer in front):
//
//   - PumaSizing: the seed's rule (vCPU x 1.5 workers rounded down, x 3
//     threads), the connections it implies per node and per tier, the checks
//     against the connection limit (DBLimit, from pgpool.DO) and memory, and
//     computed alternatives: fewer threads, fewer workers, a bigger database,
//     a bigger droplet. Sizing.Demands feeds a pgpool.Budget.
//   - Client (NewClient): each tier's droplets by tag (Droplets, Inventory)
//     with size, region, status and private IP; its snapshots, newest first;
//     RefreshSnapshot (DropletActions.Snapshot, Actions.Get polling with a
//     timeout, pruning beyond the newest N); and scale out: PlanScaleOut
//     creates K droplets from the newest snapshot with the template's size,
//     region, VPC, tags and features, Apply carries it out (a dry run unless
//     ApplyOptions.Execute) and attaches web and proxy droplets to the load
//     balancer, by ID or, when the load balancer targets a tag, by tag.
//     Requests that get 429 or 5xx are retried (retry-after honoured);
//     droplet creates are retried only after checking the name is still free.
//   - OpenSearchProbe: cluster health, unassigned shards and Mastodon's
//     indices (ES_PREFIX) through opensearch-go.
//   - Check, Run and Report: health checks run concurrently, each with a
//     timeout; HTTPCheck (web /health, streaming /api/v1/streaming/health),
//     DBCheck (pgpool), RedisCheck (through the tunnel), SpacesCheck,
//     SidekiqCheck and the OpenSearch probe, all built from .env.production
//     by ChecksFromEnv; Metrics exports a Report to Prometheus and
//     PushUptimeKuma sends it to a push monitor.
//   - Exporter (NewExporter): the checks plus everything the deploy/
//     dashboards read about the instance in one registry: the check
//     gauges, the database's connection budget (promfile.Budget from
//     pgpool's Budget report) and, when serving, the Sidekiq and pool
//     collectors; Handler serves it, promfile.Config.Write leaves it in a
//     textfile or a Pushgateway after a cron run.
//
// Snapshots of a tier are named "<tier>-YYYYMMDD-HHMM" (UTC); a droplet
// snapshot that carries the tier's tag counts too. Scale-out names are
// "<tier>-01" ... "<tier>-NN" unless given, so the same request run twice
// creates nothing the second time. No error contains the API token or a
// password.
package tiers
