package tiers

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/godo"
)

// seedFake builds the seed's layout: Kirk and Spock (web+streaming), the
// proxies Sulu and Chekov, Scotty and Decker (sidekiq), Khan (search).
func seedFake(t *testing.T) *fakeDO {
	f := newFakeDO(t)
	f.addDroplet("kirk", "s-2vcpu-4gb", "tor1", "vpc-1", "10.118.0.2", "web", "streaming", "mastodon")
	f.addDroplet("spock", "s-2vcpu-4gb", "tor1", "vpc-1", "10.118.0.3", "web", "streaming", "mastodon")
	f.addDroplet("sulu", "s-1vcpu-1gb", "tor1", "vpc-1", "10.118.0.4", "proxy")
	f.addDroplet("chekov", "s-1vcpu-1gb", "tor1", "vpc-1", "10.118.0.5", "proxy")
	f.addDroplet("scotty", "s-2vcpu-4gb", "tor1", "vpc-1", "10.118.0.6", "sidekiq")
	f.addDroplet("decker", "s-2vcpu-4gb", "tor1", "vpc-1", "10.118.0.7", "sidekiq")
	f.addDroplet("khan", "s-1vcpu-2gb", "tor1", "vpc-1", "10.118.0.8", "search")
	day := time.Date(2026, 11, 1, 4, 0, 0, 0, time.UTC)
	for i := range 4 {
		at := day.AddDate(0, 0, i)
		f.addSnapshot(SnapshotName("web", at), "1001", at, []string{"tor1"})
		f.addSnapshot(SnapshotName("proxy", at), "1003", at, []string{"tor1", "nyc3"})
	}
	// A snapshot found by tag, not by name, and one of another tier whose
	// name starts like web's.
	f.addSnapshot("khan-golden", "1007", day, []string{"tor1"}, "search")
	f.addSnapshot("web-streaming-20261110-0400", "1001", day.AddDate(0, 0, 9), []string{"tor1"})
	return f
}

func TestInventory(t *testing.T) {
	f := seedFake(t)
	f.perPageMax = 2 // force pagination
	c := f.client(t, Config{})
	inv, err := c.Inventory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]TierInventory{}
	for _, ti := range inv {
		got[ti.Tier] = ti
	}
	if len(inv) != 5 {
		t.Fatalf("tiers %d", len(inv))
	}
	web := got["web"]
	if len(web.Droplets) != 2 || web.Droplets[0].Name != "kirk" || web.Droplets[0].PrivateIP != "10.118.0.2" ||
		web.Droplets[0].Size != "s-2vcpu-4gb" || web.Droplets[0].Region != "tor1" || web.Droplets[0].Status != "active" {
		t.Fatalf("web droplets %+v", web.Droplets)
	}
	if web.Newest == nil || web.Newest.Name != "web-20261104-0400" || len(web.Snapshots) != 4 {
		t.Fatalf("web snapshots %+v newest %+v", web.Snapshots, web.Newest)
	}
	if s := got["search"]; s.Newest == nil || s.Newest.Name != "khan-golden" {
		t.Fatalf("search by tag: %+v", s.Newest)
	}
	if len(got["streaming"].Droplets) != 2 || got["streaming"].Newest != nil {
		t.Fatalf("streaming %+v", got["streaming"])
	}
	if len(got["sidekiq"].Droplets) != 2 || len(got["proxy"].Droplets) != 2 {
		t.Fatalf("sidekiq/proxy %+v", got)
	}
	if n := f.callCount("GET /v2/snapshots"); n < 5 {
		t.Errorf("snapshot pages %d, pagination not followed", n)
	}
	if _, err := c.Droplets(context.Background(), "nosuch"); !errors.Is(err, ErrUnknownTier) {
		t.Errorf("unknown tier: %v", err)
	}
}

func TestTokenNeverInErrors(t *testing.T) {
	f := seedFake(t)
	c, err := NewClient(Config{Token: "wrong-token-secret", BaseURL: f.srv.URL, RetryMax: -1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Droplets(context.Background(), "web")
	if !IsStatus(err, 401) || strings.Contains(err.Error(), "wrong-token-secret") {
		t.Fatalf("err %v", err)
	}
}

func TestRetryAfter429(t *testing.T) {
	f := seedFake(t)
	f.fail("GET /v2/droplets", fault{status: 429, header: map[string]string{"Retry-After": "1"}})
	c := f.client(t, Config{})
	start := time.Now()
	ds, err := c.Droplets(context.Background(), "web")
	if err != nil || len(ds) != 2 {
		t.Fatalf("%v %v", ds, err)
	}
	if el := time.Since(start); el < 900*time.Millisecond {
		t.Errorf("retry-after ignored: %v", el)
	}
	if n := f.callCount("GET /v2/droplets?"); n != 2 {
		t.Errorf("calls %d", n)
	}
	// Out of retries: the 429 comes back.
	for range 3 {
		f.fail("GET /v2/droplets", fault{status: 429, header: map[string]string{"Retry-After": "0"}})
	}
	c = f.client(t, Config{RetryMax: 2})
	if _, err := c.Droplets(context.Background(), "web"); !IsStatus(err, 429) {
		t.Fatalf("want 429, got %v", err)
	}
}

func TestRefreshSnapshot(t *testing.T) {
	f := seedFake(t)
	f.actionPolls = 3
	now := time.Date(2026, 11, 26, 3, 7, 0, 0, time.UTC)
	c := f.client(t, Config{Now: func() time.Time { return now }})
	res, err := c.RefreshSnapshot(context.Background(), Refresh{Tier: "web", Keep: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Droplet.Name != "kirk" || res.Snapshot.Name != "web-20261126-0307" || res.Existed || res.ActionID == 0 {
		t.Fatalf("%+v", res)
	}
	if len(res.Pruned) != 3 {
		t.Fatalf("pruned %+v", res.Pruned)
	}
	ss, _ := c.Snapshots(context.Background(), "web")
	if len(ss) != 2 || ss[0].Name != "web-20261126-0307" || ss[1].Name != "web-20261104-0400" {
		t.Fatalf("left %+v", ss)
	}
	if n := f.callCount("GET /v2/actions/"); n != 4 {
		t.Errorf("polls %d", n)
	}
	// The same minute again: no second snapshot, nothing more to prune.
	res, err = c.RefreshSnapshot(context.Background(), Refresh{Tier: "web", Keep: 2})
	if err != nil || !res.Existed || len(res.Pruned) != 0 {
		t.Fatalf("%+v %v", res, err)
	}
	if n := f.callCount("POST /v2/droplets/"); n != 1 {
		t.Errorf("snapshot actions %d", n)
	}
	// Other tiers untouched.
	if ps, _ := c.Snapshots(context.Background(), "proxy"); len(ps) != 4 {
		t.Errorf("proxy snapshots %d", len(ps))
	}
}

func TestRefreshSnapshotErroredAndTimeout(t *testing.T) {
	f := seedFake(t)
	f.actionResult = "errored"
	c := f.client(t, Config{})
	_, err := c.RefreshSnapshot(context.Background(), Refresh{Tier: "web"})
	if !errors.Is(err, ErrActionErrored) {
		t.Fatalf("want errored, got %v", err)
	}
	if ss, _ := c.Snapshots(context.Background(), "web"); len(ss) != 4 {
		t.Fatalf("pruned after a failed snapshot: %d left", len(ss))
	}
	f.actionPolls = -1 // never completes
	c = f.client(t, Config{Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC) }})
	_, err = c.RefreshSnapshot(context.Background(), Refresh{Tier: "web", Timeout: 50 * time.Millisecond})
	if !errors.Is(err, ErrActionTimeout) {
		t.Fatalf("want timeout, got %v", err)
	}
	if _, err := c.RefreshSnapshot(context.Background(), Refresh{Tier: "streaming", DropletID: 42}); !errors.Is(err, ErrNoDroplets) {
		t.Fatalf("want no droplets, got %v", err)
	}
}

func TestScaleOutWebBehindLB(t *testing.T) {
	f := seedFake(t)
	f.lbs["lb-pike"] = &godo.LoadBalancer{ID: "lb-pike", Name: "pike"}
	c := f.client(t, Config{LoadBalancerID: "lb-pike"})
	ctx := context.Background()
	p, err := c.PlanScaleOut(ctx, ScaleOut{Tier: "web", Count: 2, SSHKeys: []string{"12345", "aa:bb:cc"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Create) != 2 || p.Create[0].Name != "web-01" || p.Template.Name != "kirk" || p.Snapshot.Name != "web-20261104-0400" {
		t.Fatalf("plan %+v", p)
	}
	r := p.Create[0]
	if r.Size != "s-2vcpu-4gb" || r.Region != "tor1" || r.VPCUUID != "vpc-1" || !r.Monitoring || !r.PrivateNetworking ||
		strconv.Itoa(r.Image.ID) != p.Snapshot.ID || len(r.SSHKeys) != 2 || r.SSHKeys[0].ID != 12345 || r.SSHKeys[1].Fingerprint != "aa:bb:cc" ||
		strings.Join(r.Tags, ",") != "web,streaming,mastodon" {
		t.Fatalf("request %+v", r)
	}
	if !strings.Contains(p.String(), "create: web-02") || !strings.Contains(p.String(), "add 2 droplets") {
		t.Fatalf("plan text %s", p)
	}

	// Dry run by default: no writes.
	before := f.callCount("POST")
	res, err := c.Apply(ctx, p, ApplyOptions{})
	if err != nil || !res.DryRun || len(res.Steps) != 3 || f.callCount("POST") != before {
		t.Fatalf("dry run %+v %v", res, err)
	}

	res, err = c.Apply(ctx, p, ApplyOptions{Execute: true, WaitActive: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Created) != 2 || len(res.Attached) != 2 || res.Created[0].Status != "active" {
		t.Fatalf("apply %+v", res)
	}
	if got := f.lbs["lb-pike"].DropletIDs; len(got) != 2 || got[0] != res.Created[0].ID {
		t.Fatalf("lb droplets %v", got)
	}

	// Idempotent: the same plan again, and a fresh plan, create nothing.
	res, err = c.Apply(ctx, p, ApplyOptions{Execute: true})
	if err != nil || len(res.Created) != 0 || len(res.Skipped) != 2 {
		t.Fatalf("second apply %+v %v", res, err)
	}
	p2, err := c.PlanScaleOut(ctx, ScaleOut{Tier: "web", Count: 3})
	if err != nil || len(p2.Create) != 1 || p2.Create[0].Name != "web-03" || len(p2.Existing) != 2 {
		t.Fatalf("plan 2 %+v %v", p2, err)
	}
	if n := f.callCount("POST /v2/droplets?"); n != 0 {
		t.Fatal(n)
	}
	if n := f.callCount("POST /v2/droplets"); n != 2 {
		t.Errorf("creates %d", n)
	}
}

func TestScaleOutLBTargetsTag(t *testing.T) {
	f := seedFake(t)
	f.lbs["lb-pike"] = &godo.LoadBalancer{ID: "lb-pike", Tag: "frontend"}
	c := f.client(t, Config{LoadBalancerID: "lb-pike"})
	ctx := context.Background()
	p, err := c.PlanScaleOut(ctx, ScaleOut{Tier: "proxy", Names: []string{"sulu", "uhura"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.LBTag != "frontend" || len(p.Create) != 1 || p.Existing[0] != "sulu" || !strings.Contains(strings.Join(p.Create[0].Tags, ","), "frontend") {
		t.Fatalf("plan %+v", p)
	}
	res, err := c.Apply(ctx, p, ApplyOptions{Execute: true})
	if err != nil || res.AttachedByTag != "frontend" || f.callCount("POST /v2/load_balancers") != 0 {
		t.Fatalf("%+v %v", res, err)
	}

	// The LB switched to a tag after the plan: AddDroplets gets 422, the
	// new droplets carry the tag, so that is enough.
	f.lbs["lb-pike"].Tag = ""
	p, err = c.PlanScaleOut(ctx, ScaleOut{Tier: "proxy", Names: []string{"chapel"}})
	if err != nil || p.LBTag != "" {
		t.Fatalf("%+v %v", p, err)
	}
	f.lbs["lb-pike"].Tag = "proxy"
	// Apply's own look still sees no tag; the switch lands just after it.
	f.fail("GET /v2/load_balancers/{id}", fault{status: 200, body: `{"load_balancer":{"id":"lb-pike","name":"pike"}}`})
	res, err = c.Apply(ctx, p, ApplyOptions{Execute: true})
	if err != nil || res.AttachedByTag != "proxy" || f.callCount("POST /v2/load_balancers") != 1 {
		t.Fatalf("422 handling %+v %v", res, err)
	}
	// A tag the droplets lack is an error that says so.
	f.lbs["lb-pike"].Tag = ""
	p, _ = c.PlanScaleOut(ctx, ScaleOut{Tier: "proxy", Names: []string{"rand"}})
	f.lbs["lb-pike"].Tag = "elsewhere"
	f.fail("GET /v2/load_balancers/{id}", fault{status: 200, body: `{"load_balancer":{"id":"lb-pike","name":"pike"}}`})
	if _, err = c.Apply(ctx, p, ApplyOptions{Execute: true}); !IsStatus(err, 422) || !strings.Contains(err.Error(), "lacks it") {
		t.Fatalf("want 422 with advice, got %v", err)
	}
}

func TestScaleOutNoSnapshot(t *testing.T) {
	f := seedFake(t)
	c := f.client(t, Config{})
	if _, err := c.PlanScaleOut(context.Background(), ScaleOut{Tier: "sidekiq", Count: 1}); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("want no snapshot, got %v", err)
	}
	if _, err := c.PlanScaleOut(context.Background(), ScaleOut{Tier: "web"}); err == nil || !strings.Contains(err.Error(), "Count") {
		t.Fatalf("want Count error, got %v", err)
	}
	f.addSnapshot("search-20261201-0000", "1007", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), []string{"nyc3"})
	if _, err := c.PlanScaleOut(context.Background(), ScaleOut{Tier: "search", Count: 1}); !errors.Is(err, ErrSnapshotRegion) {
		t.Fatalf("want region error, got %v", err)
	}
}

func TestCreateFailures(t *testing.T) {
	f := seedFake(t)
	c := f.client(t, Config{})
	ctx := context.Background()
	p, err := c.PlanScaleOut(ctx, ScaleOut{Tier: "web", Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	// 422 is final: the first droplet is not created, the error names it.
	f.fail("POST /v2/droplets", fault{status: 422, body: `{"id":"unprocessable_entity","message":"size unavailable"}`})
	res, err := c.Apply(ctx, p, ApplyOptions{Execute: true})
	if !IsStatus(err, 422) || !strings.Contains(err.Error(), "web-01") || len(res.Created) != 0 {
		t.Fatalf("%+v %v", res, err)
	}
	// A 500 after the droplet was made: listed, not created twice. A 429
	// is waited out. Then the rest goes through.
	f.fail("POST /v2/droplets", fault{status: 500, after: true})
	f.fail("POST /v2/droplets", fault{status: 429, header: map[string]string{"Retry-After": "0"}})
	res, err = c.Apply(ctx, p, ApplyOptions{Execute: true})
	if err != nil || len(res.Created) != 3 {
		t.Fatalf("%+v %v", res, err)
	}
	ds, _ := c.Droplets(ctx, "web")
	names := map[string]int{}
	for _, d := range ds {
		names[d.Name]++
	}
	if names["web-01"] != 1 || names["web-02"] != 1 || names["web-03"] != 1 || len(ds) != 5 {
		t.Fatalf("droplets %v", names)
	}
	if !strings.Contains(strings.Join(res.Steps, "\n"), "despite") {
		t.Errorf("steps %v", res.Steps)
	}
}

func TestGodoFailures(t *testing.T) {
	f := seedFake(t)
	f.lbs["lb-pike"] = &godo.LoadBalancer{ID: "lb-pike"}
	ctx := context.Background()
	c := f.client(t, Config{LoadBalancerID: "lb-gone", RetryMax: 1})

	// The snapshot action is refused (a droplet with a pending event).
	f.fail("POST /v2/droplets/{id}/actions", fault{status: 422, body: `{"id":"unprocessable_entity","message":"Droplet already has a pending event."}`})
	if _, err := c.RefreshSnapshot(ctx, Refresh{Tier: "web"}); !IsStatus(err, 422) || !strings.Contains(err.Error(), "pending event") {
		t.Fatalf("snapshot 422: %v", err)
	}
	// Polling the action fails for good: 404.
	f.fail("GET /v2/actions/{id}", fault{status: 404})
	if _, err := c.RefreshSnapshot(ctx, Refresh{Tier: "proxy"}); !IsStatus(err, 404) || !strings.Contains(err.Error(), "get action") {
		t.Fatalf("action 404: %v", err)
	}
	// A 500 while polling is retried by the transport and the poll goes on.
	f.fail("GET /v2/actions/{id}", fault{status: 500})
	c2 := f.client(t, Config{Now: func() time.Time { return time.Date(2026, 12, 24, 0, 0, 0, 0, time.UTC) }})
	res, err := c2.RefreshSnapshot(ctx, Refresh{Tier: "proxy", Keep: 10})
	if err != nil || res.Snapshot.Name != "proxy-20261224-0000" {
		t.Fatalf("poll after 500: %+v %v", res, err)
	}
	// Pruning fails: the error names the snapshot, the new one is kept.
	f.fail("DELETE /v2/snapshots/{id}", fault{status: 403, body: `{"id":"forbidden","message":"You do not have access for the attempted action."}`})
	res, err = c2.RefreshSnapshot(ctx, Refresh{Tier: "proxy", Keep: 1})
	if !IsStatus(err, 403) || !strings.Contains(err.Error(), "prune snapshot proxy-") || res.Snapshot.Name != "proxy-20261224-0000" {
		t.Fatalf("prune 403: %+v %v", res, err)
	}
	// The load balancer does not exist: the plan says so.
	if _, err := c.PlanScaleOut(ctx, ScaleOut{Tier: "web", Count: 1}); !IsStatus(err, 404) || !strings.Contains(err.Error(), "lb-gone") {
		t.Fatalf("lb 404: %v", err)
	}
	// AddDroplets fails with 500 after retries: the created droplet is
	// reported with the error.
	c3 := f.client(t, Config{LoadBalancerID: "lb-pike", RetryMax: 1})
	p, err := c3.PlanScaleOut(ctx, ScaleOut{Tier: "web", Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	f.fail("POST /v2/load_balancers/{id}/droplets", fault{status: 500})
	f.fail("POST /v2/load_balancers/{id}/droplets", fault{status: 500})
	res2, err := c3.Apply(ctx, p, ApplyOptions{Execute: true})
	if !IsStatus(err, 500) || len(res2.Created) != 1 || len(f.lbs["lb-pike"].DropletIDs) != 0 {
		t.Fatalf("add droplets 500: %+v %v", res2, err)
	}
	// The rerun creates nothing and attaches the droplet the first run made.
	res2, err = c3.Apply(ctx, p, ApplyOptions{Execute: true})
	if err != nil || len(res2.Created) != 0 || len(res2.Attached) != 1 || len(f.lbs["lb-pike"].DropletIDs) != 1 {
		t.Fatalf("rerun: %+v %v", res2, err)
	}
	if res2, err = c3.Apply(ctx, p, ApplyOptions{Execute: true}); err != nil || len(res2.Attached) != 0 {
		t.Fatalf("third run: %+v %v", res2, err)
	}
	// Waiting for a droplet that never comes up times out.
	f.fail("GET /v2/droplets/{id}", fault{status: 500})
	f.fail("GET /v2/droplets/{id}", fault{status: 500})
	p, _ = c3.PlanScaleOut(ctx, ScaleOut{Tier: "web", Names: []string{"sarek"}})
	if _, err := c3.Apply(ctx, p, ApplyOptions{Execute: true, WaitActive: time.Second}); !IsStatus(err, 500) {
		t.Fatalf("wait active: %v", err)
	}
}

// TestRefreshKeepsHandTaggedSnapshots: the prune deletes only snapshots
// named by RefreshSnapshot's convention; a snapshot that belongs to the
// tier by its tag only (a hand-made golden image) is never deleted.
func TestRefreshKeepsHandTaggedSnapshots(t *testing.T) {
	f := seedFake(t)
	now := time.Date(2026, 11, 26, 3, 7, 0, 0, time.UTC)
	c := f.client(t, Config{Now: func() time.Time { return now }})
	old := f.addSnapshot(SnapshotName("search", now.AddDate(0, 0, -3)), "1007", now.AddDate(0, 0, -3), []string{"tor1"})
	res, err := c.RefreshSnapshot(context.Background(), Refresh{Tier: "search", Keep: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Pruned) != 1 || res.Pruned[0].ID != old.ID {
		t.Fatalf("pruned %+v, want only %s", res.Pruned, old.Name)
	}
	ss, _ := c.Snapshots(context.Background(), "search")
	var names []string
	for _, s := range ss {
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != "search-20261126-0307,khan-golden" {
		t.Fatalf("left %v", names)
	}
}
