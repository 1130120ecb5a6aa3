// Command provision fits a DigitalOcean account to a Mastodon .env.production: the cluster's CA in a file, a pool
// sized from the connection budget, the Spaces CDN endpoint and the DB_* lines. Without -apply it only plans; a
// second -apply has nothing to do. `migrate-env --to direct|pooled` switches the file for schema migrations and back.
//
// `provision -h` and `provision migrate-env -h` list the flags, the settings read and the exit statuses: 0 done,
// 1 a runtime failure (the API), 2 a usage or configuration error (flags, files, a pool over the cluster's budget).
package main

import (
	"context"

	"github.com/fediops/fediops/command"
)

const about = `usage: provision [flags]                  plan (and with -apply make) the DO side
       provision migrate-env --to direct|pooled [flags]`

func main() {
	command.Main("provision", func(ctx context.Context, p *command.Program, args []string) error {
		return p.Dispatch(ctx, about, []command.Command{
			{Name: "", Summary: "plan the CA file, the pool, the CDN endpoint and the DB_* lines; -apply makes them so", Run: runProvision},
			{Name: "migrate-env", Summary: "point .env.production at the database directly for migrations, and back", Run: runMigrateEnv},
		}, args)
	})
}
