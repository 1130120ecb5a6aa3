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
	"github.com/fediops/fediops/doapi"
	"github.com/fediops/fediops/internal/dofake"
	"github.com/fediops/fediops/pgpool"
)

const token = "dop_v1_0123456789abcdefSECRET"

// clusterID is the cluster the tests manage (DO's IDs are UUIDs).
var clusterID = dofake.UUID(1)

// fakeDO is the DO stand-in with one cluster of the given size, its CA
// and pools, pool sizes capped at limit as DO caps them.
type fakeDO struct {
	*dofake.Server
	url string
}

func newFake(t *testing.T, size string, limit int, ca []byte, pools ...godo.DatabasePool) *fakeDO {
	f := &fakeDO{Server: dofake.New(dofake.Options{Token: token})}
	f.AddCluster(dofake.Cluster{ID: clusterID, Name: "majel", Size: size, Limit: limit, CA: ca, Pools: pools})
	f.url = f.Start(t)
	return f
}

func (f *fakeDO) manager(t *testing.T, logs *bytes.Buffer) *pgpool.Manager {
	c, err := doapi.New(doapi.Options{Token: token, BaseURL: f.url, Retries: 2, RetryWaitMin: 10 * time.Millisecond, RetryWaitMax: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return &pgpool.Manager{API: c.Databases, Cluster: clusterID, Logger: slog.New(slog.NewTextHandler(logs, nil))}
}

func noToken(t *testing.T, errs ...error) {
	t.Helper()
	for _, e := range errs {
		if e != nil && strings.Contains(e.Error(), token) {
			t.Fatalf("token in %q", e)
		}
	}
}

func TestFetchCA(t *testing.T) {
	ca := mustRead(t, caFile(t))
	f := newFake(t, "db-s-2vcpu-4gb", 97, ca)
	var logs bytes.Buffer
	m := f.manager(t, &logs)
	ctx := ctxT(t, 30*time.Second)
	path := filepath.Join(t.TempDir(), "do-internal.crt")
	changed, err := m.FetchCA(ctx, path)
	if err != nil || !changed {
		t.Fatalf("FetchCA: %v %v", changed, err)
	}
	if got := mustRead(t, path); !bytes.Equal(got, ca) {
		t.Fatal("CA file differs from the API's certificate")
	}
	if changed, err = m.FetchCA(ctx, path); err != nil || changed {
		t.Fatalf("second FetchCA: %v %v", changed, err)
	}
	// The file is what FromEnv verifies with.
	cfg, err := pgpool.ConfigFromEnv(fediops.MapLookup(with(seed(""), "NODE_EXTRA_CA_CERTS", "<unset>", pgpool.EnvCAFile, path)), pgpool.Options{})
	if err != nil || cfg.TLS != pgpool.TLSVerifyFull {
		t.Fatalf("FromEnv with the fetched CA: %v", err)
	}

	// Garbage from the API is refused and nothing is written.
	f.SetCA(clusterID, []byte("not a certificate"))
	bad := filepath.Join(t.TempDir(), "bad.crt")
	if _, err := m.FetchCA(ctx, bad); !errors.Is(err, pgpool.ErrBadCA) {
		t.Fatalf("bad CA: %v", err)
	}
	if _, err := os.Stat(bad); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("bad CA written")
	}
	// An unknown cluster is a 404.
	m.Cluster = "nope"
	_, err = m.FetchCA(ctx, bad)
	if !errors.Is(err, pgpool.ErrNotFound) || !strings.Contains(err.Error(), "fetch CA for nope") {
		t.Fatalf("404: %v", err)
	}
	noToken(t, err)
}

func TestPlanApplyPools(t *testing.T) {
	const pool = "the_mastodon_connection_pool"
	f := newFake(t, "db-s-1vcpu-2gb", 47, nil) // 2 GiB: 47
	var logs bytes.Buffer
	m := f.manager(t, &logs)
	ctx := ctxT(t, 30*time.Second)
	want := pgpool.PoolSpec{Name: pool, Database: "mastodon_production", User: "the_mastodon_user", Size: 40}

	// Dry run: a plan that prints its step and calls nothing that changes.
	p, err := m.EnsurePools(ctx, true, want)
	if err != nil {
		t.Fatal(err)
	}
	if p.Changes() != 1 || !strings.Contains(p.String(), "create pool "+pool+": db=mastodon_production user=the_mastodon_user size=40 mode=transaction") {
		t.Fatalf("plan:\n%s", p)
	}
	if f.Count("POST") != 0 || f.Count("PUT") != 0 {
		t.Fatal("the dry run changed something")
	}
	if err := m.Apply(ctx, p); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.Pool(clusterID, pool); got.Size != 40 || got.Mode != "transaction" {
		t.Fatalf("created %+v", got)
	}
	// Idempotent: the same wish again is a plan without changes.
	p, err = m.EnsurePools(ctx, false, want)
	if err != nil || p.Changes() != 0 || !strings.Contains(p.String(), "keep pool "+pool) {
		t.Fatalf("second ensure: %v\n%s", err, p)
	}
	if f.Count("POST") != 1 {
		t.Fatal("second ensure created again")
	}
	db, err := m.DirectDatabase(ctx, pool)
	if err != nil || db != "mastodon_production" {
		t.Fatalf("DirectDatabase: %q %v", db, err)
	}
	if _, err := m.DirectDatabase(ctx, "ghost"); !errors.Is(err, pgpool.ErrNotFound) {
		t.Fatalf("ghost pool: %v", err)
	}

	// Over the limit: refused in the plan, before any call.
	_, err = m.EnsurePools(ctx, false, pgpool.PoolSpec{Name: "sidekiq_pool", Database: "mastodon_production", Size: 10})
	if !errors.Is(err, pgpool.ErrOverBudget) || !strings.Contains(err.Error(), "3 over the limit of 47") {
		t.Fatalf("over budget: %v", err)
	}
	// Resize two pools: the shrinking one goes first so the sum never passes 47.
	f.PutPool(clusterID, godo.DatabasePool{Name: "sidekiq_pool", Database: "mastodon_production", User: "u", Size: 5, Mode: "session"})
	f.PutPool(clusterID, godo.DatabasePool{Name: pool, Database: "mastodon_production", User: "the_mastodon_user", Size: 42, Mode: "transaction"})
	p, err = m.PlanPools(ctx,
		pgpool.PoolSpec{Name: "sidekiq_pool", Database: "mastodon_production", Size: 17},
		pgpool.PoolSpec{Name: pool, Database: "mastodon_production", Size: 30})
	if err != nil {
		t.Fatal(err)
	}
	s := p.String()
	if p.Changes() != 2 || strings.Index(s, "update pool "+pool+": size 42 -> 30") > strings.Index(s, "update pool sidekiq_pool: size 5 -> 17, mode session -> transaction") {
		t.Fatalf("resize plan:\n%s", s)
	}
	if err := m.Apply(ctx, p); err != nil {
		t.Fatal(err)
	}
	web, _ := f.Pool(clusterID, pool)
	sk, _ := f.Pool(clusterID, "sidekiq_pool")
	if web.Size != 30 || sk.Size != 17 || sk.Mode != "transaction" || sk.User != "u" {
		t.Fatalf("after resize: %+v", f.Pools(clusterID))
	}
	if !strings.Contains(logs.String(), "update pool sidekiq_pool") {
		t.Fatalf("log: %s", logs.String())
	}
	noToken(t, err)
	if strings.Contains(logs.String(), token) {
		t.Fatal("token in the log")
	}
}

func TestAPIErrorsAndRetries(t *testing.T) {
	f := newFake(t, "db-s-2vcpu-4gb", 97, nil)
	var logs bytes.Buffer
	m := f.manager(t, &logs)
	ctx := ctxT(t, 30*time.Second)
	spec := pgpool.PoolSpec{Name: "p1", Database: "mastodon_production", Size: 10}

	// 429 with Retry-After: waited for, then done.
	f.Fail("GET /v2/databases/{database_cluster_uuid}/pools", dofake.Fault{Status: 429, RetryAfter: "1"})
	start := time.Now()
	if _, err := m.Pools(ctx); err != nil {
		t.Fatalf("after 429: %v", err)
	}
	if d := time.Since(start); d < time.Second {
		t.Fatalf("Retry-After: 1 not honoured (%v)", d)
	}
	if n := f.Count("GET /v2/databases/" + clusterID + "/pools"); n != 2 {
		t.Fatalf("%d list calls, want 2", n)
	}

	// 500 every time: an error after the retries, with status, attempts
	// and DO's request id when it sent one.
	f.Fail("GET /v2/databases/{database_cluster_uuid}", dofake.Fault{Status: 500}, dofake.Fault{Status: 500}, dofake.Fault{Status: 500, RequestID: "r-3"})
	_, err := m.Budget(ctx)
	if want := "get cluster " + clusterID + ": API 500: injected 500 (request r-3, 3 attempts)"; err == nil || err.Error() != want {
		t.Fatalf("500s: %v, want %s", err, want)
	}
	noToken(t, err)

	// A create whose answer is lost (500 after the work): the retried POST
	// gets 422 "already in use", and Apply sees the pool is as wanted.
	f.Fail("POST /v2/databases/{database_cluster_uuid}/pools", dofake.Fault{Status: 500, After: true})
	if _, err := m.EnsurePools(ctx, false, spec); err != nil {
		t.Fatalf("lost create: %v", err)
	}
	if p1, _ := f.Pool(clusterID, "p1"); p1.Size != 10 || f.Count("POST") != 2 {
		t.Fatalf("lost create: %+v, %d POSTs", f.Pools(clusterID), f.Count("POST"))
	}

	// 422 from the API (DO's own limit check) is reported with its message.
	m.Limits = pgpool.Limits{PerGiB: 1000} // our plan allows it; DO does not
	_, err = m.EnsurePools(ctx, false, pgpool.PoolSpec{Name: "p2", Database: "mastodon_production", Size: 200})
	if err == nil || !strings.Contains(err.Error(), "API 422: pool size exceeds the available connections") || !strings.Contains(err.Error(), "create pool p2 in "+clusterID) {
		t.Fatalf("422: %v", err)
	}
	noToken(t, err)

	// A bad spec never reaches the API.
	if _, err := m.PlanPools(ctx, pgpool.PoolSpec{Name: "p3"}); !errors.Is(err, pgpool.ErrInvalid) {
		t.Fatalf("bad spec: %v", err)
	}

	// A wrong token: 401, not retried, and the token is not in the error.
	c, _ := doapi.New(doapi.Options{Token: "wrong-" + token, BaseURL: f.url, Retries: -1})
	bad := &pgpool.Manager{API: c.Databases, Cluster: clusterID}
	_, err = bad.Pools(ctx)
	if err == nil || !strings.Contains(err.Error(), "API 401") || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("401: %v", err)
	}
}
