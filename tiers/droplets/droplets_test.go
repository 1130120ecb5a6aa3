package droplets

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/godo"

	"github.com/fediops/fediops/doapi"
	"github.com/fediops/fediops/internal/dofake"
)

// fakeDO is the DO stand-in with the client options that reach it.
type fakeDO struct {
	*dofake.Server
	url string
}

var lbID = dofake.UUID(77) // the seed's load balancer, Pike

func newFakeDO(t *testing.T, o dofake.Options) *fakeDO {
	f := &fakeDO{Server: dofake.New(o)}
	f.url = f.Start(t)
	f.RefuseNothing(t)
	return f
}

func TestMain(m *testing.M) {
	code := m.Run()
	fmt.Printf("droplets: %d DigitalOcean API requests checked against DO's specification\n", dofake.CheckedAll())
	os.Exit(code)
}

func (f *fakeDO) client(t *testing.T, cfg Config) *Client {
	t.Helper()
	cfg.API.Token, cfg.API.BaseURL = f.Token(), f.url
	if cfg.API.RetryWaitMin == 0 {
		cfg.API.RetryWaitMin, cfg.API.RetryWaitMax = 5*time.Millisecond, 20*time.Millisecond
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 5 * time.Millisecond
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fakeDO) addDroplet(name, size, region, vpc, privateIP string, tags ...string) {
	f.AddDroplet(dofake.Droplet{Name: name, Size: size, Region: region, VPC: vpc, PrivateIP: privateIP, PublicIP: "203.0.113.7",
		VCPUs: 2, MemoryMiB: 4096, Tags: tags, Features: []string{"monitoring", "private_networking"}})
}

func (f *fakeDO) addSnapshot(name, resourceID string, created time.Time, regions []string, tags ...string) godo.Snapshot {
	return f.AddSnapshot(godo.Snapshot{Name: name, ResourceID: resourceID, Regions: regions, Created: created.UTC().Format(time.RFC3339),
		SizeGigaBytes: 4.2, MinDiskSize: 80, Tags: tags})
}

// seedFake builds the seed's layout: Kirk and Spock (web+streaming), the
// proxies Sulu and Chekov, Scotty and Decker (sidekiq), Khan (search).
func seedFake(t *testing.T, o dofake.Options) *fakeDO {
	f := newFakeDO(t, o)
	vpc := dofake.UUID(3)
	f.addDroplet("kirk", "s-2vcpu-4gb", "tor1", vpc, "10.118.0.2", "web", "streaming", "mastodon")
	f.addDroplet("spock", "s-2vcpu-4gb", "tor1", vpc, "10.118.0.3", "web", "streaming", "mastodon")
	f.addDroplet("sulu", "s-1vcpu-1gb", "tor1", vpc, "10.118.0.4", "proxy")
	f.addDroplet("chekov", "s-1vcpu-1gb", "tor1", vpc, "10.118.0.5", "proxy")
	f.addDroplet("scotty", "s-2vcpu-4gb", "tor1", vpc, "10.118.0.6", "sidekiq")
	f.addDroplet("decker", "s-2vcpu-4gb", "tor1", vpc, "10.118.0.7", "sidekiq")
	f.addDroplet("khan", "s-1vcpu-2gb", "tor1", vpc, "10.118.0.8", "search")
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

// staleLB is a load balancer answer without a tag, as Apply's own look
// sees it just before the load balancer is switched to a tag.
var staleLB = dofake.Fault{Status: 200, Body: `{"load_balancer":{"id":"` + lbID + `","name":"pike"}}`}

func TestInventory(t *testing.T) {
	f := seedFake(t, dofake.Options{PerPage: 2}) // force pagination
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
	if n := f.Count("GET /v2/snapshots"); n < 5 {
		t.Errorf("snapshot pages %d, pagination not followed", n)
	}
	if _, err := c.Droplets(context.Background(), "nosuch"); !errors.Is(err, ErrUnknownTier) {
		t.Errorf("unknown tier: %v", err)
	}
}

func TestTokenNeverInErrors(t *testing.T) {
	f := seedFake(t, dofake.Options{})
	c, err := NewClient(Config{API: doapi.Options{Token: "wrong-token-secret", BaseURL: f.url, Retries: -1}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Droplets(context.Background(), "web")
	if !doapi.IsStatus(err, 401) || strings.Contains(err.Error(), "wrong-token-secret") {
		t.Fatalf("err %v", err)
	}
}

func TestRetryAfter429(t *testing.T) {
	f := seedFake(t, dofake.Options{})
	f.Fail("GET /v2/droplets", dofake.Fault{Status: 429, RetryAfter: "1"})
	c := f.client(t, Config{})
	start := time.Now()
	ds, err := c.Droplets(context.Background(), "web")
	if err != nil || len(ds) != 2 {
		t.Fatalf("%v %v", ds, err)
	}
	if el := time.Since(start); el < 900*time.Millisecond {
		t.Errorf("retry-after ignored: %v", el)
	}
	if n := f.Count("GET /v2/droplets?"); n != 2 {
		t.Errorf("calls %d", n)
	}
	// Out of retries: the 429 comes back.
	for range 3 {
		f.Fail("GET /v2/droplets", dofake.Fault{Status: 429, RetryAfter: "0"})
	}
	c = f.client(t, Config{API: doapi.Options{Retries: 2}})
	if _, err := c.Droplets(context.Background(), "web"); !doapi.IsStatus(err, 429) {
		t.Fatalf("want 429, got %v", err)
	}
}

func TestRefreshSnapshot(t *testing.T) {
	f := seedFake(t, dofake.Options{})
	f.SetActionOutcome(3, godo.ActionCompleted)
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
	if n := f.Count("GET /v2/actions/"); n != 4 {
		t.Errorf("polls %d", n)
	}
	// The same minute again: no second snapshot, nothing more to prune.
	res, err = c.RefreshSnapshot(context.Background(), Refresh{Tier: "web", Keep: 2})
	if err != nil || !res.Existed || len(res.Pruned) != 0 {
		t.Fatalf("%+v %v", res, err)
	}
	if n := f.Count("POST /v2/droplets/"); n != 1 {
		t.Errorf("snapshot actions %d", n)
	}
	// Other tiers untouched.
	if ps, _ := c.Snapshots(context.Background(), "proxy"); len(ps) != 4 {
		t.Errorf("proxy snapshots %d", len(ps))
	}
}

func TestRefreshSnapshotErroredAndTimeout(t *testing.T) {
	f := seedFake(t, dofake.Options{})
	f.SetActionOutcome(1, "errored")
	c := f.client(t, Config{})
	_, err := c.RefreshSnapshot(context.Background(), Refresh{Tier: "web"})
	if !errors.Is(err, ErrActionErrored) {
		t.Fatalf("want errored, got %v", err)
	}
	if ss, _ := c.Snapshots(context.Background(), "web"); len(ss) != 4 {
		t.Fatalf("pruned after a failed snapshot: %d left", len(ss))
	}
	f.SetActionOutcome(-1, "") // never completes
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
	f := seedFake(t, dofake.Options{})
	f.AddLoadBalancer(godo.LoadBalancer{ID: lbID, Name: "pike"})
	c := f.client(t, Config{LoadBalancerID: lbID})
	ctx := context.Background()
	p, err := c.PlanScaleOut(ctx, ScaleOut{Tier: "web", Count: 2, SSHKeys: []string{"12345", "aa:bb:cc"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Create) != 2 || p.Create[0].Name != "web-01" || p.Template.Name != "kirk" || p.Snapshot.Name != "web-20261104-0400" {
		t.Fatalf("plan %+v", p)
	}
	r := p.Create[0]
	if r.Size != "s-2vcpu-4gb" || r.Region != "tor1" || r.VPCUUID != dofake.UUID(3) || !r.Monitoring || r.PrivateNetworking ||
		strconv.Itoa(r.Image.ID) != p.Snapshot.ID || len(r.SSHKeys) != 2 || r.SSHKeys[0].ID != 12345 || r.SSHKeys[1].Fingerprint != "aa:bb:cc" ||
		strings.Join(r.Tags, ",") != "web,streaming,mastodon" {
		t.Fatalf("request %+v", r)
	}
	if !strings.Contains(p.String(), "create: web-02") || !strings.Contains(p.String(), "add 2 droplets") {
		t.Fatalf("plan text %s", p)
	}

	// Dry run by default: no writes.
	before := f.Count("POST")
	res, err := c.Apply(ctx, p, ApplyOptions{})
	if err != nil || !res.DryRun || len(res.Steps) != 3 || f.Count("POST") != before {
		t.Fatalf("dry run %+v %v", res, err)
	}

	res, err = c.Apply(ctx, p, ApplyOptions{Execute: true, WaitActive: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Created) != 2 || len(res.Attached) != 2 || res.Created[0].Status != "active" {
		t.Fatalf("apply %+v", res)
	}
	if got := f.LoadBalancer(lbID).DropletIDs; len(got) != 2 || got[0] != res.Created[0].ID {
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
	if n := f.Count("POST /v2/droplets?"); n != 0 {
		t.Fatal(n)
	}
	if n := f.Count("POST /v2/droplets"); n != 2 {
		t.Errorf("creates %d", n)
	}
}

func TestScaleOutLBTargetsTag(t *testing.T) {
	f := seedFake(t, dofake.Options{})
	f.AddLoadBalancer(godo.LoadBalancer{ID: lbID, Name: "pike", Tag: "frontend"})
	c := f.client(t, Config{LoadBalancerID: lbID})
	ctx := context.Background()
	p, err := c.PlanScaleOut(ctx, ScaleOut{Tier: "proxy", Names: []string{"sulu", "uhura"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.LBTag != "frontend" || len(p.Create) != 1 || p.Existing[0] != "sulu" || !strings.Contains(strings.Join(p.Create[0].Tags, ","), "frontend") {
		t.Fatalf("plan %+v", p)
	}
	res, err := c.Apply(ctx, p, ApplyOptions{Execute: true})
	if err != nil || res.AttachedByTag != "frontend" || f.Count("POST /v2/load_balancers") != 0 {
		t.Fatalf("%+v %v", res, err)
	}

	// The LB switched to a tag after the plan: AddDroplets gets 422, the
	// new droplets carry the tag, so that is enough.
	f.SetLoadBalancerTag(lbID, "")
	p, err = c.PlanScaleOut(ctx, ScaleOut{Tier: "proxy", Names: []string{"chapel"}})
	if err != nil || p.LBTag != "" {
		t.Fatalf("%+v %v", p, err)
	}
	f.SetLoadBalancerTag(lbID, "proxy")
	// Apply's own look still sees no tag; the switch lands just after it.
	f.Fail("GET /v2/load_balancers/{lb_id}", staleLB)
	res, err = c.Apply(ctx, p, ApplyOptions{Execute: true})
	if err != nil || res.AttachedByTag != "proxy" || f.Count("POST /v2/load_balancers") != 1 {
		t.Fatalf("422 handling %+v %v", res, err)
	}
	// A tag the droplets lack is an error that says so.
	f.SetLoadBalancerTag(lbID, "")
	p, _ = c.PlanScaleOut(ctx, ScaleOut{Tier: "proxy", Names: []string{"rand"}})
	f.SetLoadBalancerTag(lbID, "elsewhere")
	f.Fail("GET /v2/load_balancers/{lb_id}", staleLB)
	if _, err = c.Apply(ctx, p, ApplyOptions{Execute: true}); !doapi.IsStatus(err, 422) || !strings.Contains(err.Error(), "lacks it") {
		t.Fatalf("want 422 with advice, got %v", err)
	}
}

func TestScaleOutNoSnapshot(t *testing.T) {
	f := seedFake(t, dofake.Options{})
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
	f := seedFake(t, dofake.Options{})
	c := f.client(t, Config{})
	ctx := context.Background()
	p, err := c.PlanScaleOut(ctx, ScaleOut{Tier: "web", Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	// 422 is final: the first droplet is not created, the error names it.
	f.Fail("POST /v2/droplets", dofake.Fault{Status: 422, Message: "size unavailable"})
	res, err := c.Apply(ctx, p, ApplyOptions{Execute: true})
	if !doapi.IsStatus(err, 422) || !strings.Contains(err.Error(), "web-01") || len(res.Created) != 0 {
		t.Fatalf("%+v %v", res, err)
	}
	// A 500 after the droplet was made: listed, not created twice. A 429
	// is waited out. Then the rest goes through.
	f.Fail("POST /v2/droplets", dofake.Fault{Status: 500, After: true})
	f.Fail("POST /v2/droplets", dofake.Fault{Status: 429, RetryAfter: "0"})
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
	f := seedFake(t, dofake.Options{})
	f.AddLoadBalancer(godo.LoadBalancer{ID: lbID, Name: "pike"})
	ctx := context.Background()
	c := f.client(t, Config{LoadBalancerID: dofake.UUID(404), API: doapi.Options{Retries: 1}})

	// The snapshot action is refused (a droplet with a pending event).
	f.Fail("POST /v2/droplets/{droplet_id}/actions", dofake.Fault{Status: 422, Message: "Droplet already has a pending event."})
	if _, err := c.RefreshSnapshot(ctx, Refresh{Tier: "web"}); !doapi.IsStatus(err, 422) || !strings.Contains(err.Error(), "pending event") {
		t.Fatalf("snapshot 422: %v", err)
	}
	// Polling the action fails for good: 404.
	f.Fail("GET /v2/actions/{action_id}", dofake.Fault{Status: 404})
	if _, err := c.RefreshSnapshot(ctx, Refresh{Tier: "proxy"}); !doapi.IsStatus(err, 404) || !strings.Contains(err.Error(), "get action") {
		t.Fatalf("action 404: %v", err)
	}
	// A 500 while polling is retried by the transport and the poll goes on.
	f.Fail("GET /v2/actions/{action_id}", dofake.Fault{Status: 500})
	c2 := f.client(t, Config{Now: func() time.Time { return time.Date(2026, 12, 24, 0, 0, 0, 0, time.UTC) }})
	res, err := c2.RefreshSnapshot(ctx, Refresh{Tier: "proxy", Keep: 10})
	if err != nil || res.Snapshot.Name != "proxy-20261224-0000" {
		t.Fatalf("poll after 500: %+v %v", res, err)
	}
	// Pruning fails: the error names the snapshot, the new one is kept.
	f.Fail("DELETE /v2/snapshots/{snapshot_id}", dofake.Fault{Status: 403, Message: "You do not have access for the attempted action."})
	res, err = c2.RefreshSnapshot(ctx, Refresh{Tier: "proxy", Keep: 1})
	if !doapi.IsStatus(err, 403) || !strings.Contains(err.Error(), "prune snapshot proxy-") || res.Snapshot.Name != "proxy-20261224-0000" {
		t.Fatalf("prune 403: %+v %v", res, err)
	}
	// The load balancer does not exist: the plan says so.
	if _, err := c.PlanScaleOut(ctx, ScaleOut{Tier: "web", Count: 1}); !doapi.IsStatus(err, 404) || !strings.Contains(err.Error(), dofake.UUID(404)) {
		t.Fatalf("lb 404: %v", err)
	}
	// AddDroplets fails with 500 after retries: the created droplet is
	// reported with the error.
	c3 := f.client(t, Config{LoadBalancerID: lbID, API: doapi.Options{Retries: 1}})
	p, err := c3.PlanScaleOut(ctx, ScaleOut{Tier: "web", Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	f.Fail("POST /v2/load_balancers/{lb_id}/droplets", dofake.Fault{Status: 500})
	f.Fail("POST /v2/load_balancers/{lb_id}/droplets", dofake.Fault{Status: 500})
	res2, err := c3.Apply(ctx, p, ApplyOptions{Execute: true})
	if !doapi.IsStatus(err, 500) || len(res2.Created) != 1 || len(f.LoadBalancer(lbID).DropletIDs) != 0 {
		t.Fatalf("add droplets 500: %+v %v", res2, err)
	}
	// The rerun creates nothing and attaches the droplet the first run made.
	res2, err = c3.Apply(ctx, p, ApplyOptions{Execute: true})
	if err != nil || len(res2.Created) != 0 || len(res2.Attached) != 1 || len(f.LoadBalancer(lbID).DropletIDs) != 1 {
		t.Fatalf("rerun: %+v %v", res2, err)
	}
	if res2, err = c3.Apply(ctx, p, ApplyOptions{Execute: true}); err != nil || len(res2.Attached) != 0 {
		t.Fatalf("third run: %+v %v", res2, err)
	}
	// Waiting for a droplet that never comes up times out.
	f.Fail("GET /v2/droplets/{droplet_id}", dofake.Fault{Status: 500})
	f.Fail("GET /v2/droplets/{droplet_id}", dofake.Fault{Status: 500})
	p, _ = c3.PlanScaleOut(ctx, ScaleOut{Tier: "web", Names: []string{"sarek"}})
	if _, err := c3.Apply(ctx, p, ApplyOptions{Execute: true, WaitActive: time.Second}); !doapi.IsStatus(err, 500) {
		t.Fatalf("wait active: %v", err)
	}
}

// TestRefreshKeepsHandTaggedSnapshots: the prune deletes only snapshots
// named by RefreshSnapshot's convention; a snapshot that belongs to the
// tier by its tag only (a hand-made golden image) is never deleted.
func TestRefreshKeepsHandTaggedSnapshots(t *testing.T) {
	f := seedFake(t, dofake.Options{})
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

// TestTierWithUnderscore: a tier named with "_" gets droplet names DO
// accepts ("sidekiq-push-01"), and the fake, which refuses names off DO's
// pattern, creates them; an explicit bad name is refused before any call.
func TestTierWithUnderscore(t *testing.T) {
	for tier, want := range map[string]string{"sidekiq_push": "sidekiq-push", "web": "web", "_x__y_": "x-y", "db.main": "db.main", "média": "m-dia", "__": ""} {
		if got := Hostname(tier); got != want {
			t.Errorf("Hostname(%q) = %q, want %q", tier, got, want)
		}
		if want != "" {
			if err := CheckDropletName(want + "-01"); err != nil {
				t.Errorf("%s-01: %v", want, err)
			}
		}
	}
	for _, bad := range []string{"sidekiq_push-01", "web-", ".", "web 01", strings.Repeat("a", 256), ""} {
		if err := CheckDropletName(bad); !errors.Is(err, ErrDropletName) {
			t.Errorf("%q accepted: %v", bad, err)
		}
	}

	f := seedFake(t, dofake.Options{})
	f.addDroplet("riker", "s-2vcpu-4gb", "tor1", dofake.UUID(3), "10.118.0.9", "sidekiq_push")
	at := time.Date(2026, 11, 30, 4, 0, 0, 0, time.UTC)
	f.addSnapshot(SnapshotName("sidekiq_push", at), "1", at, []string{"tor1"})
	tags := map[string]string{"sidekiq_push": "sidekiq_push"}
	c := f.client(t, Config{Tags: tags})
	ctx := context.Background()
	p, err := c.PlanScaleOut(ctx, ScaleOut{Tier: "sidekiq_push", Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Create) != 2 || p.Create[0].Name != "sidekiq-push-01" || p.Create[1].Name != "sidekiq-push-02" {
		t.Fatalf("names %+v", p.Create)
	}
	res, err := c.Apply(ctx, p, ApplyOptions{Execute: true})
	if err != nil || len(res.Created) != 2 {
		t.Fatalf("apply %+v %v", res, err)
	}
	before := f.Count("")
	if _, err := c.PlanScaleOut(ctx, ScaleOut{Tier: "sidekiq_push", Names: []string{"data_01"}}); !errors.Is(err, ErrDropletName) || !strings.Contains(err.Error(), `"data_01"`) {
		t.Errorf("bad explicit name: %v", err)
	}
	if f.Count("") != before {
		t.Error("a bad name reached the API")
	}
}
