package health

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeSearch answers _cluster/health and HEAD /<index> like OpenSearch.
type fakeSearch struct {
	mu      sync.Mutex
	health  string // JSON body of _cluster/health
	status  int    // its HTTP status
	indices map[string]bool
	auth    string // "user:pass" required when set
}

func newFakeSearch(t *testing.T, f *fakeSearch) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.auth != "" {
			u, p, ok := r.BasicAuth()
			if !ok || u+":"+p != f.auth {
				w.WriteHeader(401)
				fmt.Fprint(w, `{"error":{"type":"security_exception","reason":"missing authentication credentials"},"status":401}`)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/_cluster/health":
			w.WriteHeader(f.status)
			fmt.Fprint(w, f.health)
		case r.Method == http.MethodHead:
			if f.indices[strings.TrimPrefix(r.URL.Path, "/")] {
				w.WriteHeader(200)
			} else {
				w.WriteHeader(404)
			}
		default:
			w.WriteHeader(400)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func health(status string, unassigned int) string {
	return fmt.Sprintf(`{"cluster_name":"khan","status":%q,"number_of_nodes":1,"active_shards":5,"unassigned_shards":%d}`, status, unassigned)
}

func allIndices(prefix string) map[string]bool {
	m := map[string]bool{}
	for _, b := range MastodonIndices("") {
		m[IndexName(prefix, b)] = true
	}
	return m
}

func TestOpenSearchProbe(t *testing.T) {
	f := &fakeSearch{health: health("green", 0), status: 200, indices: allIndices("vmstio"), auth: "admin:s3cret"}
	srv := newFakeSearch(t, f)
	u := strings.Replace(srv.URL, "http://", "http://admin:s3cret@", 1)
	p, err := NewOpenSearchProbe(OpenSearchConfig{URL: u, Prefix: "vmstio"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	h, err := p.Probe(ctx)
	if err != nil || h.Status != "green" || len(h.Present) != 5 || len(h.Missing) != 0 || h.ClusterName != "khan" {
		t.Fatalf("%+v %v", h, err)
	}

	f.health = health("yellow", 5)
	_, err = p.Probe(ctx)
	var w *Warning
	if !errors.As(err, &w) || !strings.Contains(err.Error(), "5 unassigned") {
		t.Fatalf("yellow: %v", err)
	}

	f.health = health("green", 0)
	delete(f.indices, "vmstio_instances")
	h, err = p.Probe(ctx)
	if !errors.Is(err, ErrSearchUnhealthy) || len(h.Missing) != 1 || h.Missing[0] != "vmstio_instances" {
		t.Fatalf("missing: %+v %v", h, err)
	}
	// 4.2 has no instances index.
	p42, _ := NewOpenSearchProbe(OpenSearchConfig{URL: u, Prefix: "vmstio", Release: "4.2"})
	if _, err := p42.Probe(ctx); err != nil {
		t.Fatalf("4.2: %v", err)
	}

	f.health = health("red", 3)
	if _, err = p.Probe(ctx); !errors.Is(err, ErrSearchUnhealthy) || !strings.Contains(err.Error(), "red") {
		t.Fatalf("red: %v", err)
	}

	f.status, f.health = 503, `{"error":{"type":"master_not_discovered_exception","reason":"no master"},"status":503}`
	_, err = p.Probe(ctx)
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "master_not_discovered_exception") {
		t.Fatalf("503: %v", err)
	}

	bad, _ := NewOpenSearchProbe(OpenSearchConfig{URL: srv.URL})
	_, err = bad.Probe(ctx)
	if err == nil || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("401: %v", err)
	}
	if strings.Contains(fmt.Sprint(p.cfg.URL), "s3cret") {
		t.Fatal("password kept in the shown URL")
	}
}

func TestMastodonIndicesAndEnv(t *testing.T) {
	if got := strings.Join(MastodonIndices("4.1"), ","); got != "accounts,statuses,tags" {
		t.Error(got)
	}
	if got := strings.Join(MastodonIndices("4.3"), ","); got != "accounts,statuses,tags,public_statuses,instances" {
		t.Error(got)
	}
	if IndexName("", "tags") != "tags" || IndexName("m", "tags") != "m_tags" {
		t.Error("IndexName")
	}
	env := map[string]string{"ES_ENABLED": "true", "ES_HOST": "10.118.0.8", "REDIS_NAMESPACE": "ns"}
	cfg, ok := OpenSearchConfigFromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if !ok || cfg.URL != "http://10.118.0.8:9200" || cfg.Prefix != "ns" {
		t.Fatalf("%+v", cfg)
	}
	env["ES_PREFIX"], env["ES_HOST"], env["ES_PORT"] = "vm", "https://search.internal", "9201"
	cfg, _ = OpenSearchConfigFromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if cfg.URL != "https://search.internal:9201" || cfg.Prefix != "vm" {
		t.Fatalf("%+v", cfg)
	}
	env["ES_ENABLED"] = "false"
	if _, ok := OpenSearchConfigFromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); ok {
		t.Fatal("disabled search probed")
	}
}

// TestOpenSearchBadURL: a URL that is not http(s)://host is refused up
// front, naming the field, and its password appears in no error.
func TestOpenSearchBadURL(t *testing.T) {
	for _, u := range []string{"http://ops:s3cr et@host:9200", "http://ops:s3cret@ho st:9200",
		"ftp://ops:s3cret@host:9200", "ops:s3cret@host:9200"} {
		_, err := NewOpenSearchProbe(OpenSearchConfig{URL: u})
		if err == nil || !strings.Contains(err.Error(), "OpenSearchConfig.URL") || strings.Contains(err.Error(), "s3cr") {
			t.Errorf("%s: %v", strings.ReplaceAll(u, "s3cr", "PASS"), err)
		}
	}
}
