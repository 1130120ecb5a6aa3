package sidekiqq

import (
	"testing"

	"github.com/fediops/fediops/pgpool"
)

func TestDemandsFitPgpoolBudget(t *testing.T) {
	seed := SeedLayout().Demands()
	if len(seed) != 2 || seed[0] != pgpool.Sidekiq("Scotty", 1, 25) || seed[1] != pgpool.Sidekiq("Decker", 1, 25) {
		t.Fatalf("seed demands %v", seed)
	}
	// The seed's DB (4 GB: 97 connections) connected to directly by two web
	// nodes (WEB_CONCURRENCY 3 × MAX_THREADS 9) and streaming (DB_POOL 10):
	// what is left is Sidekiq's budget.
	b := pgpool.NewBudget(4).Add(pgpool.Web("kirk", 3, 9), pgpool.Web("spock", 3, 9), pgpool.Streaming("spock", 1, 10))
	left := b.Report().Headroom
	if left != 97-64 {
		t.Fatalf("headroom %d", left)
	}
	// The seed's layout at dist defaults (50) does not fit; a plan does.
	if err := b.Add(seed...).Report().Err(); err == nil {
		t.Error("seed layout at -c 25 fits 33 connections?")
	}
	l, err := Plan(PlanConfig{Nodes: SeedNodes(), Budget: left})
	if err != nil {
		t.Fatal(err)
	}
	d := l.Demands()
	if len(d) != 3 || d[0] != pgpool.Sidekiq("Scotty", 2, 8) { // Scotty 2×8, Decker 8 and 9 (33 = 8+8+8+9)
		t.Errorf("demands %v", d)
	}
	r := b.Add(d...).Report()
	if err := r.Err(); err != nil || r.Headroom != 0 {
		t.Errorf("planned layout: %v\n%s", err, r)
	}
}
