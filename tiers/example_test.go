package tiers_test

import (
	"fmt"

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
	// puma: 108 connections (1 x 6 workers x DB_POOL 18 + 0 other) exceed the limit 97 by 11: over the database connection budget
	// fewer-threads: WEB_CONCURRENCY=6 MAX_THREADS=16 DB_POOL=16 (96 of 97)
	// fewer-workers: WEB_CONCURRENCY=5 MAX_THREADS=18 DB_POOL=18 (90 of 97)
	// bigger-database: WEB_CONCURRENCY=6 MAX_THREADS=18 DB_POOL=18 (108 of 197)
}
