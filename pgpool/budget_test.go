package pgpool_test

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/internal/dofake"
	"github.com/fediops/fediops/pgpool"
)

func TestLimits(t *testing.T) {
	for gib, want := range map[int]int{1: 22, 2: 47, 4: 97, 8: 197, 16: 397, 32: 797, 64: 997, 128: 997} {
		if got := pgpool.DO.Connections(gib); got != want {
			t.Errorf("%d GiB: %d, want %d", gib, got, want)
		}
	}
	l := pgpool.DO
	l.Cap = 0 // the [?] cap overridden: the plain formula
	if got := l.Connections(64); got != 1597 {
		t.Errorf("uncapped 64 GiB: %d", got)
	}
	b, err := pgpool.BudgetFromEnv(fediops.MapLookup(map[string]string{pgpool.EnvConnLimit: "1597", pgpool.EnvMaxPools: "30"}), 64)
	if err != nil || b.Limit != 1597 || b.MaxPools != 30 {
		t.Errorf("BudgetFromEnv: %+v %v", b, err)
	}
	if _, err := pgpool.BudgetFromEnv(fediops.MapLookup(map[string]string{pgpool.EnvConnLimit: "many"}), 64); !errors.Is(err, pgpool.ErrInvalid) || !strings.Contains(err.Error(), pgpool.EnvConnLimit) {
		t.Errorf("bad limit: %v", err)
	}
	for slug, want := range map[string]int{"db-s-1vcpu-1gb": 1, "db-s-2vcpu-4gb": 4, "gd-8vcpu-32gb": 32, "so1_5-4vcpu-32gb": 32} {
		if got, err := pgpool.SizeGiB(slug); err != nil || got != want {
			t.Errorf("%s: %d %v", slug, got, err)
		}
	}
	if _, err := pgpool.SizeGiB("db-s-small"); !errors.Is(err, pgpool.ErrInvalid) {
		t.Errorf("bad slug: %v", err)
	}
}

// The seed: a 4 GiB cluster (97), two web nodes (WEB_CONCURRENCY=3,
// MAX_THREADS=9), two Sidekiq nodes (DB_POOL=25), streaming, all through
// one pool, plus a migration's direct connections.
func TestBudgetSeed(t *testing.T) {
	web, err := pgpool.WebDemandFromEnv(fediops.MapLookup(map[string]string{"WEB_CONCURRENCY": "3", "MAX_THREADS": "9"}), "kirk")
	if err != nil || web.Conns != 27 {
		t.Fatalf("web %v %v", web, err)
	}
	const pool = "the_mastodon_connection_pool"
	b := pgpool.NewBudget(4).WithPool(pool, 90).Add(
		web.Via(pool), web.Via(pool),
		pgpool.Sidekiq("scotty", 1, 25).Via(pool), pgpool.Sidekiq("decker", 1, 25).Via(pool),
		pgpool.Streaming("spock", 1, 10).Via(pool),
		pgpool.Direct("migration", 5),
	)
	r := b.Report()
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if r.Limit != 97 || r.Used != 95 || r.Headroom != 2 || r.Pools[0].Clients != 114 || r.Pools[0].Waiting != 24 {
		t.Fatalf("report:\n%s", r)
	}
	// 114 clients on 90 server connections: a warning naming the variables.
	if len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "sidekiq scotty DB_POOL=25") || !strings.Contains(r.Problems[0], "WEB_CONCURRENCY×DB_POOL=27") {
		t.Fatalf("problems %q", r.Problems)
	}

	// One more direct connection than fits: the exact overflow, named.
	r = b.Add(pgpool.Direct("pg_dump", 3)).Report()
	if !errors.Is(r.Err(), pgpool.ErrOverBudget) || r.Overflow != 1 {
		t.Fatalf("overflow: %v\n%s", r.Err(), r)
	}
	for _, s := range []string{"1 over the limit of 97", "pool " + pool + " size=90", "pg_dump direct connections=3", "lower one of them by 1"} {
		if !strings.Contains(r.Err().Error(), s) {
			t.Errorf("%q lacks %q", r.Err(), s)
		}
	}
	// The value b did not change.
	if b.Report().Err() != nil {
		t.Fatal("Add changed the budget it was called on")
	}

	// No pgBouncer: every connection is a server connection.
	r = pgpool.NewBudget(1).Add(web, pgpool.Sidekiq("scotty", 1, 25)).Report()
	if !errors.Is(r.Err(), pgpool.ErrOverBudget) || r.Overflow != 30 || !strings.Contains(r.Err().Error(), "sidekiq scotty DB_POOL=25") {
		t.Fatalf("unpooled: %v", r.Err())
	}

	// Pools past the count, and demand through a pool nobody made.
	many := pgpool.NewBudget(64)
	for i := range 22 {
		many = many.WithPool(strings.Repeat("p", i+1), 1)
	}
	if r := many.Add(pgpool.Web("x", 1, 1).Via("ghost")).Report(); !errors.Is(r.Err(), pgpool.ErrOverBudget) || !errors.Is(r.Err(), pgpool.ErrUnknownPool) {
		t.Fatalf("22 pools and a ghost: %v", r.Err())
	}
	if _, err := pgpool.WebDemandFromEnv(fediops.MapLookup(map[string]string{"MAX_THREADS": "lots"}), "x"); !errors.Is(err, pgpool.ErrInvalid) || !strings.Contains(err.Error(), "MAX_THREADS") {
		t.Fatalf("bad MAX_THREADS: %v", err)
	}
}

// TestSizeGiBEveryDOSlug: every database size DigitalOcean lists gives its
// memory, the 13 "-intel" ones included.
func TestSizeGiBEveryDOSlug(t *testing.T) {
	raw, err := os.ReadFile("testdata/do-database-sizes.txt")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, slug := range strings.Split(string(raw), "\n") {
		if slug == "" || strings.HasPrefix(slug, "#") {
			continue
		}
		n++
		gib, err := pgpool.SizeGiB(slug)
		_, mem, _ := strings.Cut(slug, "vcpu-")
		mem, _, _ = strings.Cut(mem, "gb")
		if err != nil || strconv.Itoa(gib) != mem {
			t.Errorf("%s: %d %v", slug, gib, err)
		}
	}
	if n != 59 {
		t.Errorf("%d slugs, want the 59 DO lists", n)
	}
	for slug, want := range map[string]int{"gd-2vcpu-8gb-intel": 8, "so1_5-48vcpu-384gb-intel": 384, "db-s-2vcpu-2gb": 2, "m3-2vcpu-16gb": 16, "db-amd-1vcpu-1gb": 1} {
		if got, err := pgpool.SizeGiB(slug); got != want || err != nil {
			t.Errorf("%s: %d %v, want %d", slug, got, err, want)
		}
	}
	for _, bad := range []string{"db-s-small", "4gb", "gd-2vcpu-8gb-", ""} {
		if _, err := pgpool.SizeGiB(bad); !errors.Is(err, pgpool.ErrInvalid) {
			t.Errorf("%q accepted: %v", bad, err)
		}
	}
}

// TestBudgetOfAnIntelCluster: a cluster on a "-intel" size gets its limit
// (8 GiB: 197), and a fixed FEDIOPS_DB_CONN_LIMIT needs no size at all.
func TestBudgetOfAnIntelCluster(t *testing.T) {
	f := newFake(t, "gd-2vcpu-8gb-intel", 197, nil)
	var logs bytes.Buffer
	m := f.manager(t, &logs)
	ctx := ctxT(t, 30*time.Second)
	b, err := m.Budget(ctx)
	if err != nil || b.Limit != 197 {
		t.Fatalf("budget %+v %v", b, err)
	}
	f.AddCluster(dofake.Cluster{ID: clusterID, Size: "xl-custom"})
	if _, err := m.Budget(ctx); !errors.Is(err, pgpool.ErrInvalid) || !strings.Contains(err.Error(), pgpool.EnvConnLimit) {
		t.Errorf("unknown size: %v", err)
	}
	m.Limits = pgpool.Limits{Fixed: 300}
	if b, err := m.Budget(ctx); err != nil || b.Limit != 300 {
		t.Errorf("fixed limit, unknown size: %+v %v", b, err)
	}
}
