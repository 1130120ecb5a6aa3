package dofake_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/godo"

	"github.com/fediops/fediops/doapi"
	"github.com/fediops/fediops/internal/dofake"
)

func start(t *testing.T, o dofake.Options) (*dofake.Server, *godo.Client) {
	f := dofake.New(o)
	c, err := doapi.New(doapi.Options{Token: f.Token(), BaseURL: f.Start(t), Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

// must returns v of a godo call that must succeed; a failure panics,
// which fails the test with the call's line.
func must[T any](v T, _ *godo.Response, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func status(err error) int { return doapi.Status(err) }

// TestEveryEndpoint drives every route the fake serves through godo: each
// request passes DigitalOcean's specification and the fake keeps state.
func TestEveryEndpoint(t *testing.T) {
	f, c := start(t, dofake.Options{PerPage: 2})
	ctx := context.Background()
	id := dofake.UUID(1)
	f.AddCluster(dofake.Cluster{ID: id, Name: "majel", Size: "db-s-2vcpu-4gb", Host: "majel.db.test", PrivateHost: "private-majel.db.test",
		Password: "pw", CA: []byte("-----BEGIN CERTIFICATE-----\n"), Limit: 97})

	// Databases.
	db := must(c.Databases.Get(ctx, id))
	if db.SizeSlug != "db-s-2vcpu-4gb" || db.Connection.Host != "majel.db.test" || db.PrivateConnection.Host != "private-majel.db.test" {
		t.Errorf("cluster %+v", db)
	}
	if ca := must(c.Databases.GetCA(ctx, id)); !strings.HasPrefix(string(ca.Certificate), "-----BEGIN") {
		t.Errorf("CA %q", ca.Certificate)
	}
	p := must(c.Databases.CreatePool(ctx, id, &godo.DatabaseCreatePoolRequest{Name: "web", Database: "mastodon", User: "u", Size: 90, Mode: "transaction"}))
	if p.Connection.Port != 25061 || p.Connection.Database != "web" {
		t.Errorf("pool %+v", p.Connection)
	}
	if _, _, err := c.Databases.CreatePool(ctx, id, &godo.DatabaseCreatePoolRequest{Name: "more", Database: "mastodon", Size: 8, Mode: "transaction"}); status(err) != 422 {
		t.Errorf("past the limit: %v", err)
	}
	if _, err := c.Databases.UpdatePool(ctx, id, "web", &godo.DatabaseUpdatePoolRequest{Database: "mastodon", Size: 40, Mode: "session"}); err != nil {
		t.Error(err)
	}
	if got := must(c.Databases.GetPool(ctx, id, "web")); got.Size != 40 || got.Mode != "session" || got.User != "u" {
		t.Errorf("updated pool %+v", got)
	}
	if ps := must(c.Databases.ListPools(ctx, id, nil)); len(ps) != 1 {
		t.Errorf("pools %+v", ps)
	}
	if _, err := c.Databases.DeletePool(ctx, id, "web"); err != nil || len(f.Pools(id)) != 0 {
		t.Errorf("delete pool: %v", err)
	}

	// CDN.
	ep := must(c.CDNs.Create(ctx, &godo.CDNCreateRequest{Origin: "media.nyc3.digitaloceanspaces.com", TTL: 3600, CustomDomain: "cdn.example.org", CertificateID: dofake.UUID(9)}))
	f.AddEndpoint(godo.CDN{Origin: "a.ams3.digitaloceanspaces.com", TTL: 60})
	f.AddEndpoint(godo.CDN{Origin: "b.ams3.digitaloceanspaces.com", TTL: 60})
	if eps, err := doapi.All(ctx, c.CDNs.List); err != nil || len(eps) != 3 {
		t.Errorf("endpoints %d %v", len(eps), err)
	}
	if got := must(c.CDNs.UpdateTTL(ctx, ep.ID, &godo.CDNUpdateTTLRequest{TTL: 86400})); got.TTL != 86400 {
		t.Errorf("ttl %d", got.TTL)
	}
	if got := must(c.CDNs.UpdateCustomDomain(ctx, ep.ID, &godo.CDNUpdateCustomDomainRequest{CustomDomain: "media.example.org", CertificateID: dofake.UUID(10)})); got.CustomDomain != "media.example.org" {
		t.Errorf("domain %+v", got)
	}
	if got := must(c.CDNs.Get(ctx, ep.ID)); got.TTL != 86400 {
		t.Errorf("get endpoint %+v", got)
	}
	if _, err := c.CDNs.FlushCache(ctx, ep.ID, &godo.CDNFlushCacheRequest{Files: []string{"a.png", "media/*"}}); err != nil || len(f.Flushes()) != 1 {
		t.Errorf("flush: %v %v", err, f.Flushes())
	}
	if _, err := c.CDNs.Delete(ctx, ep.ID); err != nil || len(f.Endpoints()) != 2 {
		t.Errorf("delete endpoint: %v", err)
	}

	// Droplets, actions, snapshots.
	kirk := f.AddDroplet(dofake.Droplet{Name: "kirk", Size: "s-2vcpu-4gb", Region: "tor1", VPC: dofake.UUID(3), PrivateIP: "10.118.0.2", PublicIP: "203.0.113.2",
		VCPUs: 2, MemoryMiB: 4096, Tags: []string{"web"}, Features: []string{"monitoring"}})
	act := must(c.DropletActions.Snapshot(ctx, kirk.ID, "web-20260101-0000"))
	for act.Status != godo.ActionCompleted {
		act = must(c.Actions.Get(ctx, act.ID))
	}
	ss := must(c.Snapshots.ListDroplet(ctx, nil))
	if len(ss) != 1 || ss[0].Name != "web-20260101-0000" {
		t.Fatalf("snapshots %+v", ss)
	}
	if got := must(c.Snapshots.Get(ctx, ss[0].ID)); got.Name != ss[0].Name {
		t.Errorf("snapshot %+v", got)
	}
	image := must(c.Snapshots.Get(ctx, ss[0].ID))
	var imageID int
	for _, ch := range image.ID {
		imageID = imageID*10 + int(ch-'0')
	}
	nd := must(c.Droplets.Create(ctx, &godo.DropletCreateRequest{Name: "web-01", Region: "tor1", Size: "s-2vcpu-4gb",
		Image: godo.DropletCreateImage{ID: imageID}, Tags: []string{"web", "mastodon"}, VPCUUID: dofake.UUID(3), Monitoring: true,
		SSHKeys: []godo.DropletCreateSSHKey{{ID: 12345}, {Fingerprint: "3b:16:e4:bf:8b:00:8b:b8:59:8c:a9:d3:f0:19:fa:45"}}}))
	if nd.Status != "new" {
		t.Errorf("new droplet %+v", nd)
	}
	if got := must(c.Droplets.Get(ctx, nd.ID)); got.Name != "web-01" {
		t.Errorf("droplet %+v", got)
	}
	if ds := must(c.Droplets.ListByTag(ctx, "mastodon", nil)); len(ds) != 1 || ds[0].Status != "active" {
		t.Errorf("by tag %+v", ds)
	}
	lb := f.AddLoadBalancer(godo.LoadBalancer{Name: "pike", Region: &godo.Region{Slug: "tor1"}})
	if _, err := c.LoadBalancers.AddDroplets(ctx, lb.ID, nd.ID, kirk.ID); err != nil {
		t.Error(err)
	}
	if got := must(c.LoadBalancers.Get(ctx, lb.ID)); len(got.DropletIDs) != 2 {
		t.Errorf("lb %+v", got.DropletIDs)
	}
	if _, err := c.LoadBalancers.RemoveDroplets(ctx, lb.ID, kirk.ID); err != nil || len(f.LoadBalancer(lb.ID).DropletIDs) != 1 {
		t.Errorf("remove: %v", err)
	}
	f.SetLoadBalancerTag(lb.ID, "web")
	if _, err := c.LoadBalancers.AddDroplets(ctx, lb.ID, kirk.ID); status(err) != 422 {
		t.Errorf("tag-targeted load balancer: %v", err)
	}

	// Tags.
	must(c.Tags.Create(ctx, &godo.TagCreateRequest{Name: "env:prod"}))
	if _, err := c.Tags.TagResources(ctx, "env:prod", &godo.TagResourcesRequest{Resources: []godo.Resource{{ID: strconv.Itoa(kirk.ID), Type: godo.DropletResourceType}}}); err != nil {
		t.Error(err)
	}
	if tg := must(c.Tags.Get(ctx, "env:prod")); tg.Resources.Count != 1 {
		t.Errorf("tag %+v", tg.Resources)
	}
	if _, err := c.Tags.UntagResources(ctx, "env:prod", &godo.UntagResourcesRequest{Resources: []godo.Resource{{ID: strconv.Itoa(kirk.ID), Type: godo.DropletResourceType}}}); err != nil {
		t.Error(err)
	}
	if tags, err := doapi.All(ctx, c.Tags.List); err != nil || len(tags) != 3 {
		t.Errorf("tags %v %v", tags, err)
	}
	if _, err := c.Tags.Delete(ctx, "env:prod"); err != nil {
		t.Error(err)
	}
	if _, err := c.Snapshots.Delete(ctx, ss[0].ID); err != nil {
		t.Error(err)
	}
	if _, err := c.Droplets.Delete(ctx, nd.ID); err != nil || len(f.Droplets()) != 1 {
		t.Errorf("delete droplet: %v", err)
	}
	if _, err := c.Droplets.DeleteByTag(ctx, "web"); err != nil || len(f.Droplets()) != 0 {
		t.Errorf("delete by tag: %v", err)
	}

	checked, refused := f.Checked()
	t.Logf("%d requests checked against the specification (%d refused)", checked, refused)
	if refused != 0 || checked < 35 {
		t.Errorf("checked %d, refused %d", checked, refused)
	}
}

// TestRefusesWhatDORefuses: requests DigitalOcean's specification does not
// allow get DO's answer, and are counted.
func TestRefusesWhatDORefuses(t *testing.T) {
	f, c := start(t, dofake.Options{})
	ctx := context.Background()
	snap := f.AddSnapshot(godo.Snapshot{Name: "web-golden", Regions: []string{"tor1"}})
	image := 0
	for _, ch := range snap.ID {
		image = image*10 + int(ch-'0')
	}
	create := func(r godo.DropletCreateRequest) error {
		r.Image, r.Size, r.SSHKeys = godo.DropletCreateImage{ID: image}, "s-1vcpu-1gb", []godo.DropletCreateSSHKey{}
		_, _, err := c.Droplets.Create(ctx, &r)
		return err
	}
	for _, tc := range []struct {
		what   string
		err    error
		status int
		msg    string
	}{
		{"droplet name with _", create(godo.DropletCreateRequest{Name: "web_tier-01", Region: "tor1"}), 422, "name"},
		{"droplet name ending in -", create(godo.DropletCreateRequest{Name: "web-", Region: "tor1"}), 422, "name"},
		{"deprecated private_networking", create(godo.DropletCreateRequest{Name: "web-01", Region: "tor1", VPCUUID: dofake.UUID(3), PrivateNetworking: true}), 422, "private_networking"},
		{"ssh_keys null (godo sends that for a nil SSHKeys)", func() error {
			_, _, err := c.Droplets.Create(ctx, &godo.DropletCreateRequest{Name: "web-01", Region: "tor1", Size: "s-1vcpu-1gb", Image: godo.DropletCreateImage{ID: image}})
			return err
		}(), 422, "ssh_keys"},
		{"snapshot from another region", create(godo.DropletCreateRequest{Name: "web-01", Region: "nyc3"}), 422, "invalid image"},
		{"CDN TTL 120", func() error {
			_, _, err := c.CDNs.Create(ctx, &godo.CDNCreateRequest{Origin: "m.nyc3.digitaloceanspaces.com", TTL: 120})
			return err
		}(), 422, "ttl"},
		{"cluster ID that is not a UUID", func() error { _, _, err := c.Databases.Get(ctx, "c1"); return err }(), 404, "database_cluster_uuid"},
		{"tag name with a space", func() error {
			_, _, err := c.Tags.Create(ctx, &godo.TagCreateRequest{Name: "web tier"})
			return err
		}(), 422, "name"},
		{"pool without a size", func() error {
			f.AddCluster(dofake.Cluster{ID: dofake.UUID(1), Size: "db-s-1vcpu-1gb"})
			_, _, err := c.Databases.CreatePool(ctx, dofake.UUID(1), &godo.DatabaseCreatePoolRequest{Name: "p", Database: "d", Mode: "transaction"})
			return err
		}(), 422, "size"},
	} {
		if status(tc.err) != tc.status || !strings.Contains(tc.err.Error(), tc.msg) {
			t.Errorf("%s: %v, want %d naming %q", tc.what, tc.err, tc.status, tc.msg)
		}
	}
	// The snapshot's region and the pool's size of 0 (the specification
	// sets no minimum) are the fake's own rules, as DO's answers show them.
	if _, refused := f.Checked(); refused != 7 {
		t.Errorf("refused by the specification %d, want 7", refused)
	}
	if len(f.Droplets()) != 0 {
		t.Errorf("a refused create made a droplet: %+v", f.Droplets())
	}
	// AllowDeprecated lets private_networking through, as DO does.
	f2, c2 := start(t, dofake.Options{AllowDeprecated: true})
	snap = f2.AddSnapshot(godo.Snapshot{Name: "x", Regions: []string{"tor1"}})
	image = 0
	for _, ch := range snap.ID {
		image = image*10 + int(ch-'0')
	}
	if _, _, err := c2.Droplets.Create(ctx, &godo.DropletCreateRequest{Name: "web-01", Region: "tor1", Size: "s-1vcpu-1gb",
		Image: godo.DropletCreateImage{ID: image}, PrivateNetworking: true, SSHKeys: []godo.DropletCreateSSHKey{}}); err != nil {
		t.Errorf("AllowDeprecated: %v", err)
	}
}

func TestFaultsAndAuth(t *testing.T) {
	f, c := start(t, dofake.Options{})
	ctx := context.Background()
	f.AddDroplet(dofake.Droplet{Name: "kirk", Size: "s-1vcpu-1gb", Region: "tor1", Tags: []string{"web"}})
	f.Fail("GET /v2/droplets", dofake.Fault{Status: 500, RequestID: "r1"}, dofake.Fault{Status: 429, RetryAfter: "3"})
	_, _, err := c.Droplets.List(ctx, nil)
	if got := doapi.Wrap("list", err).Error(); got != "list: API 500: injected 500 (request r1)" {
		t.Errorf("500: %q", got)
	}
	_, resp, err := c.Droplets.List(ctx, nil)
	if status(err) != 429 || resp.Header.Get("Retry-After") != "3" {
		t.Errorf("429: %v", err)
	}
	if ds := must(c.Droplets.List(ctx, nil)); len(ds) != 1 {
		t.Errorf("after the faults: %v", ds)
	}
	// After: the change is made, the answer is an error.
	f.Fail("POST /v2/tags", dofake.Fault{Status: 500, After: true})
	if _, _, err := c.Tags.Create(ctx, &godo.TagCreateRequest{Name: "late"}); status(err) != 500 {
		t.Errorf("after fault: %v", err)
	}
	if _, _, err := c.Tags.Get(ctx, "late"); err != nil {
		t.Errorf("the change behind the lost answer: %v", err)
	}
	if n := f.Count("GET /v2/droplets"); n != 3 {
		t.Errorf("count %d", n)
	}
	bad, _ := doapi.New(doapi.Options{Token: "wrong", BaseURL: f.Start(t), Retries: -1})
	if _, _, err := bad.Droplets.List(ctx, nil); status(err) != 401 {
		t.Errorf("wrong token: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("Fail on an unknown route did not panic")
		}
	}()
	f.Fail("GET /v2/nothing", dofake.Fault{Status: 500})
}

// The fake serves on a real loopback listener, and on nothing else.
func TestListen(t *testing.T) {
	f := dofake.New(dofake.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := f.Listen(ctx, "0.0.0.0:0"); err == nil {
		t.Error("listened on every address")
	}
	u, err := f.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := doapi.New(doapi.Options{Token: f.Token(), BaseURL: u, Retries: -1, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Droplets.List(ctx, nil); err != nil {
		t.Fatal(err)
	}
}
