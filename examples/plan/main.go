// Command plan prints deployment plans for a Mastodon instance, one
// subcommand per tier:
//
//	plan web -vcpu 2 -db-connections 97 -nodes 2   Puma's settings against the DB budget
//	plan sidekiq                                   the seed's Sidekiq layout (Scotty and Decker)
//	plan sidekiq -budget 40                        the seed's nodes sized to 40 DB connections
//	plan sidekiq -node Scotty:2:4G -node Decker:2:4G -node Riker:4:8G -budget 90 -json
//	plan budget -vcpu 1,2,4 -db-size 2,4,8 -out budget.png   the budget as a picture
//
// `plan COMMAND -h` explains a subcommand's flags, the environment it
// reads and its exit statuses: 0 done, 1 a plan that does not fit (plan
// web), 2 a usage or configuration error.
package main

import (
	"context"

	"github.com/fediops/fediops/command"
)

const about = `usage: plan COMMAND [flags]

Prints deployment plans for a Mastodon instance: one command per tier.
Exit status: 0 done, 1 a plan that does not fit, 2 a usage or configuration error.`

func main() {
	command.Main("plan", func(ctx context.Context, p *command.Program, args []string) error {
		return p.Dispatch(ctx, about, []command.Command{
			{Name: "web", Summary: "Puma WEB_CONCURRENCY, MAX_THREADS and DB_POOL per web node, checked against the DB budget", Run: runWeb},
			{Name: "sidekiq", Summary: "Sidekiq processes, systemd units and command lines per worker node", Run: runSidekiq},
			{Name: "budget", Summary: "the DB connection budget as a picture: web, Sidekiq, streaming and direct against the cluster's limit", Run: runBudget},
		}, args)
	})
}
