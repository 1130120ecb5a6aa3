package sidekiqq_test

import (
	"fmt"
	"os"

	"github.com/fediops/fediops/sidekiqq"
)

// The seed's layout: one unit per worker node, scheduler on Decker only.
func Example() {
	l := sidekiqq.SeedLayout()
	if err := l.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	for _, u := range l.Units(sidekiqq.UnitOptions{}) {
		fmt.Printf("# %s: %s\n%s\n", u.Node, u.Name, u.Content)
	}
	fmt.Println(l.Processes[1].Command(sidekiqq.UnitOptions{LDPreload: "-"}))
	// Output:
	// # Scotty: mastodon-sidekiq.service
	// [Unit]
	// Description=mastodon-sidekiq on Scotty: default, push, ingress, mailers, pull
	// After=network.target
	//
	// [Service]
	// Type=simple
	// User=mastodon
	// WorkingDirectory=/home/mastodon/live
	// Environment="RAILS_ENV=production"
	// Environment="DB_POOL=25"
	// Environment="MALLOC_ARENA_MAX=2"
	// Environment="LD_PRELOAD=libjemalloc.so"
	// ExecStart=/home/mastodon/.rbenv/shims/bundle exec sidekiq -c 25 -q default,8 -q push,6 -q ingress,4 -q mailers,2 -q pull
	// TimeoutSec=15
	// Restart=always
	//
	// [Install]
	// WantedBy=multi-user.target
	//
	// # Decker: mastodon-sidekiq.service
	// [Unit]
	// Description=mastodon-sidekiq on Decker: default, push, ingress, mailers, pull, scheduler
	// After=network.target
	//
	// [Service]
	// Type=simple
	// User=mastodon
	// WorkingDirectory=/home/mastodon/live
	// Environment="RAILS_ENV=production"
	// Environment="DB_POOL=25"
	// Environment="MALLOC_ARENA_MAX=2"
	// Environment="LD_PRELOAD=libjemalloc.so"
	// ExecStart=/home/mastodon/.rbenv/shims/bundle exec sidekiq -c 25 -q default,8 -q push,6 -q ingress,4 -q mailers,2 -q pull -q scheduler
	// TimeoutSec=15
	// Restart=always
	//
	// [Install]
	// WantedBy=multi-user.target
	//
	// cd /home/mastodon/live && RAILS_ENV=production DB_POOL=25 MALLOC_ARENA_MAX=2 /home/mastodon/.rbenv/shims/bundle exec sidekiq -c 25 -q default,8 -q push,6 -q ingress,4 -q mailers,2 -q pull -q scheduler
}

// Plan the seed's two workers for a 40-connection share of the database.
func ExamplePlan() {
	l, err := sidekiqq.Plan(sidekiqq.PlanConfig{Mastodon: "4.4", Nodes: sidekiqq.SeedNodes(), Budget: 40})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	for _, p := range l.Processes {
		fmt.Println(p.Node, p.Unit, p.Threads, p.Serves("scheduler"))
	}
	fmt.Println("connections:", l.Connections())
	// Output:
	// Scotty mastodon-sidekiq-1.service 10 false
	// Scotty mastodon-sidekiq-2.service 10 false
	// Decker mastodon-sidekiq-1.service 10 true
	// Decker mastodon-sidekiq-2.service 10 false
	// connections: 40
}
