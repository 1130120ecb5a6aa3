package spaces

import (
	"errors"
	"strings"
	"testing"

	"github.com/digitalocean/godo"

	"github.com/fediops/fediops/internal/s3fake"
)

func TestHealthAndConsistency(t *testing.T) {
	ctx := ctxT(t)
	srv, cfg := newFake(t, s3fake.Alias("cdn.fediops.test", "media"))
	_, port, _ := strings.Cut(srv.Addr, ":")
	cfg.AliasHost = "cdn.fediops.test:" + port
	cfg.KeyPrefix = "prod"
	cfg.HTTPClient = srv.Client() // cdn.fediops.test reaches the fake
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, "accounts/avatars/1.png", strings.NewReader("png"), nil); err != nil {
		t.Fatal(err)
	}
	res := c.Health(ctx, "accounts/avatars/1.png")
	if len(res) != 2 || res[0].Name != "spaces.endpoint" || res[1].Name != "spaces.alias" {
		t.Fatalf("results: %v", res)
	}
	for _, r := range res {
		if !r.OK || r.Err != nil || r.Latency <= 0 {
			t.Errorf("%v", r)
		}
	}
	if want := "http://cdn.fediops.test:" + port + "/prod/accounts/avatars/1.png"; res[1].Detail != want {
		t.Errorf("alias URL %s, want %s", res[1].Detail, want)
	}
	res = c.Health(ctx, "accounts/avatars/2.png")
	if res[0].OK || !errors.Is(res[0].Err, ErrNotFound) || res[1].OK || !errors.Is(res[1].Err, ErrNotPublic) || !strings.HasPrefix(res[1].Err.Error(), "HEAD http://cdn.fediops.test:"+port+"/prod/accounts/avatars/2.png: 404") {
		t.Errorf("missing object: %v", res)
	}

	f, do := newFakeDO(t)
	origin := "media.nyc3.digitaloceanspaces.com"
	f.AddEndpoint(godo.CDN{Origin: "x.nyc3.digitaloceanspaces.com"})
	f.AddEndpoint(godo.CDN{Origin: "y.nyc3.digitaloceanspaces.com"})
	e3 := f.AddEndpoint(godo.CDN{Origin: origin, CustomDomain: "cdn.fediops.test"})
	res = c.Consistency(ctx, do.CDNs)
	if len(res) != 2 || !res[0].OK || !res[1].OK || res[1].Detail != origin {
		t.Errorf("consistent: %v", res)
	}
	e3.CustomDomain = "media.fediops.test"
	f.SetEndpoint(e3)
	if res = c.Consistency(ctx, do.CDNs); res[1].OK || !errors.Is(res[1].Err, ErrAliasMismatch) || !strings.Contains(res[1].Err.Error(), "media.fediops.test") {
		t.Errorf("mismatch: %v", res)
	}
	f.RemoveEndpoint(e3.ID)
	if res = c.Consistency(ctx, do.CDNs); res[1].OK || !errors.Is(res[1].Err, ErrNoCDN) {
		t.Errorf("no endpoint: %v", res)
	}

	cfg.Bucket = "gone"
	c2, _ := New(cfg)
	if res = c2.Consistency(ctx, nil); len(res) != 1 || res[0].OK || res[0].Name != "spaces.bucket" {
		t.Errorf("missing bucket: %v", res)
	}
}

// Health's public HEAD goes through the client's own HTTP transport, so
// repeated checks reuse its kept-alive connections instead of opening one
// (and leaking an idle transport) per call.
func TestHealthReusesConnections(t *testing.T) {
	ctx := ctxT(t)
	srv, cfg := newFake(t) // HTTPClient nil: New builds one
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, "health.txt", strings.NewReader("ok"), nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range c.Health(ctx, "health.txt") {
		if !r.OK {
			t.Fatalf("%v", r)
		}
	}
	first := srv.Conns()
	for range 5 {
		for _, r := range c.Health(ctx, "health.txt") {
			if !r.OK {
				t.Fatalf("%v", r)
			}
		}
	}
	if n := srv.Conns() - first; n != 0 {
		t.Errorf("5 more Health calls opened %d new connections (%d after the first call)", n, first)
	}
	if first != 1 {
		t.Errorf("the first Put and Health opened %d connections, want 1 shared", first)
	}
}
