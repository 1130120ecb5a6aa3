package spaces

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/digitalocean/godo"

	"github.com/fediops/fediops/doapi"
	"github.com/fediops/fediops/internal/dofake"
)

// newFakeDO serves the DO stand-in with two endpoints a page, and a godo
// client without transport retries: the 429s reach CDN's own waits.
func newFakeDO(t *testing.T) (*dofake.Server, *godo.Client) {
	f := dofake.New(dofake.Options{PerPage: 2})
	c, err := doapi.New(doapi.Options{Token: f.Token(), BaseURL: f.Start(t), Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	return f, c
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
	f.AddEndpoint(godo.CDN{Origin: "a.ams3.digitaloceanspaces.com", TTL: 60})
	f.AddEndpoint(godo.CDN{Origin: "b.sfo3.digitaloceanspaces.com", TTL: 60})
	cert1, cert2 := dofake.UUID(1), dofake.UUID(2)
	cfg := CDNConfig{Origin: "ourbucketname.nyc3.digitaloceanspaces.com", CustomDomain: "cdn.vmst.io", CertificateID: cert1, TTL: 86400}
	cdn, err := NewCDN(do.CDNs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := cdn.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Current != nil || len(plan.Steps) != 1 || plan.Steps[0].Action != "create" ||
		!strings.Contains(plan.String(), "custom domain cdn.vmst.io, certificate "+cert1) || len(f.Endpoints()) != 2 {
		t.Fatalf("plan: %s (%d endpoints)", plan, len(f.Endpoints()))
	}
	ep, err := plan.Apply(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ep.Origin != cfg.Origin || ep.TTL != 86400 || ep.CustomDomain != "cdn.vmst.io" || ep.CertificateID != cert1 || len(f.Endpoints()) != 3 {
		t.Fatalf("created %+v (%d endpoints)", ep, len(f.Endpoints()))
	}
	// Applying the stale plan again finds the endpoint instead of making a second.
	if _, err := plan.Apply(ctx); err != nil || len(f.Endpoints()) != 3 {
		t.Fatalf("second apply: %v, %d endpoints", err, len(f.Endpoints()))
	}
	if p, _ := cdn.Plan(ctx); len(p.Steps) != 0 || p.String() != "cdn ourbucketname.nyc3.digitaloceanspaces.com: up to date" {
		t.Errorf("plan after apply: %s", p)
	}

	cfg.TTL, cfg.CustomDomain, cfg.CertificateID = 600, "media.vmst.io", cert2
	cdn2, _ := NewCDN(do.CDNs, cfg)
	p, err := cdn2.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.String(); !strings.Contains(got, `update-custom-domain: "cdn.vmst.io" (certificate "`+cert1+`") -> "media.vmst.io" (certificate "`+cert2+`")`) ||
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
	if !errors.As(err, &ce) || !slices.Equal(ce.Vars(), []string{"Origin", "TTL"}) {
		t.Errorf("err = %v", err)
	}
}

// TestCDNCertificateKept: without CertificateID, an endpoint that already
// serves the custom domain keeps its certificate; creating the endpoint
// or giving it the domain needs one, which Plan says before any change.
func TestCDNCertificateKept(t *testing.T) {
	ctx := ctxT(t)
	f, do := newFakeDO(t)
	cfg := CDNConfig{Origin: "ourbucketname.nyc3.digitaloceanspaces.com", CustomDomain: "cdn.vmst.io"}
	cdn, err := NewCDN(do.CDNs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var ce *ConfigError
	if _, err := cdn.Plan(ctx); !errors.As(err, &ce) || !slices.Equal(ce.Vars(), []string{"CertificateID"}) || !strings.Contains(err.Error(), "does not exist yet") {
		t.Errorf("no endpoint, no certificate: %v", err)
	}
	ep := f.AddEndpoint(godo.CDN{Origin: cfg.Origin, TTL: 3600})
	if _, err := cdn.Plan(ctx); !errors.As(err, &ce) || !strings.Contains(err.Error(), `serves ""`) {
		t.Errorf("endpoint without the domain, no certificate: %v", err)
	}
	cert := dofake.UUID(7)
	withCert, _ := NewCDN(do.CDNs, CDNConfig{Origin: cfg.Origin, CustomDomain: cfg.CustomDomain, CertificateID: cert})
	if p, err := withCert.Plan(ctx); err != nil || len(p.Steps) != 1 {
		t.Fatalf("plan with the certificate: %v %v", p, err)
	} else if _, err := p.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if p, err := cdn.Plan(ctx); err != nil || len(p.Steps) != 0 {
		t.Errorf("endpoint serving the domain, no certificate given: %v %v", p, err)
	}
	if got := f.Endpoints(); len(got) != 1 || got[0].ID != ep.ID || got[0].CertificateID != cert {
		t.Errorf("endpoints: %+v", got)
	}
}

func TestCDNFlush(t *testing.T) {
	ctx := ctxT(t)
	f, do := newFakeDO(t)
	ep9 := f.AddEndpoint(godo.CDN{Origin: "media.nyc3.digitaloceanspaces.com", TTL: 3600})
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
	throttled := dofake.Fault{Status: 429, RetryAfter: "7", Message: "API Rate limit exceeded."}
	f.Fail("GET /v2/cdn/endpoints", throttled, throttled) // the List is throttled twice
	if err := cdn.Flush(ctx, paths...); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	flushes := f.Flushes()
	for _, fl := range flushes {
		sizes = append(sizes, len(fl))
	}
	if !slices.Equal(sizes, []int{50, 50, 20}) || flushes[0][0] != "media_attachments/files/0/*" {
		t.Errorf("flush batches %v, first %q", sizes, flushes[0][0])
	}
	if !slices.Equal(w.d, []time.Duration{7 * time.Second, 7 * time.Second, 20 * time.Second, 20 * time.Second}) {
		t.Errorf("waits %v: want Retry-After twice, then the flush pace", w.d)
	}

	if err := cdn.Flush(ctx, "a.png", "*", "b.png"); err != nil || len(f.Flushes()) != 4 || !slices.Equal(f.Flushes()[3], []string{"*"}) {
		t.Errorf("flush everything: %v %v", err, f.Flushes())
	}
	if err := cdn.Flush(ctx, "ok", ""); err == nil {
		t.Error("empty path accepted")
	}

	// Too many 429s and a server error are reported with the operation.
	for range 6 {
		f.Fail("GET /v2/cdn/endpoints", throttled)
	}
	if err := cdn.Flush(ctx, "x"); err == nil || !strings.HasPrefix(err.Error(), "cdn list endpoints: API 429: API Rate limit exceeded.") {
		t.Errorf("throttled: %v", err)
	}
	f.Fail("DELETE /v2/cdn/endpoints/{cdn_id}/cache", dofake.Fault{Status: 500, Message: "Server was unable to give you a response."})
	err = cdn.Flush(ctx, "x")
	var er *godo.ErrorResponse
	if !errors.As(err, &er) || er.Response.StatusCode != 500 || !strings.Contains(err.Error(), "cdn flush 1 paths from "+ep9.ID) {
		t.Errorf("server error: %v", err)
	}

	other, _ := NewCDN(do.CDNs, CDNConfig{Origin: "nothere.nyc3.digitaloceanspaces.com"})
	if err := other.Flush(ctx, "x"); !errors.Is(err, ErrNoCDN) {
		t.Errorf("no endpoint: %v", err)
	}
}
