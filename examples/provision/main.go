// Command provision fits a DigitalOcean account to a Mastodon .env.production: the cluster's CA in a file, a pool
// sized from the connection budget, the Spaces CDN endpoint and the DB_* lines. Without -apply it only plans; a
// second -apply has nothing to do. `migrate-env --to direct|pooled` switches the file for schema migrations and back;
// `targets -dir DIR` writes Prometheus' scrape targets (deploy/prometheus/prometheus.yml's targets/) from the droplets
// found by their tags.
//
// `provision -h`, `provision migrate-env -h` and `provision targets -h` list the flags, the settings read and the
// exit statuses: 0 done, 1 a runtime failure (the API), 2 a usage or configuration error (flags, files, a pool over
// the cluster's budget).
package main

import (
	"context"

	"github.com/fediops/fediops/command"
)

const about = `usage: provision [flags]                  plan (and with -apply make) the DO side
       provision migrate-env --to direct|pooled [flags]
       provision targets -dir DIR [flags]       Prometheus' scrape targets from the droplets`

func main() {
	command.Main("provision", func(ctx context.Context, p *command.Program, args []string) error {
		return p.Dispatch(ctx, about, []command.Command{
			{Name: "", Summary: "plan the CA file, the pool, the CDN endpoint and the DB_* lines; -apply makes them so", Run: runProvision},
			{Name: "migrate-env", Summary: "point .env.production at the database directly for migrations, and back", Run: runMigrateEnv},
			{Name: "targets", Summary: "write Prometheus' scrape targets (file_sd) from the droplets found by their tags", Run: runTargets},
		}, args)
	})
}
