package spaces

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/digitalocean/godo"
)

// fakeDO is an httptest stand-in for the CDN part of DigitalOcean's API,
// with the JSON shapes godo's cdn.go reads and writes.
type fakeDO struct {
	t        *testing.T
	mu       sync.Mutex
	eps      []godo.CDN
	nextID   int
	throttle int        // answer this many next requests with 429
	fail     string     // answer requests whose path contains this with 500
	flushes  [][]string // files of each flush request
	calls    []string   // "METHOD path"
	perPage  int
}

func newFakeDO(t *testing.T) (*fakeDO, *godo.Client) {
	f := &fakeDO{t: t, perPage: 2}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := godo.New(srv.Client(), godo.SetBaseURL(srv.URL+"/"))
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

func (f *fakeDO) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if v != nil {
			_ = json.NewEncoder(w).Encode(v)
		}
	}
	fail := func(status int, id, msg string) {
		reply(status, map[string]string{"id": id, "message": msg, "request_id": "req-1"})
	}
	if f.throttle > 0 {
		f.throttle--
		w.Header().Set("Retry-After", "7")
		fail(http.StatusTooManyRequests, "too_many_requests", "API Rate limit exceeded.")
		return
	}
	if f.fail != "" && strings.Contains(r.URL.Path, f.fail) {
		fail(http.StatusInternalServerError, "server_error", "Server was unable to give you a response.")
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v2/cdn/endpoints")
	if !ok {
		fail(http.StatusNotFound, "not_found", "The resource you were accessing could not be found.")
		return
	}
	id, sub, _ := strings.Cut(strings.TrimPrefix(rest, "/"), "/")
	find := func() *godo.CDN {
		for i := range f.eps {
			if f.eps[i].ID == id {
				return &f.eps[i]
			}
		}
		return nil
	}
	switch {
	case r.Method == http.MethodGet && id == "":
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		page = max(page, 1)
		lo, hi := min((page-1)*f.perPage, len(f.eps)), min(page*f.perPage, len(f.eps))
		links := map[string]any{}
		if hi < len(f.eps) {
			links["pages"] = map[string]string{"next": fmt.Sprintf("http://api.test/v2/cdn/endpoints?page=%d&per_page=%d", page+1, f.perPage)}
		}
		reply(http.StatusOK, map[string]any{"endpoints": f.eps[lo:hi], "links": links, "meta": map[string]int{"total": len(f.eps)}})
	case r.Method == http.MethodPost && id == "":
		var req godo.CDNCreateRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Origin == "" || !slices.Contains(TTLs, req.TTL) {
			fail(http.StatusUnprocessableEntity, "unprocessable_entity", "invalid create request")
			return
		}
		f.nextID++
		ep := godo.CDN{ID: fmt.Sprintf("ep-%d", f.nextID), Origin: req.Origin, Endpoint: strings.Replace(req.Origin, ".digitaloceanspaces.com", ".cdn.digitaloceanspaces.com", 1),
			TTL: req.TTL, CustomDomain: req.CustomDomain, CertificateID: req.CertificateID, CreatedAt: time.Now().UTC()}
		f.eps = append(f.eps, ep)
		reply(http.StatusCreated, map[string]any{"endpoint": ep})
	case r.Method == http.MethodPut && sub == "":
		ep := find()
		if ep == nil {
			fail(http.StatusNotFound, "not_found", "no such endpoint")
			return
		}
		var req map[string]any
		_ = json.NewDecoder(r.Body).Decode(&req)
		if ttl, ok := req["ttl"].(float64); ok {
			if !slices.Contains(TTLs, uint32(ttl)) {
				fail(http.StatusUnprocessableEntity, "unprocessable_entity", "invalid ttl")
				return
			}
			ep.TTL = uint32(ttl)
		}
		if d, ok := req["custom_domain"].(string); ok {
			ep.CustomDomain = d
			ep.CertificateID, _ = req["certificate_id"].(string)
		}
		reply(http.StatusOK, map[string]any{"endpoint": ep})
	case r.Method == http.MethodDelete && sub == "cache":
		var req godo.CDNFlushCacheRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Files) == 0 || len(req.Files) > 50 || find() == nil {
			fail(http.StatusUnprocessableEntity, "unprocessable_entity", "between 1 and 50 files")
			return
		}
		f.flushes = append(f.flushes, req.Files)
		w.WriteHeader(http.StatusNoContent)
	default:
		fail(http.StatusNotFound, "not_found", "no route")
	}
}

type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) wait(_ context.Context, d time.Duration) error {
	w.mu.Lock()
	w.d = append(w.d, d)
	w.mu.Unlock()
	return nil
}

func TestCDNPlanApply(t *testing.T) {
	ctx := ctxT(t)
	f, do := newFakeDO(t)
	// Two other endpoints, so that the Space's is on the second page.
	f.eps = []godo.CDN{{ID: "other-1", Origin: "a.ams3.digitaloceanspaces.com", TTL: 60}, {ID: "other-2", Origin: "b.sfo3.digitaloceanspaces.com", TTL: 60}}
	cfg := CDNConfig{Origin: "ourbucketname.nyc3.digitaloceanspaces.com", CustomDomain: "cdn.vmst.io", CertificateID: "cert-1", TTL: 86400}
	cdn, err := NewCDN(do.CDNs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := cdn.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Current != nil || len(plan.Steps) != 1 || plan.Steps[0].Action != "create" ||
		!strings.Contains(plan.String(), "custom domain cdn.vmst.io, certificate cert-1") || len(f.eps) != 2 {
		t.Fatalf("plan: %s (%d endpoints)", plan, len(f.eps))
	}
	ep, err := plan.Apply(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ep.Origin != cfg.Origin || ep.TTL != 86400 || ep.CustomDomain != "cdn.vmst.io" || ep.CertificateID != "cert-1" || len(f.eps) != 3 {
		t.Fatalf("created %+v (%d endpoints)", ep, len(f.eps))
	}
	// Applying the stale plan again finds the endpoint instead of making a second.
	if _, err := plan.Apply(ctx); err != nil || len(f.eps) != 3 {
		t.Fatalf("second apply: %v, %d endpoints", err, len(f.eps))
	}
	if p, _ := cdn.Plan(ctx); len(p.Steps) != 0 || p.String() != "cdn ourbucketname.nyc3.digitaloceanspaces.com: up to date" {
		t.Errorf("plan after apply: %s", p)
	}

	cfg.TTL, cfg.CustomDomain, cfg.CertificateID = 600, "media.vmst.io", "cert-2"
	cdn2, _ := NewCDN(do.CDNs, cfg)
	p, err := cdn2.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.String(); !strings.Contains(got, `update-custom-domain: "cdn.vmst.io" (certificate "cert-1") -> "media.vmst.io" (certificate "cert-2")`) ||
		!strings.Contains(got, "update-ttl: 86400 -> 600") {
		t.Errorf("plan:\n%s", got)
	}
	if ep, err = p.Apply(ctx); err != nil || ep.TTL != 600 || ep.CustomDomain != "media.vmst.io" {
		t.Fatalf("apply updates: %+v %v", ep, err)
	}
	if ep, err = cdn2.SetTTL(ctx, 604800); err != nil || ep.TTL != 604800 {
		t.Errorf("SetTTL: %+v %v", ep, err)
	}
	if _, err := cdn2.SetTTL(ctx, 300); !errors.Is(err, ErrBadTTL) {
		t.Errorf("SetTTL(300): %v", err)
	}
}

func TestCDNConfigErrors(t *testing.T) {
	_, err := NewCDN(nil, CDNConfig{Origin: "https://x.nyc3.digitaloceanspaces.com/", CustomDomain: "cdn.example.org", TTL: 120})
	var ce *ConfigError
	if !errors.As(err, &ce) || !slices.Equal(ce.Vars(), []string{"Origin", "CertificateID", "TTL"}) {
		t.Errorf("err = %v", err)
	}
}

func TestCDNFlush(t *testing.T) {
	ctx := ctxT(t)
	f, do := newFakeDO(t)
	f.eps = []godo.CDN{{ID: "ep-9", Origin: "media.nyc3.digitaloceanspaces.com", TTL: 3600}}
	var w waits
	cdn, err := NewCDN(do.CDNs, CDNConfig{Origin: "media.nyc3.digitaloceanspaces.com", Wait: w.wait})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for i := range 120 {
		paths = append(paths, fmt.Sprintf("/media_attachments/files/%d/*", i))
	}
	paths = append(paths, "media_attachments/files/0/*") // duplicate once the slash goes
	f.throttle = 2                                       // the List is throttled twice
	if err := cdn.Flush(ctx, paths...); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, fl := range f.flushes {
		sizes = append(sizes, len(fl))
	}
	if !slices.Equal(sizes, []int{50, 50, 20}) || f.flushes[0][0] != "media_attachments/files/0/*" {
		t.Errorf("flush batches %v, first %q", sizes, f.flushes[0][0])
	}
	if !slices.Equal(w.d, []time.Duration{7 * time.Second, 7 * time.Second, 20 * time.Second, 20 * time.Second}) {
		t.Errorf("waits %v: want Retry-After twice, then the flush pace", w.d)
	}

	f.flushes = nil
	if err := cdn.Flush(ctx, "a.png", "*", "b.png"); err != nil || len(f.flushes) != 1 || !slices.Equal(f.flushes[0], []string{"*"}) {
		t.Errorf("flush everything: %v %v", err, f.flushes)
	}
	if err := cdn.Flush(ctx, "ok", ""); err == nil {
		t.Error("empty path accepted")
	}

	// Too many 429s and a server error are reported with the operation.
	f.throttle = 100
	if err := cdn.Flush(ctx, "x"); err == nil || !strings.Contains(err.Error(), "spaces: cdn list endpoints") || !strings.Contains(err.Error(), "429") {
		t.Errorf("throttled: %v", err)
	}
	f.throttle, f.fail = 0, "/cache"
	err = cdn.Flush(ctx, "x")
	var er *godo.ErrorResponse
	if !errors.As(err, &er) || er.Response.StatusCode != 500 || !strings.Contains(err.Error(), "spaces: cdn flush 1 paths from ep-9") {
		t.Errorf("server error: %v", err)
	}

	other, _ := NewCDN(do.CDNs, CDNConfig{Origin: "nothere.nyc3.digitaloceanspaces.com"})
	f.fail = ""
	if err := other.Flush(ctx, "x"); !errors.Is(err, ErrNoCDN) {
		t.Errorf("no endpoint: %v", err)
	}
}
