package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/digitalocean/godo"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/internal/testenv"
	"github.com/fediops/fediops/pgpool"
)

const (
	token    = "dop_v1_test_token_0123456789abcdef"
	poolPass = "pool-password-from-the-api"
	dbHost   = "majel-do-user-1-0.b.db.ondigitalocean.com"
)

// seedEnv is the seed's .env.production snippets: Puma, Streaming, Postgres, Object Store.
var seedEnv = testenv.SeedEnv()

var secrets = []string{token, poolPass, "Ourpassw0rd!sNoneofyourbu", "hahahahahahahahahahahahaha"}

// fakeDO is a small stand-in of DO's API: one cluster (c1, 4 GiB: limit
// 97), its CA and pools, and CDN endpoints. It records every write.
type fakeDO struct {
	mu     sync.Mutex
	ca     []byte
	pools  map[string]godo.DatabasePool
	eps    []godo.CDN
	writes []string
}

func newFake(t *testing.T) (*fakeDO, *httptest.Server) {
	f := &fakeDO{ca: testCA(t), pools: map[string]godo.DatabasePool{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeDO) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reply := func(code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(v)
	}
	if r.Header.Get("Authorization") != "Bearer "+token {
		reply(401, map[string]string{"id": "unauthorized", "message": "Unable to authenticate you"})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Method != http.MethodGet {
		f.writes = append(f.writes, r.Method+" "+r.URL.Path)
	}
	conn := func(port int, db string) *godo.DatabaseConnection {
		return &godo.DatabaseConnection{Host: dbHost, Port: port, User: "doadmin", Password: poolPass, Database: db, SSL: true}
	}
	p, rest := r.URL.Path, ""
	switch {
	case r.Method == "GET" && p == "/v2/databases/c1":
		reply(200, map[string]any{"database": godo.Database{ID: "c1", Name: "majel", EngineSlug: "pg", SizeSlug: "db-s-2vcpu-4gb",
			Connection: conn(25060, "defaultdb"), PrivateConnection: &godo.DatabaseConnection{Host: "private-" + dbHost}}})
	case r.Method == "GET" && p == "/v2/databases/c1/ca":
		reply(200, map[string]any{"ca": godo.DatabaseCA{Certificate: f.ca}})
	case r.Method == "GET" && p == "/v2/databases/c1/pools":
		out := []godo.DatabasePool{}
		for _, pl := range f.pools {
			out = append(out, pl)
		}
		reply(200, map[string]any{"pools": out})
	case r.Method == "POST" && p == "/v2/databases/c1/pools":
		var req godo.DatabaseCreatePoolRequest
		json.NewDecoder(r.Body).Decode(&req)
		if _, ok := f.pools[req.Name]; ok || req.Size < 1 || f.sum()+req.Size > 97 {
			reply(422, map[string]string{"id": "unprocessable_entity", "message": "name in use or size too large"})
			return
		}
		f.pools[req.Name] = godo.DatabasePool{Name: req.Name, User: req.User, Size: req.Size, Database: req.Database, Mode: req.Mode, Connection: conn(25061, req.Name)}
		reply(201, map[string]any{"pool": f.pools[req.Name]})
	case r.Method == "PUT" && strings.HasPrefix(p, "/v2/databases/c1/pools/"):
		name := strings.TrimPrefix(p, "/v2/databases/c1/pools/")
		var req godo.DatabaseUpdatePoolRequest
		json.NewDecoder(r.Body).Decode(&req)
		pl, ok := f.pools[name]
		if !ok || f.sum()-pl.Size+req.Size > 97 {
			reply(422, map[string]string{"id": "unprocessable_entity", "message": "no such pool or size too large"})
			return
		}
		pl.User, pl.Size, pl.Database, pl.Mode = req.User, req.Size, req.Database, req.Mode
		f.pools[name] = pl
		w.WriteHeader(204)
	case r.Method == "GET" && p == "/v2/cdn/endpoints":
		reply(200, map[string]any{"endpoints": f.eps, "links": map[string]any{}, "meta": map[string]int{"total": len(f.eps)}})
	case r.Method == "POST" && p == "/v2/cdn/endpoints":
		var req godo.CDNCreateRequest
		json.NewDecoder(r.Body).Decode(&req)
		f.eps = append(f.eps, godo.CDN{ID: fmt.Sprintf("ep-%d", len(f.eps)+1), Origin: req.Origin, TTL: req.TTL,
			CustomDomain: req.CustomDomain, CertificateID: req.CertificateID, CreatedAt: time.Now().UTC()})
		reply(201, map[string]any{"endpoint": f.eps[len(f.eps)-1]})
	case r.Method == "PUT" && func() bool { rest, _ = strings.CutPrefix(p, "/v2/cdn/endpoints/"); return rest != p }():
		for i := range f.eps {
			if f.eps[i].ID == rest {
				var req map[string]any
				json.NewDecoder(r.Body).Decode(&req)
				if ttl, ok := req["ttl"].(float64); ok {
					f.eps[i].TTL = uint32(ttl)
				}
				if d, ok := req["custom_domain"].(string); ok {
					f.eps[i].CustomDomain, f.eps[i].CertificateID = d, req["certificate_id"].(string)
				}
				reply(200, map[string]any{"endpoint": f.eps[i]})
				return
			}
		}
		reply(404, map[string]string{"id": "not_found", "message": "no such endpoint"})
	default:
		reply(404, map[string]string{"id": "not_found", "message": "The resource you were accessing could not be found."})
	}
}

func (f *fakeDO) sum() (n int) {
	for _, p := range f.pools {
		n += p.Size
	}
	return n
}

func (f *fakeDO) writeCount() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.writes) }

func testCA(t *testing.T) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "majel CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// harness runs provision in-process and keeps every byte it printed.
type harness struct {
	t      *testing.T
	srv    *httptest.Server
	dir    string
	env    string
	getenv map[string]string // the process environment besides the token and API URL
	output bytes.Buffer
}

func newHarness(t *testing.T, srv *httptest.Server) *harness {
	dir := t.TempDir()
	h := &harness{t: t, srv: srv, dir: dir, env: filepath.Join(dir, ".env.production")}
	if err := os.WriteFile(h.env, []byte(seedEnv), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, s := range secrets {
			if strings.Contains(h.output.String(), s) {
				t.Errorf("output contains the secret %q:\n%s", s, h.output.String())
			}
		}
	})
	return h
}

func (h *harness) run(args ...string) (code int, stdout, stderr string) {
	h.t.Helper()
	getenv := func(k string) string {
		if v, ok := h.getenv[k]; ok {
			return v
		}
		return map[string]string{"DIGITALOCEAN_TOKEN": token, "DIGITALOCEAN_API_URL": h.srv.URL}[k]
	}
	var o, e bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code = run(ctx, args, getenv, &o, &e)
	h.output.Write(o.Bytes())
	h.output.Write(e.Bytes())
	return code, o.String(), e.String()
}

func (h *harness) provision(extra ...string) []string {
	return append([]string{"-env", h.env, "-cluster", "c1", "-ca-file", filepath.Join(h.dir, "do-internal.crt"), "-cdn-cert-id", "cert-1"}, extra...)
}

func mustContain(t *testing.T, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("missing %q in:\n%s", sub, s)
		}
	}
}

func TestPlanApplyIdempotent(t *testing.T) {
	f, srv := newFake(t)
	h := newHarness(t, srv)
	caPath := filepath.Join(h.dir, "do-internal.crt")
	before, _ := os.Stat(h.env)

	code, out, errs := h.run(h.provision()...)
	if code != 0 {
		t.Fatalf("plan: exit %d\n%s%s", code, out, errs)
	}
	t.Logf("plan:\n%s", out)
	mustContain(t, out, "1. ca "+caPath+": write (mode 0644)",
		"2. pool the_mastodon_connection_pool, cluster c1: 1 change(s)",
		"create pool the_mastodon_connection_pool: db=mastodon_production user=the_mastodon_user size=92 mode=transaction",
		"3. cdn ourbucketname.nyc3.digitaloceanspaces.com: create: origin ourbucketname.nyc3.digitaloceanspaces.com, ttl 3600, custom domain cdn.vmst.io, certificate cert-1",
		"set DB_HOST="+dbHost+` (was "path-to-postgres-database.ondigitalocean.com")`,
		"set NODE_EXTRA_CA_CERTS="+caPath, "set FEDIOPS_DB_DIRECT_NAME=mastodon_production",
		"set FEDIOPS_DB_CA_FILE="+caPath+" (was unset)", "7 change(s); run with -apply")
	if strings.Contains(out, "set DB_PORT") || strings.Contains(out, "set DB_PASS") {
		t.Errorf("plan sets what is already right:\n%s", out)
	}
	// The seed's unquoted DB_PASS: a warning naming it, never its value,
	// and the rewrite offered but not planned.
	mustContain(t, errs, "provision: warning: "+h.env+":14: DB_PASS: Rails/Sidekiq (Ruby dotenv) read only the first 25")
	mustContain(t, out, "offer: DB_PASS reads differently in Rails and in the streaming server")
	if strings.Contains(out+errs, "Ourpassw0rd") || strings.Contains(out+errs, "iness") {
		t.Errorf("a secret reached the output:\n%s%s", out, errs)
	}
	if got, _ := os.ReadFile(h.env); string(got) != seedEnv || f.writeCount() != 0 {
		t.Fatalf("the plan changed something: %d API writes, env changed %t", f.writeCount(), string(got) != seedEnv)
	}
	if _, err := os.Stat(caPath); err == nil {
		t.Fatal("the plan wrote the CA")
	}

	code, out, errs = h.run(h.provision("-apply")...)
	if code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errs)
	}
	mustContain(t, out, "applied 7 change(s)")
	if p := f.pools["the_mastodon_connection_pool"]; p.Size != 92 || p.Mode != "transaction" || p.Database != "mastodon_production" || p.User != "the_mastodon_user" {
		t.Errorf("pool: %+v", p)
	}
	if len(f.eps) != 1 || f.eps[0].CustomDomain != "cdn.vmst.io" || f.eps[0].CertificateID != "cert-1" || f.eps[0].TTL != 3600 {
		t.Errorf("cdn endpoints: %+v", f.eps)
	}
	if ca, err := os.ReadFile(caPath); err != nil || !bytes.Equal(ca, f.ca) {
		t.Errorf("CA file: %v", err)
	}
	if st, _ := os.Stat(caPath); st.Mode().Perm() != 0o644 {
		t.Errorf("CA mode %v", st.Mode())
	}
	after, _ := os.Stat(h.env)
	if os.SameFile(before, after) || after.Mode().Perm() != 0o600 {
		t.Errorf("env not replaced by rename keeping mode 0600: same inode %t, mode %v", os.SameFile(before, after), after.Mode())
	}
	if ents, _ := os.ReadDir(h.dir); len(ents) != 2 {
		t.Errorf("left behind in %s: %v", h.dir, ents)
	}
	env, err := fediops.ReadEnv(h.env, fediops.WithEnviron(nil))
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"DB_HOST": dbHost, "DB_PORT": "25061", "DB_NAME": "the_mastodon_connection_pool",
		"DB_USER": "the_mastodon_user", "PREPARED_STATEMENTS": "false", "DB_SSLMODE": "require", "NODE_EXTRA_CA_CERTS": caPath,
		"FEDIOPS_DB_CA_FILE": caPath, "FEDIOPS_DB_DIRECT_NAME": "mastodon_production", "S3_ALIAS_HOST": "cdn.vmst.io"} {
		if got := env.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	cfg, err := pgpool.ConfigFromEnv(env.Lookup, pgpool.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil || !cfg.IsPooled || cfg.TLS != pgpool.TLSVerifyFull || cfg.DirectEndpoint != (pgpool.Endpoint{Host: dbHost, Port: 25060, Database: "mastodon_production"}) {
		t.Errorf("pgpool.ConfigFromEnv on the written file: %v, %+v", err, cfg)
	}
	if raw, _ := os.ReadFile(h.env); !bytes.Contains(raw, []byte("\nDB_PASS=Ourpassw0rd!sNoneofyourbu$iness\n")) {
		t.Errorf("DB_PASS line changed:\n%s", raw)
	}

	writes, envBytes, caInfo := f.writeCount(), mustRead(t, h.env), mustStat(t, caPath)
	code, out, errs = h.run(h.provision("-apply")...)
	if code != 0 || !strings.Contains(out, "0 change(s)") || f.writeCount() != writes {
		t.Fatalf("second apply: exit %d, %d new API writes\n%s%s", code, f.writeCount()-writes, out, errs)
	}
	mustContain(t, out, "1. ca "+caPath+": up to date", "keep pool the_mastodon_connection_pool: size=92", "cdn ourbucketname.nyc3.digitaloceanspaces.com: up to date", "4. env "+h.env+": up to date")
	if !bytes.Equal(mustRead(t, h.env), envBytes) || !os.SameFile(caInfo, mustStat(t, caPath)) {
		t.Error("second apply rewrote the env or CA file")
	}

	// -quote takes the offer: DB_PASS single-quoted as written, so that
	// Rails reads the whole text too; then nothing is left to offer.
	code, out, errs = h.run(h.provision("-apply", "-quote")...)
	if code != 0 || !strings.Contains(out, "applied 1 change(s)") || strings.Contains(out+errs, "Ourpassw0rd") {
		t.Fatalf("-quote: exit %d\n%s%s", code, out, errs)
	}
	if raw := mustRead(t, h.env); !bytes.Contains(raw, []byte("\nDB_PASS='Ourpassw0rd!sNoneofyourbu$iness'\n")) {
		t.Errorf("DB_PASS not single-quoted as written:\n%s", raw)
	}
	code, out, errs = h.run(h.provision()...)
	if code != 0 || strings.Contains(errs, "DB_PASS") || strings.Contains(out, "offer:") || !strings.Contains(out, "0 change(s)") {
		t.Errorf("after -quote: exit %d\n%s%s", code, out, errs)
	}
}

func TestExistingPoolAndEndpointAreUpdated(t *testing.T) {
	f, srv := newFake(t)
	f.pools["sidekiq"] = godo.DatabasePool{Name: "sidekiq", Size: 20, Mode: "transaction", Database: "mastodon_production", User: "u"}
	f.pools["the_mastodon_connection_pool"] = godo.DatabasePool{Name: "the_mastodon_connection_pool", Size: 10, Mode: "session", Database: "mastodon_production", User: "the_mastodon_user"}
	f.eps = []godo.CDN{{ID: "ep-9", Origin: "ourbucketname.nyc3.digitaloceanspaces.com", TTL: 3600}}
	h := newHarness(t, srv)
	t.Chdir(h.dir)
	code, out, errs := h.run(h.provision("-ttl", "86400", "-reserve", "7", "-ca-file", "rel.crt", "-apply")...)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	if env, err := fediops.ReadEnv(h.env, fediops.WithEnviron(nil)); err != nil || env.Get("NODE_EXTRA_CA_CERTS") != filepath.Join(h.dir, "rel.crt") {
		t.Errorf("relative -ca-file not written as an absolute path: %v", err)
	}
	mustContain(t, out, "update pool the_mastodon_connection_pool: size 10 -> 70, mode session -> transaction",
		`update-custom-domain: "" (certificate "") -> "cdn.vmst.io" (certificate "cert-1")`, "update-ttl: 3600 -> 86400")
	if p := f.pools["the_mastodon_connection_pool"]; p.Size != 70 || p.Mode != "transaction" || f.pools["sidekiq"].Size != 20 {
		t.Errorf("pools: %+v", f.pools)
	}
	if e := f.eps[0]; len(f.eps) != 1 || e.CustomDomain != "cdn.vmst.io" || e.CertificateID != "cert-1" || e.TTL != 86400 {
		t.Errorf("endpoints: %+v", f.eps)
	}
}

// FEDIOPS_DB_CONN_LIMIT, from the file or (winning) from the environment,
// replaces DO's limit of 97 in the pool's size.
func TestConnLimitOverride(t *testing.T) {
	f, srv := newFake(t)
	f.pools["sidekiq"] = godo.DatabasePool{Name: "sidekiq", Size: 20, Mode: "transaction", Database: "mastodon_production", User: "u"}
	h := newHarness(t, srv)
	if err := os.WriteFile(h.env, []byte(seedEnv+"FEDIOPS_DB_CONN_LIMIT=60\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := h.run(h.provision()...)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	mustContain(t, out, "create pool the_mastodon_connection_pool: db=mastodon_production user=the_mastodon_user size=35 mode=transaction", // 60 - 20 - 5
		"after: limit 60, pools 55, reserve/direct 5, headroom 0")
	h.getenv = map[string]string{"FEDIOPS_DB_CONN_LIMIT": "50"}
	code, out, errs = h.run(h.provision("-apply")...)
	if code != 0 || f.pools["the_mastodon_connection_pool"].Size != 25 { // 50 - 20 - 5
		t.Fatalf("exit %d, pool %+v\n%s%s", code, f.pools["the_mastodon_connection_pool"], out, errs)
	}
	h.getenv = map[string]string{"FEDIOPS_DB_CONN_LIMIT": "lots"}
	if code, out, errs = h.run(h.provision()...); code != 2 || !strings.Contains(errs, "FEDIOPS_DB_CONN_LIMIT") {
		t.Errorf("bad limit: exit %d\n%s%s", code, out, errs)
	}
}

func TestMigrateEnvRoundTrip(t *testing.T) {
	_, srv := newFake(t)
	h := newHarness(t, srv)
	if code, out, errs := h.run(h.provision("-apply")...); code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errs)
	}
	pooled := mustRead(t, h.env)
	code, out, errs := h.run("migrate-env", "-env", h.env, "--to", "direct")
	if code != 0 {
		t.Fatalf("to direct: exit %d\n%s%s", code, out, errs)
	}
	mustContain(t, out, "now points at "+dbHost+":25060/mastodon_production")
	env, err := fediops.ReadEnv(h.env, fediops.WithEnviron(nil))
	if err != nil {
		t.Fatal(err)
	}
	port, name := env.Get("DB_PORT"), env.Get("DB_NAME")
	if _, ps := env.Lookup("PREPARED_STATEMENTS"); port != "25060" || name != "mastodon_production" || ps {
		t.Errorf("direct: DB_PORT=%s DB_NAME=%s PREPARED_STATEMENTS set %t", port, name, ps)
	}
	if code, _, errs = h.run(h.provision()...); code != 1 || !strings.Contains(errs, "migration mode") {
		t.Errorf("provision in direct mode: exit %d, %s", code, errs)
	}
	if code, _, errs = h.run("migrate-env", "-env", h.env, "--to", "direct"); code != 1 || !strings.Contains(errs, "already in direct") {
		t.Errorf("second to direct: exit %d, %s", code, errs)
	}
	if code, out, errs = h.run("migrate-env", "-env", h.env, "--to", "pooled"); code != 0 {
		t.Fatalf("to pooled: exit %d\n%s%s", code, out, errs)
	}
	if !bytes.Equal(mustRead(t, h.env), pooled) {
		t.Error("to pooled did not restore the exact bytes")
	}
	if code, _, errs = h.run("migrate-env", "-env", h.env, "--to", "pooled"); code != 1 || !strings.Contains(errs, "not in direct") {
		t.Errorf("second to pooled: exit %d, %s", code, errs)
	}
}

func TestUsageAndRuntimeErrors(t *testing.T) {
	_, srv := newFake(t)
	h := newHarness(t, srv)
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"-h"}, 0, "usage: provision -cluster ID"},
		{[]string{"-env", h.env}, 2, "-cluster and DIGITALOCEAN_TOKEN are required"},
		{[]string{"-nosuchflag"}, 2, "flag provided but not defined"},
		{h.provision("-ttl", "5"), 2, "TTL"},
		{[]string{"-env", h.env, "-cluster", "c1"}, 2, "CertificateID"},
		{h.provision("-env", filepath.Join(h.dir, "missing")), 2, "missing"},
		{h.provision("-cluster", "nope"), 1, "404"},
		{h.provision("-reserve", "97"), 1, "no connections left for pool the_mastodon_connection_pool: limit 97 - other pools 0 - reserve 97"},
		{[]string{"migrate-env", "-env", h.env, "--to", "sideways"}, 2, "--to must be direct or pooled"},
		{[]string{"migrate-env", "-env", h.env, "--to", "pooled"}, 1, "not in direct"},
		{[]string{"migrate-env", "--to", "direct", "now"}, 2, "unexpected arguments"},
	} {
		code, out, errs := h.run(c.args...)
		if code != c.code || !strings.Contains(out+errs, c.msg) {
			t.Errorf("%q: exit %d, want %d with %q:\n%s%s", c.args, code, c.code, c.msg, out, errs)
		}
	}
}

// TestBinary builds the program and checks the exit statuses os.Exit gives.
func TestBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "provision")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-h")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "-cdn-cert-id") {
		t.Errorf("-h: %v\n%s", err, out)
	}
	cmd = exec.Command(bin, "-cluster", "c1")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	if out, err := cmd.CombinedOutput(); cmd.ProcessState.ExitCode() != 2 {
		t.Errorf("no token: %v, exit %d\n%s", err, cmd.ProcessState.ExitCode(), out)
	}
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustStat(t *testing.T, p string) os.FileInfo {
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
