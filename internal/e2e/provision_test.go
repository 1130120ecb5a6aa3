package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net/http"
	"os"
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
	doToken  = "dop_v1_test_token_0123456789abcdef"
	poolPass = "pool-password-from-the-api"
	dbHost   = "majel-do-user-1-0.b.db.ondigitalocean.com"
)

// seedEnv is the seed's .env.production snippets: Puma, Streaming, Postgres, Object Store.
var seedEnv = testenv.SeedEnv()

// provisionSecrets are what provision must never print.
var provisionSecrets = append([]string{doToken, poolPass}, SeedSecrets...)

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

func newFakeDO(t *testing.T) *fakeDO {
	return newFakeDOSized(t, "db-s-2vcpu-4gb", 97)
}

func newFakeDOSized(t *testing.T, size string, limit int) *fakeDO {
	f := &fakeDO{Server: dofake.New(dofake.Options{Token: doToken}), ca: testCA(t)}
	f.AddCluster(dofake.Cluster{ID: clusterID, Name: "majel", Size: size, Host: dbHost, PrivateHost: "private-" + dbHost,
		Password: poolPass, CA: f.ca, Limit: limit})
	f.url = f.Start(t)
	f.RefuseNothing(t)
	return f
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

// provisionHarness runs the built provision in a directory holding the
// seed's .env.production, against the DO stand-in, and checks at the end
// that no secret reached any output.
type provisionHarness struct {
	t      *testing.T
	f      *fakeDO
	dir    string
	env    string
	extra  []string // more of the process environment
	output strings.Builder
}

func newProvisionHarness(t *testing.T, f *fakeDO) *provisionHarness {
	dir := t.TempDir()
	h := &provisionHarness{t: t, f: f, dir: dir, env: filepath.Join(dir, ".env.production")}
	if err := os.WriteFile(h.env, []byte(seedEnv), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { NoSecret(t, h.output.String(), provisionSecrets...) })
	return h
}

func (h *provisionHarness) run(args ...string) Result {
	h.t.Helper()
	r := Run(h.t, "provision", Env(append([]string{"DIGITALOCEAN_TOKEN=" + doToken, "DIGITALOCEAN_API_URL=" + h.f.url}, h.extra...)...), args...)
	h.output.WriteString(r.Output())
	return r
}

func (h *provisionHarness) args(extra ...string) []string {
	return append([]string{"-env", h.env, "-cluster", clusterID, "-ca-file", filepath.Join(h.dir, "do-internal.crt"), "-cdn-cert-id", certID}, extra...)
}

func TestProvisionPlanApplyIdempotent(t *testing.T) {
	f := newFakeDO(t)
	h := newProvisionHarness(t, f)
	caPath := filepath.Join(h.dir, "do-internal.crt")
	before, _ := os.Stat(h.env)

	r := h.run(h.args()...)
	if r.Code != 0 {
		t.Fatalf("plan: %s", r)
	}
	Contains(t, r.Stdout, "1. ca "+caPath+": write (mode 0644)",
		"2. pool the_mastodon_connection_pool, cluster "+clusterID+": 1 change(s)",
		"create pool the_mastodon_connection_pool: db=mastodon_production user=the_mastodon_user size=92 mode=transaction",
		"3. cdn ourbucketname.nyc3.digitaloceanspaces.com: create: origin ourbucketname.nyc3.digitaloceanspaces.com, ttl 3600, custom domain cdn.vmst.io, certificate "+certID,
		"set DB_HOST="+dbHost+` (was "path-to-postgres-database.ondigitalocean.com")`,
		"set NODE_EXTRA_CA_CERTS="+caPath, "set FEDIOPS_DB_DIRECT_NAME=mastodon_production",
		"set FEDIOPS_DB_CA_FILE="+caPath+" (was unset)", "7 change(s); run with -apply")
	if strings.Contains(r.Stdout, "set DB_PORT") || strings.Contains(r.Stdout, "set DB_PASS") {
		t.Errorf("plan sets what is already right:\n%s", r.Stdout)
	}
	// The seed's unquoted DB_PASS: a warning naming it, never its value,
	// and the rewrite offered but not planned.
	Contains(t, r.Stderr, "provision: warning: "+h.env+":14: DB_PASS: Rails/Sidekiq (Ruby dotenv) read only the first 25")
	Contains(t, r.Stdout, "offer: DB_PASS reads differently in Rails and in the streaming server")
	if strings.Contains(r.Output(), "Ourpassw0rd") || strings.Contains(r.Output(), "iness") {
		t.Errorf("a secret reached the output: %s", r)
	}
	if got, _ := os.ReadFile(h.env); string(got) != seedEnv || f.writeCount() != 0 {
		t.Fatalf("the plan changed something: %d API writes, env changed %t", f.writeCount(), string(got) != seedEnv)
	}
	if _, err := os.Stat(caPath); err == nil {
		t.Fatal("the plan wrote the CA")
	}

	r = h.run(h.args("-apply")...)
	if r.Code != 0 {
		t.Fatalf("apply: %s", r)
	}
	Contains(t, r.Stdout, "applied 7 change(s)")
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
	r = h.run(h.args("-apply")...)
	if r.Code != 0 || !strings.Contains(r.Stdout, "0 change(s)") || f.writeCount() != writes {
		t.Fatalf("second apply: %d new API writes; %s", f.writeCount()-writes, r)
	}
	Contains(t, r.Stdout, "1. ca "+caPath+": up to date", "keep pool the_mastodon_connection_pool: size=92", "cdn ourbucketname.nyc3.digitaloceanspaces.com: up to date", "4. env "+h.env+": up to date")
	if !bytes.Equal(mustRead(t, h.env), envBytes) || !os.SameFile(caInfo, mustStat(t, caPath)) {
		t.Error("second apply rewrote the env or CA file")
	}

	// Once the endpoint serves the custom domain, -cdn-cert-id is not
	// needed any more: the endpoint keeps its certificate.
	r = h.run("-env", h.env, "-cluster", clusterID, "-ca-file", caPath, "-apply")
	if r.Code != 0 || !strings.Contains(r.Stdout, "cdn ourbucketname.nyc3.digitaloceanspaces.com: up to date") || f.writeCount() != writes {
		t.Errorf("without -cdn-cert-id once the CDN exists: %s", r)
	}

	// -quote takes the offer: DB_PASS single-quoted as written, so that
	// Rails reads the whole text too; then nothing is left to offer.
	r = h.run(h.args("-apply", "-quote")...)
	if r.Code != 0 || !strings.Contains(r.Stdout, "applied 1 change(s)") || strings.Contains(r.Output(), "Ourpassw0rd") {
		t.Fatalf("-quote: %s", r)
	}
	if raw := mustRead(t, h.env); !bytes.Contains(raw, []byte("\nDB_PASS='Ourpassw0rd!sNoneofyourbu$iness'\n")) {
		t.Errorf("DB_PASS not single-quoted as written:\n%s", raw)
	}
	r = h.run(h.args()...)
	if r.Code != 0 || strings.Contains(r.Stderr, "DB_PASS") || strings.Contains(r.Stdout, "offer:") || !strings.Contains(r.Stdout, "0 change(s)") {
		t.Errorf("after -quote: %s", r)
	}
}

func TestProvisionUpdatesExistingPoolAndEndpoint(t *testing.T) {
	f := newFakeDO(t)
	f.PutPool(clusterID, godo.DatabasePool{Name: "sidekiq", Size: 20, Mode: "transaction", Database: "mastodon_production", User: "u"})
	f.PutPool(clusterID, godo.DatabasePool{Name: "the_mastodon_connection_pool", Size: 10, Mode: "session", Database: "mastodon_production", User: "the_mastodon_user"})
	f.AddEndpoint(godo.CDN{Origin: "ourbucketname.nyc3.digitaloceanspaces.com", TTL: 3600})
	h := newProvisionHarness(t, f)
	t.Chdir(h.dir) // a relative -ca-file is relative to the working directory
	r := h.run(h.args("-ttl", "86400", "-reserve", "7", "-ca-file", "rel.crt", "-apply")...)
	if r.Code != 0 {
		t.Fatal(r)
	}
	if env, err := fediops.ReadEnv(h.env, fediops.WithEnviron(nil)); err != nil || env.Get("NODE_EXTRA_CA_CERTS") != filepath.Join(h.dir, "rel.crt") {
		t.Errorf("relative -ca-file not written as an absolute path: %v", err)
	}
	Contains(t, r.Stdout, "update pool the_mastodon_connection_pool: size 10 -> 70, mode session -> transaction",
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
func TestProvisionConnLimitOverride(t *testing.T) {
	f := newFakeDO(t)
	f.PutPool(clusterID, godo.DatabasePool{Name: "sidekiq", Size: 20, Mode: "transaction", Database: "mastodon_production", User: "u"})
	h := newProvisionHarness(t, f)
	if err := os.WriteFile(h.env, []byte(seedEnv+"FEDIOPS_DB_CONN_LIMIT=60\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := h.run(h.args()...)
	if r.Code != 0 {
		t.Fatal(r)
	}
	Contains(t, r.Stdout, "create pool the_mastodon_connection_pool: db=mastodon_production user=the_mastodon_user size=35 mode=transaction", // 60 - 20 - 5
		"after: limit 60, pools 55, reserve/direct 5, headroom 0")
	h.extra = []string{"FEDIOPS_DB_CONN_LIMIT=50"}
	if r = h.run(h.args("-apply")...); r.Code != 0 || f.pool("the_mastodon_connection_pool").Size != 25 { // 50 - 20 - 5
		t.Fatalf("pool %+v; %s", f.pool("the_mastodon_connection_pool"), r)
	}
	h.extra = []string{"FEDIOPS_DB_CONN_LIMIT=lots"}
	if r = h.run(h.args()...); r.Code != 2 || !strings.Contains(r.Stderr, "FEDIOPS_DB_CONN_LIMIT") {
		t.Errorf("bad limit: %s", r)
	}
}

func TestProvisionMigrateEnvRoundTrip(t *testing.T) {
	h := newProvisionHarness(t, newFakeDO(t))
	if r := h.run(h.args("-apply")...); r.Code != 0 {
		t.Fatalf("apply: %s", r)
	}
	pooled := mustRead(t, h.env)
	r := h.run("migrate-env", "-env", h.env, "--to", "direct")
	if r.Code != 0 {
		t.Fatalf("to direct: %s", r)
	}
	Contains(t, r.Stdout, "now points at "+dbHost+":25060/mastodon_production")
	Contains(t, r.Stderr, "provision: warning: "+h.env+":14: DB_PASS") // migrate-env reads -env too
	env, err := fediops.ReadEnv(h.env, fediops.WithEnviron(nil))
	if err != nil {
		t.Fatal(err)
	}
	port, name := env.Get("DB_PORT"), env.Get("DB_NAME")
	if _, ps := env.Lookup("PREPARED_STATEMENTS"); port != "25060" || name != "mastodon_production" || ps {
		t.Errorf("direct: DB_PORT=%s DB_NAME=%s PREPARED_STATEMENTS set %t", port, name, ps)
	}
	if r = h.run(h.args()...); r.Code != 2 || !strings.Contains(r.Stderr, "migration mode") {
		t.Errorf("provision in direct mode: %s", r)
	}
	if r = h.run("migrate-env", "-env", h.env, "--to", "direct"); r.Code != 2 || !strings.Contains(r.Stderr, "already in direct") {
		t.Errorf("second to direct: %s", r)
	}
	if r = h.run("migrate-env", "-env", h.env, "--to", "pooled"); r.Code != 0 {
		t.Fatalf("to pooled: %s", r)
	}
	if !bytes.Equal(mustRead(t, h.env), pooled) {
		t.Error("to pooled did not restore the exact bytes")
	}
	if r = h.run("migrate-env", "-env", h.env, "--to", "pooled"); r.Code != 2 || !strings.Contains(r.Stderr, "not in direct") {
		t.Errorf("second to pooled: %s", r)
	}
}

// A cluster on one of DO's "-intel" sizes (8 GiB: limit 197) is planned
// and applied like any other; the pool gets 197 - 5 reserved.
func TestProvisionIntelSizedCluster(t *testing.T) {
	f := newFakeDOSized(t, "gd-2vcpu-8gb-intel", 197)
	h := newProvisionHarness(t, f)
	r := h.run(h.args("-apply")...)
	if r.Code != 0 {
		t.Fatal(r)
	}
	Contains(t, r.Stdout, "create pool the_mastodon_connection_pool: db=mastodon_production user=the_mastodon_user size=192 mode=transaction",
		"after: limit 197, pools 192, reserve/direct 5, headroom 0")
	if p := f.pool("the_mastodon_connection_pool"); p.Size != 192 {
		t.Errorf("pool %+v", p)
	}
}

// TestProvisionExitCodes is provision's exit-code matrix. The rows marked
// local stop before the first API call (the fake counts none); the budget
// and the CDN's certificate need the cluster's and the endpoint's state,
// so they stop after the reads, before any write and with nothing of the
// plan printed.
func TestProvisionExitCodes(t *testing.T) {
	f := newFakeDO(t)
	h := newProvisionHarness(t, f)
	dead := freeAddr(t) // nothing listens there
	for _, c := range []struct {
		name  string
		args  []string
		code  int
		msg   string
		local bool // refused before any API call
	}{
		{"help", []string{"-h"}, 0, "", true},
		{"migrate-env help", []string{"migrate-env", "-h"}, 0, "", true},
		{"bad flag", []string{"-nosuchflag"}, 2, "flag provided but not defined", true},
		{"stray argument", h.args("now"), 2, `unexpected argument "now"`, true},
		{"unknown command", []string{"migrate"}, 2, `unknown command "migrate"`, true},
		{"no cluster", []string{"-env", h.env}, 2, "-cluster is required", true},
		{"missing file", h.args("-env", filepath.Join(h.dir, "missing")), 2, "missing", true},
		{"bad TTL", h.args("-ttl", "5"), 2, "TTL", true},
		{"CA file in a missing directory", h.args("-ca-file", filepath.Join(h.dir, "no", "ca.crt")), 2, "its directory does not exist", true},
		{"API URL in clear", h.args("-api-url", "http://api.digitalocean.com"), 2, "must be https", true},
		{"bad port", h.args("-api-url", "https://127.0.0.1:99999"), 2, `port "99999"`, true},
		{"migrate-env bad --to", []string{"migrate-env", "-env", h.env, "--to", "sideways"}, 2, "--to must be direct or pooled", true},
		{"migrate-env stray", []string{"migrate-env", "--to", "direct", "now"}, 2, `unexpected argument "now"`, true},
		{"migrate-env not direct", []string{"migrate-env", "-env", h.env, "--to", "pooled"}, 2, "not in direct", true},
		{"over budget", h.args("-size", "500"), 2, "over the cluster's connection limit", false},
		{"no room", h.args("-reserve", "97"), 2, "no connections left for pool the_mastodon_connection_pool: limit 97 - other pools 0 - reserve 97", false},
		{"CDN needs a certificate", []string{"-env", h.env, "-cluster", clusterID, "-ca-file", filepath.Join(h.dir, "do-internal.crt")}, 2, "CertificateID", false},
		{"unknown cluster", h.args("-cluster", dofake.UUID(404)), 1, "404", false},
		{"unreachable host", h.args("-api-url", "http://"+dead), 1, "connection refused", false},
	} {
		calls := len(f.Calls())
		r := h.run(c.args...)
		if r.Code != c.code || !strings.Contains(r.Stderr, c.msg) {
			t.Errorf("%s: want exit %d with %q on stderr; %s", c.name, c.code, c.msg, r)
		}
		if c.local && len(f.Calls()) != calls {
			t.Errorf("%s: %d API calls before the usage error: %v", c.name, len(f.Calls())-calls, f.Calls()[calls:])
		}
		if c.code != 0 && r.Stdout != "" {
			t.Errorf("%s: half a plan printed before the error:\n%s", c.name, r.Stdout)
		}
	}
	if f.writeCount() != 0 {
		t.Errorf("%d API writes", f.writeCount())
	}
	if r := h.run("-h"); !strings.Contains(r.Stdout, "usage: provision -cluster ID") || !strings.Contains(r.Stdout, "-cdn-cert-id") ||
		!strings.Contains(r.Stdout, "DIGITALOCEAN_TOKEN") {
		t.Errorf("-h: %s", r)
	}
	// No token: refused before anything else.
	if r := Run(t, "provision", Env(), "-cluster", "c1"); r.Code != 2 || !strings.Contains(r.Stderr, "DIGITALOCEAN_TOKEN") {
		t.Errorf("no token: %s", r)
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
