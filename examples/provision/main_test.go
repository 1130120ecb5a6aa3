package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/godo"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/internal/dofake"
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

// clusterID is the cluster provision manages and certID the certificate
// of the CDN's custom domain (DO's IDs of both are UUIDs).
var clusterID, certID = dofake.UUID(1), dofake.UUID(2)

// fakeDO is the DO stand-in with one cluster (4 GiB: limit 97), its CA
// and pools, and CDN endpoints.
type fakeDO struct {
	*dofake.Server
	ca  []byte
	url string
}

func newFake(t *testing.T) *fakeDO {
	return newFakeSized(t, "db-s-2vcpu-4gb", 97)
}

func newFakeSized(t *testing.T, size string, limit int) *fakeDO {
	f := &fakeDO{Server: dofake.New(dofake.Options{Token: token}), ca: testCA(t)}
	f.AddCluster(dofake.Cluster{ID: clusterID, Name: "majel", Size: size, Host: dbHost, PrivateHost: "private-" + dbHost,
		Password: poolPass, CA: f.ca, Limit: limit})
	f.url = f.Start(t)
	f.RefuseNothing(t)
	return f
}

func TestMain(m *testing.M) {
	code := m.Run()
	fmt.Printf("provision: %d DigitalOcean API requests checked against DO's specification\n", dofake.CheckedAll())
	os.Exit(code)
}

// writeCount is the number of requests that change something.
func (f *fakeDO) writeCount() int {
	n := 0
	for _, c := range f.Calls() {
		if c.Method != http.MethodGet {
			n++
		}
	}
	return n
}

func (f *fakeDO) pool(name string) godo.DatabasePool {
	p, _ := f.Pool(clusterID, name)
	return p
}

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
	f      *fakeDO
	dir    string
	env    string
	getenv map[string]string // the process environment besides the token and API URL
	output bytes.Buffer
}

func newHarness(t *testing.T, f *fakeDO) *harness {
	dir := t.TempDir()
	h := &harness{t: t, f: f, dir: dir, env: filepath.Join(dir, ".env.production")}
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
		return map[string]string{"DIGITALOCEAN_TOKEN": token, "DIGITALOCEAN_API_URL": h.f.url}[k]
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
	return append([]string{"-env", h.env, "-cluster", clusterID, "-ca-file", filepath.Join(h.dir, "do-internal.crt"), "-cdn-cert-id", certID}, extra...)
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
	f := newFake(t)
	h := newHarness(t, f)
	caPath := filepath.Join(h.dir, "do-internal.crt")
	before, _ := os.Stat(h.env)

	code, out, errs := h.run(h.provision()...)
	if code != 0 {
		t.Fatalf("plan: exit %d\n%s%s", code, out, errs)
	}
	t.Logf("plan:\n%s", out)
	mustContain(t, out, "1. ca "+caPath+": write (mode 0644)",
		"2. pool the_mastodon_connection_pool, cluster "+clusterID+": 1 change(s)",
		"create pool the_mastodon_connection_pool: db=mastodon_production user=the_mastodon_user size=92 mode=transaction",
		"3. cdn ourbucketname.nyc3.digitaloceanspaces.com: create: origin ourbucketname.nyc3.digitaloceanspaces.com, ttl 3600, custom domain cdn.vmst.io, certificate "+certID,
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
	if p := f.pool("the_mastodon_connection_pool"); p.Size != 92 || p.Mode != "transaction" || p.Database != "mastodon_production" || p.User != "the_mastodon_user" {
		t.Errorf("pool: %+v", p)
	}
	if eps := f.Endpoints(); len(eps) != 1 || eps[0].CustomDomain != "cdn.vmst.io" || eps[0].CertificateID != certID || eps[0].TTL != 3600 {
		t.Errorf("cdn endpoints: %+v", eps)
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
	f := newFake(t)
	f.PutPool(clusterID, godo.DatabasePool{Name: "sidekiq", Size: 20, Mode: "transaction", Database: "mastodon_production", User: "u"})
	f.PutPool(clusterID, godo.DatabasePool{Name: "the_mastodon_connection_pool", Size: 10, Mode: "session", Database: "mastodon_production", User: "the_mastodon_user"})
	f.AddEndpoint(godo.CDN{Origin: "ourbucketname.nyc3.digitaloceanspaces.com", TTL: 3600})
	h := newHarness(t, f)
	t.Chdir(h.dir)
	code, out, errs := h.run(h.provision("-ttl", "86400", "-reserve", "7", "-ca-file", "rel.crt", "-apply")...)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	if env, err := fediops.ReadEnv(h.env, fediops.WithEnviron(nil)); err != nil || env.Get("NODE_EXTRA_CA_CERTS") != filepath.Join(h.dir, "rel.crt") {
		t.Errorf("relative -ca-file not written as an absolute path: %v", err)
	}
	mustContain(t, out, "update pool the_mastodon_connection_pool: size 10 -> 70, mode session -> transaction",
		`update-custom-domain: "" (certificate "") -> "cdn.vmst.io" (certificate "`+certID+`")`, "update-ttl: 3600 -> 86400")
	if p := f.pool("the_mastodon_connection_pool"); p.Size != 70 || p.Mode != "transaction" || f.pool("sidekiq").Size != 20 {
		t.Errorf("pools: %+v", f.Pools(clusterID))
	}
	if eps := f.Endpoints(); len(eps) != 1 || eps[0].CustomDomain != "cdn.vmst.io" || eps[0].CertificateID != certID || eps[0].TTL != 86400 {
		t.Errorf("endpoints: %+v", eps)
	}
}

// FEDIOPS_DB_CONN_LIMIT, from the file or (winning) from the environment,
// replaces DO's limit of 97 in the pool's size.
func TestConnLimitOverride(t *testing.T) {
	f := newFake(t)
	f.PutPool(clusterID, godo.DatabasePool{Name: "sidekiq", Size: 20, Mode: "transaction", Database: "mastodon_production", User: "u"})
	h := newHarness(t, f)
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
	if code != 0 || f.pool("the_mastodon_connection_pool").Size != 25 { // 50 - 20 - 5
		t.Fatalf("exit %d, pool %+v\n%s%s", code, f.pool("the_mastodon_connection_pool"), out, errs)
	}
	h.getenv = map[string]string{"FEDIOPS_DB_CONN_LIMIT": "lots"}
	if code, out, errs = h.run(h.provision()...); code != 2 || !strings.Contains(errs, "FEDIOPS_DB_CONN_LIMIT") {
		t.Errorf("bad limit: exit %d\n%s%s", code, out, errs)
	}
}

func TestMigrateEnvRoundTrip(t *testing.T) {
	h := newHarness(t, newFake(t))
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
	h := newHarness(t, newFake(t))
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"-h"}, 0, "usage: provision -cluster ID"},
		{[]string{"-env", h.env}, 2, "-cluster and DIGITALOCEAN_TOKEN are required"},
		{[]string{"-nosuchflag"}, 2, "flag provided but not defined"},
		{h.provision("-ttl", "5"), 2, "TTL"},
		{[]string{"-env", h.env, "-cluster", clusterID}, 2, "CertificateID"},
		{h.provision("-env", filepath.Join(h.dir, "missing")), 2, "missing"},
		{h.provision("-cluster", dofake.UUID(404)), 1, "404"},
		{h.provision("-api-url", "http://api.digitalocean.com"), 2, "must be https"},
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

// A cluster on one of DO's "-intel" sizes (8 GiB: limit 197) is planned
// and applied like any other; the pool gets 197 - 5 reserved.
func TestIntelSizedCluster(t *testing.T) {
	f := newFakeSized(t, "gd-2vcpu-8gb-intel", 197)
	h := newHarness(t, f)
	code, out, errs := h.run(h.provision("-apply")...)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	mustContain(t, out, "create pool the_mastodon_connection_pool: db=mastodon_production user=the_mastodon_user size=192 mode=transaction",
		"after: limit 197, pools 192, reserve/direct 5, headroom 0")
	if p := f.pool("the_mastodon_connection_pool"); p.Size != 192 {
		t.Errorf("pool %+v", p)
	}
}

// A wrong local setting (a TTL DO does not offer, a custom domain without
// its certificate, a clear-text API URL) stops provision with exit 2
// before its first call to the API.
func TestLocalSettingsBeforeNetwork(t *testing.T) {
	f := newFake(t)
	h := newHarness(t, f)
	for _, args := range [][]string{
		h.provision("-ttl", "5"),
		{"-env", h.env, "-cluster", clusterID},
		h.provision("-api-url", "http://api.digitalocean.com"),
	} {
		if code, out, errs := h.run(args...); code != 2 {
			t.Errorf("%q: exit %d\n%s%s", args, code, out, errs)
		}
	}
	if calls := f.Calls(); len(calls) != 0 {
		t.Errorf("API calls before the settings were checked: %v", calls)
	}
}
