package pgpool_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/digitalocean/godo"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/pgpool"
)

const token = "dop_v1_0123456789abcdefSECRET"

// fakeDO is a stand-in for the part of DO's API that pgpool calls, with
// the JSON shapes godo v1.237 decodes, and injectable faults.
type fakeDO struct {
	t      *testing.T
	mu     sync.Mutex
	size   string
	host   string // the cluster's public host; "" leaves the connection out
	vpc    string // its private (VPC) host; "" leaves it out
	limit  int    // server-side check of the pool sizes, as DO refuses with 422
	ca     []byte
	pools  map[string]godo.DatabasePool
	faults map[string][]fault // by "METHOD path"
	calls  []string
}

type fault struct {
	status     int
	retryAfter string
	applyFirst bool // do the work, then answer with the fault (a lost answer)
}

func newFake(t *testing.T, size string, limit int, ca []byte, pools ...godo.DatabasePool) (*fakeDO, *httptest.Server) {
	f := &fakeDO{t: t, size: size, limit: limit, ca: ca, pools: map[string]godo.DatabasePool{}, faults: map[string][]fault{}}
	for _, p := range pools {
		f.pools[p.Name] = p
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeDO) fail(key string, fs ...fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[key] = append(f.faults[key], fs...)
}

func (f *fakeDO) called(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func apiError(w http.ResponseWriter, status int, id, msg string) {
	w.Header().Set("X-Request-Id", "req-"+id)
	writeJSON(w, status, map[string]string{"id": id, "message": msg})
}

func (f *fakeDO) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+token {
		apiError(w, 401, "unauthorized", "Unable to authenticate you")
		return
	}
	key := r.Method + " " + r.URL.Path
	f.mu.Lock()
	f.calls = append(f.calls, key)
	var ft *fault
	if q := f.faults[key]; len(q) > 0 {
		ft, f.faults[key] = &q[0], q[1:]
	}
	f.mu.Unlock()
	if ft != nil {
		if ft.applyFirst {
			f.route(httptest.NewRecorder(), r)
		}
		if ft.retryAfter != "" {
			w.Header().Set("Retry-After", ft.retryAfter)
		}
		apiError(w, ft.status, "fault", fmt.Sprintf("injected %d", ft.status))
		return
	}
	f.route(w, r)
}

func (f *fakeDO) route(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) < 3 || parts[0] != "v2" || parts[1] != "databases" || parts[2] != "c1" {
		apiError(w, 404, "not_found", "The resource you were accessing could not be found.")
		return
	}
	switch {
	case len(parts) == 3 && r.Method == "GET":
		db := map[string]any{"id": "c1", "name": "majel", "engine": "pg", "size": f.size}
		if f.host != "" {
			db["connection"] = map[string]any{"host": f.host, "port": pgpool.DirectPort, "user": "doadmin", "database": "defaultdb", "ssl": true}
		}
		if f.vpc != "" {
			db["private_connection"] = map[string]any{"host": f.vpc, "port": pgpool.DirectPort, "user": "doadmin", "database": "defaultdb", "ssl": true}
		}
		writeJSON(w, 200, map[string]any{"database": db})
	case len(parts) == 4 && parts[3] == "ca" && r.Method == "GET":
		writeJSON(w, 200, map[string]any{"ca": godo.DatabaseCA{Certificate: f.ca}}) // []byte: base64 in JSON, as DO sends it
	case len(parts) == 4 && parts[3] == "pools" && r.Method == "GET":
		names := make([]string, 0, len(f.pools))
		for n := range f.pools {
			names = append(names, n)
		}
		sort.Strings(names)
		out := []godo.DatabasePool{}
		for _, n := range names {
			out = append(out, f.pools[n])
		}
		writeJSON(w, 200, map[string]any{"pools": out})
	case len(parts) == 4 && parts[3] == "pools" && r.Method == "POST":
		var req godo.DatabaseCreatePoolRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			apiError(w, 400, "bad_request", err.Error())
			return
		}
		if _, ok := f.pools[req.Name]; ok {
			apiError(w, 422, "unprocessable_entity", "name is already in use")
			return
		}
		if f.sum()+req.Size > f.limit {
			apiError(w, 422, "unprocessable_entity", "pool size exceeds the available connections")
			return
		}
		p := godo.DatabasePool{Name: req.Name, User: req.User, Size: req.Size, Database: req.Database, Mode: req.Mode}
		f.pools[p.Name] = p
		writeJSON(w, 201, map[string]any{"pool": p})
	case len(parts) == 5 && parts[3] == "pools":
		p, ok := f.pools[parts[4]]
		if !ok {
			apiError(w, 404, "not_found", "The resource you were accessing could not be found.")
			return
		}
		switch r.Method {
		case "GET":
			writeJSON(w, 200, map[string]any{"pool": p})
		case "PUT":
			var req godo.DatabaseUpdatePoolRequest
			if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
				apiError(w, 400, "bad_request", err.Error())
				return
			}
			if f.sum()-p.Size+req.Size > f.limit {
				apiError(w, 422, "unprocessable_entity", "pool size exceeds the available connections")
				return
			}
			p.Size, p.Mode, p.Database, p.User = req.Size, req.Mode, req.Database, req.User
			f.pools[p.Name] = p
			w.WriteHeader(204)
		default:
			apiError(w, 405, "method_not_allowed", r.Method)
		}
	default:
		apiError(w, 404, "not_found", "The resource you were accessing could not be found.")
	}
}

func (f *fakeDO) sum() int {
	n := 0
	for _, p := range f.pools {
		n += p.Size
	}
	return n
}

func manager(t *testing.T, srv *httptest.Server, logs *bytes.Buffer) *pgpool.Manager {
	c, err := pgpool.NewGodo(token, pgpool.GodoOptions{BaseURL: srv.URL, Retries: 2, WaitMin: 10 * time.Millisecond, WaitMax: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return &pgpool.Manager{API: c.Databases, Cluster: "c1", Logger: slog.New(slog.NewTextHandler(logs, nil))}
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
	f, srv := newFake(t, "db-s-2vcpu-4gb", 97, ca)
	var logs bytes.Buffer
	m := manager(t, srv, &logs)
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
	f.ca = []byte("not a certificate")
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
	f, srv := newFake(t, "db-s-1vcpu-2gb", 47, nil) // 2 GiB: 47
	var logs bytes.Buffer
	m := manager(t, srv, &logs)
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
	if f.called("POST") != 0 || f.called("PUT") != 0 {
		t.Fatal("the dry run changed something")
	}
	if err := m.Apply(ctx, p); err != nil {
		t.Fatal(err)
	}
	if got := f.pools[pool]; got.Size != 40 || got.Mode != "transaction" {
		t.Fatalf("created %+v", got)
	}
	// Idempotent: the same wish again is a plan without changes.
	p, err = m.EnsurePools(ctx, false, want)
	if err != nil || p.Changes() != 0 || !strings.Contains(p.String(), "keep pool "+pool) {
		t.Fatalf("second ensure: %v\n%s", err, p)
	}
	if f.called("POST") != 1 {
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
	f.pools["sidekiq_pool"] = godo.DatabasePool{Name: "sidekiq_pool", Database: "mastodon_production", User: "u", Size: 5, Mode: "session"}
	f.pools[pool] = godo.DatabasePool{Name: pool, Database: "mastodon_production", User: "the_mastodon_user", Size: 42, Mode: "transaction"}
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
	if f.pools[pool].Size != 30 || f.pools["sidekiq_pool"].Size != 17 || f.pools["sidekiq_pool"].Mode != "transaction" || f.pools["sidekiq_pool"].User != "u" {
		t.Fatalf("after resize: %+v", f.pools)
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
	f, srv := newFake(t, "db-s-2vcpu-4gb", 97, nil)
	var logs bytes.Buffer
	m := manager(t, srv, &logs)
	ctx := ctxT(t, 30*time.Second)
	spec := pgpool.PoolSpec{Name: "p1", Database: "mastodon_production", Size: 10}

	// 429 with Retry-After: waited for, then done.
	f.fail("GET /v2/databases/c1/pools", fault{status: 429, retryAfter: "1"})
	start := time.Now()
	if _, err := m.Pools(ctx); err != nil {
		t.Fatalf("after 429: %v", err)
	}
	if d := time.Since(start); d < time.Second {
		t.Fatalf("Retry-After: 1 not honoured (%v)", d)
	}
	if n := f.called("GET /v2/databases/c1/pools"); n != 2 {
		t.Fatalf("%d list calls, want 2", n)
	}

	// 500 every time: an error after the retries, with status and attempts.
	f.fail("GET /v2/databases/c1", fault{status: 500}, fault{status: 500}, fault{status: 500})
	_, err := m.Budget(ctx)
	if err == nil || !strings.Contains(err.Error(), "API 500") || !strings.Contains(err.Error(), "3 attempts") {
		t.Fatalf("500s: %v", err)
	}
	noToken(t, err)

	// A create whose answer is lost (500 after the work): the retried POST
	// gets 422 "already in use", and Apply sees the pool is as wanted.
	f.fail("POST /v2/databases/c1/pools", fault{status: 500, applyFirst: true})
	if _, err := m.EnsurePools(ctx, false, spec); err != nil {
		t.Fatalf("lost create: %v", err)
	}
	if f.pools["p1"].Size != 10 || f.called("POST") != 2 {
		t.Fatalf("lost create: %+v, %d POSTs", f.pools, f.called("POST"))
	}

	// 422 from the API (DO's own limit check) is reported with its message.
	m.Limits = pgpool.Limits{PerGiB: 1000} // our plan allows it; DO does not
	_, err = m.EnsurePools(ctx, false, pgpool.PoolSpec{Name: "p2", Database: "mastodon_production", Size: 200})
	if err == nil || !strings.Contains(err.Error(), "API 422: pool size exceeds the available connections") || !strings.Contains(err.Error(), "create pool p2 in c1") {
		t.Fatalf("422: %v", err)
	}
	noToken(t, err)

	// A bad spec never reaches the API.
	if _, err := m.PlanPools(ctx, pgpool.PoolSpec{Name: "p3"}); !errors.Is(err, pgpool.ErrInvalid) {
		t.Fatalf("bad spec: %v", err)
	}

	// A wrong token: 401, not retried, and the token is not in the error.
	c, _ := pgpool.NewGodo("wrong-"+token, pgpool.GodoOptions{BaseURL: srv.URL, Retries: -1})
	bad := &pgpool.Manager{API: c.Databases, Cluster: "c1"}
	_, err = bad.Pools(ctx)
	if err == nil || !strings.Contains(err.Error(), "API 401") || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("401: %v", err)
	}
}
