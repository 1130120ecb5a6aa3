// Package droplets operates the droplet tiers of a Mastodon instance on
// DigitalOcean: make a client with NewClient(Config{API: doapi.Options{Token:
// token}}), then list a tier with Inventory, refresh its snapshot with
// RefreshSnapshot, or grow it with PlanScaleOut and Apply.
//
// The seed's tiers (web, streaming, sidekiq, proxy and search droplets)
// are found by tag (Config.Tags, DefaultTags):
//
//   - Droplets and Inventory: each tier's droplets with size, region,
//     status and private IP, and its snapshots, newest first.
//   - RefreshSnapshot: DropletActions.Snapshot, then Actions.Get polling
//     with a timeout, then pruning beyond the newest N. Snapshots are named
//     "<tier>-YYYYMMDD-HHMM" (UTC); a snapshot that carries the tier's tag
//     counts too and is never pruned.
//   - PlanScaleOut and Apply: K droplets from the newest snapshot with the
//     template's size, region, VPC, tags and features (a dry run unless
//     ApplyOptions.Execute), attached to the load balancer by ID or, when
//     the load balancer targets a tag, by tag. Names are
//     "<host>-01" ... "<host>-NN" with host = Hostname(tier), so the same
//     request run twice creates nothing the second time, and a tier named
//     with "_" still gets names DO accepts.
//
// Requests that get 429 or 5xx are retried (Retry-After honoured) by the
// doapi client; droplet creates are retried only after checking the name
// is still free. No error contains the API token.
package droplets
