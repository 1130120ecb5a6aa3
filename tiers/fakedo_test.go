package tiers

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/digitalocean/godo"
)

// fakeDO is a small stand-in for the parts of the DigitalOcean API that
// tiers uses: droplets (list by tag, get, create), droplet actions
// (snapshot), actions, droplet snapshots (list, delete) and load balancers
// (get, add droplets). It checks the bearer token, paginates, and injects
// faults per route.
type fakeDO struct {
	t     *testing.T
	srv   *httptest.Server
	token string

	mu        sync.Mutex
	nextID    int
	droplets  map[int]*godo.Droplet
	snapshots map[string]*godo.Snapshot
	actions   map[int]*fakeAction
	lbs       map[string]*godo.LoadBalancer
	faults    map[string][]fault
	calls     []string // "METHOD /path?query"
	// actionPolls is how many Actions.Get answers stay in-progress.
	actionPolls int
	// actionResult is the final status of a snapshot action.
	actionResult string
	// perPageMax caps per_page to force pagination.
	perPageMax int
}

type fakeAction struct {
	action   godo.Action
	polls    int
	snapshot *godo.Snapshot // created when the action completes
}

// fault answers a request to a route instead of the fake (or, with after,
// after the fake handled it: the change happens, the client sees an error).
type fault struct {
	status int
	header map[string]string
	body   string
	after  bool
}

func newFakeDO(t *testing.T) *fakeDO {
	f := &fakeDO{t: t, token: "dop_v1_testtoken", nextID: 1000,
		droplets: map[int]*godo.Droplet{}, snapshots: map[string]*godo.Snapshot{},
		actions: map[int]*fakeAction{}, lbs: map[string]*godo.LoadBalancer{}, faults: map[string][]fault{},
		actionPolls: 1, actionResult: godo.ActionCompleted, perPageMax: 200}
	mux := http.NewServeMux()
	route := func(pattern string, h func(w http.ResponseWriter, r *http.Request)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+f.token {
				writeJSON(w, 401, map[string]string{"id": "unauthorized", "message": "Unable to authenticate you"})
				return
			}
			f.mu.Lock()
			f.calls = append(f.calls, r.Method+" "+r.URL.RequestURI())
			var ft *fault
			if q := f.faults[pattern]; len(q) > 0 {
				ft, f.faults[pattern] = &q[0], q[1:]
			}
			f.mu.Unlock()
			if ft != nil && !ft.after {
				ft.write(w)
				return
			}
			if ft != nil {
				h(httptest.NewRecorder(), r)
				ft.write(w)
				return
			}
			h(w, r)
		})
	}
	route("GET /v2/droplets", f.listDroplets)
	route("GET /v2/droplets/{id}", f.getDroplet)
	route("POST /v2/droplets", f.createDroplet)
	route("POST /v2/droplets/{id}/actions", f.dropletAction)
	route("GET /v2/actions/{id}", f.getAction)
	route("GET /v2/snapshots", f.listSnapshots)
	route("DELETE /v2/snapshots/{id}", f.deleteSnapshot)
	route("GET /v2/load_balancers/{id}", f.getLB)
	route("POST /v2/load_balancers/{id}/droplets", f.addLBDroplets)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (ft *fault) write(w http.ResponseWriter) {
	for k, v := range ft.header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(ft.status)
	fmt.Fprint(w, ft.body)
}

// fail queues a fault for a route pattern such as "POST /v2/droplets".
func (f *fakeDO) fail(pattern string, ft fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ft.body == "" {
		ft.body = fmt.Sprintf(`{"id":"error","message":"injected %d"}`, ft.status)
	}
	f.faults[pattern] = append(f.faults[pattern], ft)
}

func (f *fakeDO) client(t *testing.T, cfg Config) *Client {
	t.Helper()
	cfg.Token = f.token
	cfg.BaseURL = f.srv.URL
	if cfg.RetryWaitMin == 0 {
		cfg.RetryWaitMin = 5 * time.Millisecond
		cfg.RetryWaitMax = 20 * time.Millisecond
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

func (f *fakeDO) callCount(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

// addDroplet seeds a droplet.
func (f *fakeDO) addDroplet(name, size, region, vpc, privateIP string, tags ...string) *godo.Droplet {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	d := &godo.Droplet{ID: f.nextID, Name: name, SizeSlug: size, Size: &godo.Size{Slug: size, Vcpus: 2, Memory: 4096},
		Vcpus: 2, Memory: 4096, Region: &godo.Region{Slug: region}, Status: "active", Tags: tags, VPCUUID: vpc,
		Features: []string{"monitoring", "private_networking"},
		Created:  time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339),
		Networks: &godo.Networks{V4: []godo.NetworkV4{{IPAddress: privateIP, Type: "private"}, {IPAddress: "203.0.113." + strconv.Itoa(f.nextID%200), Type: "public"}}}}
	f.droplets[d.ID] = d
	return d
}

func (f *fakeDO) addSnapshot(name, resourceID string, created time.Time, regions []string, tags ...string) *godo.Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	s := &godo.Snapshot{ID: strconv.Itoa(f.nextID), Name: name, ResourceID: resourceID, ResourceType: "droplet",
		Regions: regions, Created: created.UTC().Format(time.RFC3339), SizeGigaBytes: 4.2, MinDiskSize: 80, Tags: tags}
	f.snapshots[s.ID] = s
	return s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func notFound(w http.ResponseWriter) {
	writeJSON(w, 404, map[string]string{"id": "not_found", "message": "The resource you were accessing could not be found."})
}

// page cuts items by page/per_page and returns the links godo reads.
func page[T any](f *fakeDO, r *http.Request, items []T) ([]T, map[string]any, map[string]any) {
	p, _ := strconv.Atoi(r.URL.Query().Get("page"))
	per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
	if p < 1 {
		p = 1
	}
	if per < 1 {
		per = 20
	}
	per = min(per, f.perPageMax)
	lo, hi := min((p-1)*per, len(items)), min(p*per, len(items))
	pages := map[string]string{}
	link := func(n int) string {
		u := *r.URL
		q := u.Query()
		q.Set("page", strconv.Itoa(n))
		u.RawQuery = q.Encode()
		return f.srv.URL + u.Path + "?" + u.RawQuery
	}
	if hi < len(items) {
		pages["next"] = link(p + 1)
		pages["last"] = link((len(items) + per - 1) / per)
	}
	if p > 1 {
		pages["prev"] = link(p - 1)
		pages["first"] = link(1)
	}
	return items[lo:hi], map[string]any{"pages": pages}, map[string]any{"total": len(items)}
}

func (f *fakeDO) listDroplets(w http.ResponseWriter, r *http.Request) {
	tag := r.URL.Query().Get("tag_name")
	f.mu.Lock()
	var out []godo.Droplet
	for _, d := range f.droplets {
		if tag == "" || slices.Contains(d.Tags, tag) {
			out = append(out, *d)
		}
	}
	f.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	items, links, meta := page(f, r, out)
	writeJSON(w, 200, map[string]any{"droplets": items, "links": links, "meta": meta})
}

func (f *fakeDO) getDroplet(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.Atoi(r.PathValue("id"))
	f.mu.Lock()
	d, ok := f.droplets[id]
	var cp godo.Droplet
	if ok {
		cp = *d
		d.Status = "active" // new droplets boot by the next look
	}
	f.mu.Unlock()
	if !ok {
		notFound(w)
		return
	}
	writeJSON(w, 200, map[string]any{"droplet": cp})
}

func (f *fakeDO) createDroplet(w http.ResponseWriter, r *http.Request) {
	var req struct {
		godo.DropletCreateRequest
		Image   json.RawMessage `json:"image"`    // an ID or a slug
		SSHKeys []any           `json:"ssh_keys"` // IDs or fingerprints
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeJSON(w, 400, map[string]string{"id": "bad_request", "message": err.Error()})
		return
	}
	req.DropletCreateRequest.Image.ID, _ = strconv.Atoi(string(req.Image))
	if req.Name == "" || req.Region == "" || req.Size == "" || req.DropletCreateRequest.Image.ID == 0 {
		writeJSON(w, 422, map[string]string{"id": "unprocessable_entity", "message": "name, region, size and image are required"})
		return
	}
	f.mu.Lock()
	snap, ok := f.snapshots[string(req.Image)]
	if !ok || !slices.Contains(snap.Regions, req.Region) {
		f.mu.Unlock()
		writeJSON(w, 422, map[string]string{"id": "unprocessable_entity", "message": "You specified an invalid image for Droplet creation."})
		return
	}
	f.nextID++
	d := &godo.Droplet{ID: f.nextID, Name: req.Name, SizeSlug: req.Size, Size: &godo.Size{Slug: req.Size},
		Region: &godo.Region{Slug: req.Region}, Status: "new", Tags: req.Tags, VPCUUID: req.VPCUUID,
		Image: &godo.Image{ID: req.DropletCreateRequest.Image.ID}, Created: time.Now().UTC().Format(time.RFC3339)}
	f.droplets[d.ID] = d
	cp := *d
	f.mu.Unlock()
	writeJSON(w, 202, map[string]any{"droplet": cp})
}

func (f *fakeDO) dropletAction(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.Atoi(r.PathValue("id"))
	var req map[string]any
	_ = json.NewDecoder(r.Body).Decode(&req)
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.droplets[id]
	if !ok {
		notFound(w)
		return
	}
	if req["type"] != "snapshot" {
		writeJSON(w, 422, map[string]string{"id": "unprocessable_entity", "message": "unsupported action"})
		return
	}
	name, _ := req["name"].(string)
	f.nextID++
	a := &fakeAction{action: godo.Action{ID: f.nextID, Status: godo.ActionInProgress, Type: "snapshot", ResourceID: id, ResourceType: "droplet"}}
	f.nextID++
	a.snapshot = &godo.Snapshot{ID: strconv.Itoa(f.nextID), Name: name, ResourceID: strconv.Itoa(id), ResourceType: "droplet",
		Regions: []string{d.Region.Slug}, Created: time.Now().UTC().Format(time.RFC3339), SizeGigaBytes: 5}
	f.actions[a.action.ID] = a
	writeJSON(w, 201, map[string]any{"action": a.action})
}

func (f *fakeDO) getAction(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.Atoi(r.PathValue("id"))
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.actions[id]
	if !ok {
		notFound(w)
		return
	}
	a.polls++
	if a.action.Status == godo.ActionInProgress && f.actionPolls >= 0 && a.polls > f.actionPolls {
		a.action.Status = f.actionResult
		if f.actionResult == godo.ActionCompleted {
			f.snapshots[a.snapshot.ID] = a.snapshot
		}
	}
	writeJSON(w, 200, map[string]any{"action": a.action})
}

func (f *fakeDO) listSnapshots(w http.ResponseWriter, r *http.Request) {
	rt := r.URL.Query().Get("resource_type")
	f.mu.Lock()
	var out []godo.Snapshot
	for _, s := range f.snapshots {
		if rt == "" || s.ResourceType == rt {
			out = append(out, *s)
		}
	}
	f.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	items, links, meta := page(f, r, out)
	writeJSON(w, 200, map[string]any{"snapshots": items, "links": links, "meta": meta})
}

func (f *fakeDO) deleteSnapshot(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.snapshots[r.PathValue("id")]; !ok {
		notFound(w)
		return
	}
	delete(f.snapshots, r.PathValue("id"))
	w.WriteHeader(204)
}

func (f *fakeDO) getLB(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	lb, ok := f.lbs[r.PathValue("id")]
	var cp godo.LoadBalancer
	if ok {
		cp = *lb
	}
	f.mu.Unlock()
	if !ok {
		notFound(w)
		return
	}
	writeJSON(w, 200, map[string]any{"load_balancer": cp})
}

func (f *fakeDO) addLBDroplets(w http.ResponseWriter, r *http.Request) {
	var req struct {
		DropletIDs []int `json:"droplet_ids"`
	}
	_ = json.NewDecoder(r.Body).Decode(&req)
	f.mu.Lock()
	defer f.mu.Unlock()
	lb, ok := f.lbs[r.PathValue("id")]
	if !ok {
		notFound(w)
		return
	}
	if lb.Tag != "" {
		writeJSON(w, 422, map[string]string{"id": "unprocessable_entity", "message": "Load balancer targets a tag; droplets cannot be added by id."})
		return
	}
	for _, id := range req.DropletIDs {
		if _, ok := f.droplets[id]; !ok {
			writeJSON(w, 422, map[string]string{"id": "unprocessable_entity", "message": "droplet " + strconv.Itoa(id) + " not found"})
			return
		}
		if !slices.Contains(lb.DropletIDs, id) {
			lb.DropletIDs = append(lb.DropletIDs, id)
		}
	}
	w.WriteHeader(204)
}
