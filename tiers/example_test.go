package tiers_test

import (
	"context"
	"fmt"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/tiers"
)

// The seed's web tier: two 2 vCPU / 4 GiB nodes against a 4 GiB database
// (limit 97).
func ExamplePumaSizing() {
	s, err := tiers.PumaSizing{VCPU: 2, MemoryMiB: 4096, Nodes: 2, DBLimit: 97}.Plan()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(s.Env())
	fmt.Println("tier connections:", s.ConnectionsPerTier, "headroom:", s.Headroom, "fits:", s.Err() == nil)

	// 4 vCPU nodes would need 6 x 18 = 108 connections each.
	s, _ = tiers.PumaSizing{VCPU: 4, MemoryMiB: 8192, DBLimit: 97}.Plan()
	fmt.Println(s.Err())
	for _, a := range s.Alternatives {
		fmt.Printf("%s: WEB_CONCURRENCY=%d MAX_THREADS=%d DB_POOL=%d (%d of %d)\n",
			a.Kind, a.WebConcurrency, a.MaxThreads, a.DBPool, a.ConnectionsPerTier, a.DBLimit)
	}
	// Output:
	// WEB_CONCURRENCY=3
	// MAX_THREADS=9
	// DB_POOL=9
	// tier connections: 54 headroom: 43 fits: true
	// tiers: puma: 108 connections (1 x 6 workers x DB_POOL 18 + 0 other) exceed the limit 97 by 11: over the database connection budget
	// fewer-threads: WEB_CONCURRENCY=6 MAX_THREADS=16 DB_POOL=16 (96 of 97)
	// fewer-workers: WEB_CONCURRENCY=5 MAX_THREADS=18 DB_POOL=18 (90 of 97)
	// bigger-database: WEB_CONCURRENCY=6 MAX_THREADS=18 DB_POOL=18 (108 of 197)
}

// The seed's settings on a web node: what health -prometheus -db-size 4
// exports about the database's connection budget. Nothing is dialed until
// Run or a scrape.
func ExampleNewExporter() {
	env := map[string]string{
		"DB_HOST": "majel.db.ondigitalocean.test", "DB_PORT": "25061", "DB_NAME": "the_mastodon_connection_pool",
		"DB_USER": "the_mastodon_user", "DB_PASS": "Ourpassw0rd!sNoneofyourbu", "DB_SSLMODE": "require",
		"PREPARED_STATEMENTS": "false", "WEB_CONCURRENCY": "3", "MAX_THREADS": "9",
		"REDIS_HOST": "127.0.0.1", "REDIS_PORT": "6379",
	}
	e, err := tiers.NewExporter(context.Background(), fediops.MapLookup(env), tiers.ExportOptions{
		Serve: true, DBSizeGiB: 4, Cluster: "majel",
		HealthOptions: tiers.HealthOptions{Web: []string{}, Streaming: []string{}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close()
	fmt.Print(e.Budget)
	for _, c := range e.Checks {
		fmt.Println("check:", c.Name())
	}
	// Output:
	// limit 97: pools 27 + direct 0 = 27, headroom 70
	// pool the_mastodon_connection_pool: size 27, clients 27
	// check: database
	// check: redis
	// check: sidekiq
}
