package pgpool_test

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/godo"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/internal/dofake"
	"github.com/fediops/fediops/internal/envfile"
	"github.com/fediops/fediops/pgpool"
)

// Tests of what a provisioning program needs besides PlanPools and Apply:
// the host, the room left for a pool, the CA dry run and the .env lines.

func TestHost(t *testing.T) {
	f := newFake(t, "db-s-2vcpu-4gb", 97, nil)
	host, vpc := "majel-do-user-1-0.b.db.ondigitalocean.com", "private-majel-do-user-1-0.b.db.ondigitalocean.com"
	f.AddCluster(dofake.Cluster{ID: clusterID, Size: "db-s-2vcpu-4gb", Host: host, PrivateHost: vpc})
	var logs bytes.Buffer
	m := f.manager(t, &logs)
	ctx := ctxT(t, 30*time.Second)
	for private, want := range map[bool]string{false: host, true: vpc} {
		if got, err := m.Host(ctx, private); err != nil || got != want {
			t.Errorf("Host(private=%t) = %q, %v; want %q", private, got, err, want)
		}
	}
	f.AddCluster(dofake.Cluster{ID: clusterID, Size: "db-s-2vcpu-4gb", Host: host})
	if h, err := m.Host(ctx, true); err == nil || !strings.Contains(err.Error(), "no private host") {
		t.Errorf("no VPC host: %q, %v", h, err)
	}
	m.Cluster = "nope"
	_, err := m.Host(ctx, false)
	if !errors.Is(err, pgpool.ErrNotFound) || !strings.Contains(err.Error(), "get cluster nope") {
		t.Errorf("unknown cluster: %v", err)
	}
	noToken(t, err)
}

func TestRoom(t *testing.T) {
	const pool = "the_mastodon_connection_pool"
	f := newFake(t, "db-s-2vcpu-4gb", 97, nil, // 4 GiB: 97
		godo.DatabasePool{Name: "sidekiq", Database: "mastodon_production", User: "u", Size: 20, Mode: "transaction"},
		godo.DatabasePool{Name: pool, Database: "mastodon_production", User: "u", Size: 10, Mode: "transaction"})
	var logs bytes.Buffer
	m := f.manager(t, &logs)
	m.Reserve = 5
	ctx := ctxT(t, 30*time.Second)

	room, err := m.Room(ctx, pool) // the pool's own 10 are not counted
	if err != nil || room != 97-20-5 {
		t.Fatalf("Room = %d, %v; want 72", room, err)
	}
	// Room is exactly what PlanPools allows.
	spec := pgpool.PoolSpec{Name: pool, Database: "mastodon_production", Size: room}
	if _, err := m.PlanPools(ctx, spec); err != nil {
		t.Errorf("PlanPools at Room: %v", err)
	}
	spec.Size++
	if _, err := m.PlanPools(ctx, spec); !errors.Is(err, pgpool.ErrOverBudget) {
		t.Errorf("PlanPools at Room+1: %v", err)
	}
	if room, err := m.Room(ctx, "new_pool"); err != nil || room != 97-30-5 {
		t.Errorf("Room for a new pool = %d, %v; want 62", room, err)
	}

	m.Reserve = 77 // 97 - 20 - 77 = 0
	if _, err := m.Room(ctx, pool); !errors.Is(err, pgpool.ErrNoRoom) ||
		!strings.Contains(err.Error(), "no connections left for pool "+pool+": limit 97 - other pools 20 - reserve 77") {
		t.Errorf("no room: %v", err)
	}

	// FEDIOPS_DB_CONN_LIMIT replaces the formula in Room and in plans.
	m.Reserve = 5
	if m.Limits, err = pgpool.LimitsFromEnv(fediops.MapLookup(map[string]string{pgpool.EnvConnLimit: "500"})); err != nil {
		t.Fatal(err)
	}
	if room, err := m.Room(ctx, pool); err != nil || room != 500-20-5 {
		t.Errorf("Room under a fixed limit of 500 = %d, %v; want 475", room, err)
	}
	if p, err := m.PlanPools(ctx, pgpool.PoolSpec{Name: pool, Database: "mastodon_production", Size: 475}); err != nil || p.Report.Limit != 500 {
		t.Errorf("PlanPools under a fixed limit: %v", err)
	}
}

func TestLimitsFromEnv(t *testing.T) {
	l, err := pgpool.LimitsFromEnv(fediops.MapLookup(nil))
	if err != nil || l != pgpool.DO {
		t.Errorf("nothing set: %+v, %v; want DO", l, err)
	}
	l, err = pgpool.LimitsFromEnv(fediops.MapLookup(map[string]string{pgpool.EnvConnLimit: "1597", pgpool.EnvMaxPools: "0"}))
	if err != nil || l.Fixed != 1597 || l.MaxPools != 0 || l.PerGiB != pgpool.DO.PerGiB {
		t.Errorf("overrides: %+v, %v", l, err)
	}
	for _, gib := range []int{1, 64, 128} {
		if got := l.Connections(gib); got != 1597 {
			t.Errorf("fixed limit at %d GiB: %d", gib, got)
		}
	}
	if b, err := pgpool.BudgetFromEnv(fediops.MapLookup(map[string]string{pgpool.EnvConnLimit: "60"}), 4); err != nil || b.Limit != 60 || b.MaxPools != pgpool.DO.MaxPools {
		t.Errorf("BudgetFromEnv: %+v, %v", b, err)
	}
	for _, bad := range []map[string]string{{pgpool.EnvConnLimit: "0"}, {pgpool.EnvConnLimit: "-3"}, {pgpool.EnvConnLimit: "lots"}, {pgpool.EnvMaxPools: "x"}} {
		_, err := pgpool.LimitsFromEnv(fediops.MapLookup(bad))
		for k := range bad {
			if !errors.Is(err, pgpool.ErrInvalid) || !strings.Contains(err.Error(), k) {
				t.Errorf("%v: %v", bad, err)
			}
		}
	}
}

func TestCAChanged(t *testing.T) {
	ca := mustRead(t, caFile(t))
	f := newFake(t, "db-s-2vcpu-4gb", 97, ca)
	var logs bytes.Buffer
	m := f.manager(t, &logs)
	ctx := ctxT(t, 30*time.Second)
	path := filepath.Join(t.TempDir(), "do-ca.crt")

	if changed, err := m.CAChanged(ctx, path); err != nil || !changed {
		t.Fatalf("missing file: %t, %v", changed, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("CAChanged wrote the file")
	}
	if _, err := m.FetchCA(ctx, path); err != nil {
		t.Fatal(err)
	}
	if changed, err := m.CAChanged(ctx, path); err != nil || changed {
		t.Errorf("after FetchCA: %t, %v", changed, err)
	}
	if err := os.WriteFile(path, append(bytes.Clone(ca), '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	if changed, err := m.CAChanged(ctx, path); err != nil || !changed {
		t.Errorf("edited file: %t, %v", changed, err)
	}
	if _, err := m.CAChanged(ctx, filepath.Dir(path)); err == nil || !strings.Contains(err.Error(), "read CA") {
		t.Errorf("a directory: %v", err)
	}
	f.SetCA(clusterID, []byte("not a certificate"))
	if _, err := m.CAChanged(ctx, path); !errors.Is(err, pgpool.ErrBadCA) {
		t.Errorf("bad CA from the API: %v", err)
	}
}

func TestPooledSettings(t *testing.T) {
	ca := caFile(t)
	got := pgpool.PooledSettings("db.example.com", "the_mastodon_connection_pool", "the_mastodon_user", "mastodon_production", ca, "")
	want := []fediops.Setting{{Key: "DB_HOST", Value: "db.example.com"}, {Key: "DB_PORT", Value: "25061"},
		{Key: "DB_NAME", Value: "the_mastodon_connection_pool"}, {Key: "DB_USER", Value: "the_mastodon_user"},
		{Key: "PREPARED_STATEMENTS", Value: "false"}, {Key: "DB_SSLMODE", Value: "require"},
		{Key: "NODE_EXTRA_CA_CERTS", Value: ca}, {Key: pgpool.EnvCAFile, Value: ca}, {Key: pgpool.EnvDirectName, Value: "mastodon_production"}}
	if len(got) != len(want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("setting %d: %v, want %v", i, got[i], want[i])
		}
	}
	if s := pgpool.PooledSettings("h", "p", "u", "", "", "verify-full"); len(s) != 6 || s[5].Value != "verify-full" {
		t.Errorf("without CA and db: %v", s)
	}

	// Written into the seed's file, they give a pooled, verified config
	// with the direct endpoint, and DB_PASS stays as it was written.
	const seedDB = "DB_HOST=path-to-postgres-database.ondigitalocean.com\nDB_PORT=25060\nDB_NAME=mastodon_production\n" +
		"DB_USER=the_mastodon_user\nDB_PASS=Ourpassw0rd!sNoneofyourbu$iness\nPREPARED_STATEMENTS=true\n"
	f, err := envfile.Parse(".env.production", []byte(seedDB), envfile.WithLookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.SetAll(got...); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(f.Bytes()), "\nDB_PASS=Ourpassw0rd!sNoneofyourbu$iness\n") {
		t.Errorf("DB_PASS rewritten:\n%s", f.Bytes())
	}
	cfg, err := pgpool.ConfigFromEnv(f.Get, pgpool.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.IsPooled || cfg.TLS != pgpool.TLSVerifyFull || cfg.Pool != (pgpool.Endpoint{Host: "db.example.com", Port: pgpool.PoolPort, Database: "the_mastodon_connection_pool"}) || cfg.PreparedStmts ||
		cfg.DirectEndpoint != (pgpool.Endpoint{Host: "db.example.com", Port: pgpool.DirectPort, Database: "mastodon_production"}) {
		t.Errorf("FromEnv on the written file: %+v", cfg)
	}
}
