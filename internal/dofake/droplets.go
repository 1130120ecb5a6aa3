package dofake

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/digitalocean/godo"
)

func init() {
	handlers["droplets_list"] = listDroplets
	handlers["droplets_create"] = createDroplet
	handlers["droplets_get"] = getDroplet
	handlers["droplets_destroy"] = destroyDroplet
	handlers["droplets_destroy_byTag"] = destroyDropletsByTag
	handlers["dropletActions_post"] = postDropletAction
	handlers["actions_get"] = getAction
	handlers["snapshots_list"] = listSnapshots
	handlers["snapshots_get"] = getSnapshot
	handlers["snapshots_delete"] = deleteSnapshot
	handlers["loadBalancers_get"] = getLoadBalancer
	handlers["loadBalancers_add_droplets"] = addLBDroplets
	handlers["loadBalancers_remove_droplets"] = removeLBDroplets
	handlers["tags_list"] = listTags
	handlers["tags_create"] = createTag
	handlers["tags_get"] = getTag
	handlers["tags_delete"] = deleteTag
	handlers["tags_assign_resources"] = tagResources
	handlers["tags_unassign_resources"] = untagResources
}

// Droplet seeds a droplet.
type Droplet struct {
	Name, Size, Region, VPC string
	// PrivateIP and PublicIP are its addresses; "" leaves one out.
	PrivateIP, PublicIP string
	VCPUs, MemoryMiB    int
	Tags, Features      []string
	// Status is "active" unless set.
	Status string
}

type action struct {
	action   godo.Action
	polls    int
	snapshot *godo.Snapshot // made when the snapshot action completes
}

// AddDroplet seeds a droplet and returns it as the API shows it.
func (s *Server) AddDroplet(d Droplet) godo.Droplet {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d.Status == "" {
		d.Status = "active"
	}
	s.nextID++
	gd := &godo.Droplet{ID: s.nextID, Name: d.Name, SizeSlug: d.Size, Size: &godo.Size{Slug: d.Size, Vcpus: d.VCPUs, Memory: d.MemoryMiB},
		Vcpus: d.VCPUs, Memory: d.MemoryMiB, Region: &godo.Region{Slug: d.Region}, Status: d.Status, Tags: d.Tags, VPCUUID: d.VPC,
		Features: d.Features, Created: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339), Networks: &godo.Networks{}}
	if d.PrivateIP != "" {
		gd.Networks.V4 = append(gd.Networks.V4, godo.NetworkV4{IPAddress: d.PrivateIP, Type: "private"})
	}
	if d.PublicIP != "" {
		gd.Networks.V4 = append(gd.Networks.V4, godo.NetworkV4{IPAddress: d.PublicIP, Type: "public"})
	}
	s.droplets[gd.ID] = gd
	for _, t := range d.Tags {
		s.tags[t] = true
	}
	return *gd
}

// Droplets returns every droplet, by ID.
func (s *Server) Droplets() []godo.Droplet {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []godo.Droplet
	for _, id := range sortedKeys(s.droplets) {
		out = append(out, *s.droplets[id])
	}
	return out
}

// AddSnapshot seeds a droplet snapshot; an empty ID gets the next numeric
// one, as DO gives droplet snapshots. It returns the snapshot as stored.
func (s *Server) AddSnapshot(sn godo.Snapshot) godo.Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sn.ID == "" {
		s.nextID++
		sn.ID = strconv.Itoa(s.nextID)
	}
	if sn.ResourceType == "" {
		sn.ResourceType = "droplet"
	}
	s.snapshots[sn.ID] = &sn
	return sn
}

// Snapshots returns every snapshot, by ID.
func (s *Server) Snapshots() []godo.Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []godo.Snapshot
	for _, id := range sortedKeys(s.snapshots) {
		out = append(out, *s.snapshots[id])
	}
	return out
}

// SetActionOutcome says how actions end: after polls answers in progress
// (negative: never) with status "completed" or "errored".
func (s *Server) SetActionOutcome(polls int, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.actionPolls, s.actionResult = polls, status
}

// AddLoadBalancer seeds a load balancer; an empty ID gets a UUID. Give it
// a Tag to make it target a tag.
func (s *Server) AddLoadBalancer(lb godo.LoadBalancer) godo.LoadBalancer {
	s.mu.Lock()
	defer s.mu.Unlock()
	if lb.ID == "" {
		s.nextID++
		lb.ID = UUID(s.nextID)
	}
	s.lbs[lb.ID] = &lb
	return lb
}

// LoadBalancer returns a load balancer as the fake holds it.
func (s *Server) LoadBalancer(id string) godo.LoadBalancer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.lbs[id]
}

// SetLoadBalancerTag makes the load balancer target tag ("" for droplet IDs).
func (s *Server) SetLoadBalancerTag(id, tag string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lbs[id].Tag = tag
}

func (s *Server) droplet(w http.ResponseWriter, p map[string]string) *godo.Droplet {
	id, _ := strconv.Atoi(p["droplet_id"])
	d := s.droplets[id]
	if d == nil {
		notFound(w)
	}
	return d
}

func listDroplets(s *Server, w http.ResponseWriter, r *http.Request, _ map[string]string) {
	tag, name := r.URL.Query().Get("tag_name"), r.URL.Query().Get("name")
	out := []godo.Droplet{}
	for _, id := range sortedKeys(s.droplets) {
		d := s.droplets[id]
		if (tag == "" || slices.Contains(d.Tags, tag)) && (name == "" || d.Name == name) {
			out = append(out, *d)
		}
	}
	items, links, meta := page(s, r, out)
	reply(w, http.StatusOK, map[string]any{"droplets": items, "links": links, "meta": meta})
}

func createDroplet(s *Server, w http.ResponseWriter, r *http.Request, _ map[string]string) {
	var req struct {
		godo.DropletCreateRequest
		Image json.RawMessage `json:"image"` // an ID or a slug
		// ssh_keys are IDs or fingerprints
		SSHKeys []any `json:"ssh_keys"`
	}
	decode(r, &req)
	if req.Name == "" {
		unprocessable(w, "creating several droplets at once (names) is not served by the fake")
		return
	}
	snap := s.snapshots[string(req.Image)]
	if snap == nil || (req.Region != "" && !slices.Contains(snap.Regions, req.Region)) {
		unprocessable(w, "You specified an invalid image for Droplet creation.")
		return
	}
	region := req.Region
	if region == "" {
		region = snap.Regions[0]
	}
	image, _ := strconv.Atoi(snap.ID)
	s.nextID++
	d := &godo.Droplet{ID: s.nextID, Name: req.Name, SizeSlug: req.Size, Size: &godo.Size{Slug: req.Size},
		Region: &godo.Region{Slug: region}, Status: "new", Tags: req.Tags, VPCUUID: req.VPCUUID, Networks: &godo.Networks{},
		Image: &godo.Image{ID: image}, Created: time.Now().UTC().Format(time.RFC3339)}
	for _, f := range []struct {
		on   bool
		name string
	}{{req.Monitoring, "monitoring"}, {req.IPv6, "ipv6"}, {req.Backups, "backups"}, {req.VPCUUID != "", "private_networking"}} {
		if f.on {
			d.Features = append(d.Features, f.name)
		}
	}
	s.droplets[d.ID] = d
	for _, t := range req.Tags {
		s.tags[t] = true
	}
	reply(w, http.StatusAccepted, map[string]any{"droplet": d})
}

func getDroplet(s *Server, w http.ResponseWriter, _ *http.Request, p map[string]string) {
	d := s.droplet(w, p)
	if d == nil {
		return
	}
	cp := *d
	d.Status = "active" // a new droplet has booted by the next look
	reply(w, http.StatusOK, map[string]any{"droplet": cp})
}

func destroyDroplet(s *Server, w http.ResponseWriter, _ *http.Request, p map[string]string) {
	if d := s.droplet(w, p); d != nil {
		s.removeDroplet(d.ID)
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *Server) removeDroplet(id int) {
	delete(s.droplets, id)
	for _, lb := range s.lbs {
		lb.DropletIDs = slices.DeleteFunc(lb.DropletIDs, func(x int) bool { return x == id })
	}
}

func destroyDropletsByTag(s *Server, w http.ResponseWriter, r *http.Request, _ map[string]string) {
	tag := r.URL.Query().Get("tag_name")
	for id, d := range s.droplets {
		if slices.Contains(d.Tags, tag) {
			s.removeDroplet(id)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func postDropletAction(s *Server, w http.ResponseWriter, r *http.Request, p map[string]string) {
	d := s.droplet(w, p)
	if d == nil {
		return
	}
	var req struct {
		Type string `json:"type"`
		Name string `json:"name"`
	}
	decode(r, &req)
	s.nextID++
	a := &action{action: godo.Action{ID: s.nextID, Status: godo.ActionCompleted, Type: req.Type, ResourceID: d.ID,
		ResourceType: "droplet", StartedAt: &godo.Timestamp{Time: time.Now().UTC()}, RegionSlug: d.Region.Slug}}
	if req.Type == "snapshot" {
		a.action.Status = godo.ActionInProgress
		s.nextID++
		a.snapshot = &godo.Snapshot{ID: strconv.Itoa(s.nextID), Name: req.Name, ResourceID: strconv.Itoa(d.ID), ResourceType: "droplet",
			Regions: []string{d.Region.Slug}, Created: time.Now().UTC().Format(time.RFC3339), SizeGigaBytes: 5, MinDiskSize: 25}
	}
	s.actions[a.action.ID] = a
	reply(w, http.StatusCreated, map[string]any{"action": a.action})
}

func getAction(s *Server, w http.ResponseWriter, _ *http.Request, p map[string]string) {
	id, _ := strconv.Atoi(p["action_id"])
	a := s.actions[id]
	if a == nil {
		notFound(w)
		return
	}
	a.polls++
	if a.action.Status == godo.ActionInProgress && s.actionPolls >= 0 && a.polls > s.actionPolls {
		a.action.Status = s.actionResult
		a.action.CompletedAt = &godo.Timestamp{Time: time.Now().UTC()}
		if s.actionResult == godo.ActionCompleted && a.snapshot != nil {
			s.snapshots[a.snapshot.ID] = a.snapshot
		}
	}
	reply(w, http.StatusOK, map[string]any{"action": a.action})
}

func listSnapshots(s *Server, w http.ResponseWriter, r *http.Request, _ map[string]string) {
	rt := r.URL.Query().Get("resource_type")
	out := []godo.Snapshot{}
	for _, id := range sortedKeys(s.snapshots) {
		if sn := s.snapshots[id]; rt == "" || sn.ResourceType == rt {
			out = append(out, *sn)
		}
	}
	items, links, meta := page(s, r, out)
	reply(w, http.StatusOK, map[string]any{"snapshots": items, "links": links, "meta": meta})
}

func getSnapshot(s *Server, w http.ResponseWriter, _ *http.Request, p map[string]string) {
	if sn := s.snapshots[p["snapshot_id"]]; sn != nil {
		reply(w, http.StatusOK, map[string]any{"snapshot": sn})
		return
	}
	notFound(w)
}

func deleteSnapshot(s *Server, w http.ResponseWriter, _ *http.Request, p map[string]string) {
	if s.snapshots[p["snapshot_id"]] == nil {
		notFound(w)
		return
	}
	delete(s.snapshots, p["snapshot_id"])
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) loadBalancer(w http.ResponseWriter, p map[string]string) *godo.LoadBalancer {
	lb := s.lbs[p["lb_id"]]
	if lb == nil {
		notFound(w)
	}
	return lb
}

func getLoadBalancer(s *Server, w http.ResponseWriter, _ *http.Request, p map[string]string) {
	if lb := s.loadBalancer(w, p); lb != nil {
		reply(w, http.StatusOK, map[string]any{"load_balancer": lb})
	}
}

// lbDroplets checks a request to add or remove droplets: DO refuses it
// with 422 for a load balancer that targets a tag, and for a droplet that
// does not exist.
func (s *Server) lbDroplets(w http.ResponseWriter, r *http.Request, p map[string]string) (*godo.LoadBalancer, []int) {
	lb := s.loadBalancer(w, p)
	if lb == nil {
		return nil, nil
	}
	var req struct {
		DropletIDs []int `json:"droplet_ids"`
	}
	decode(r, &req)
	if lb.Tag != "" {
		unprocessable(w, "This load balancer is configured with a tag. Droplets cannot be added or removed by ID.")
		return nil, nil
	}
	for _, id := range req.DropletIDs {
		if s.droplets[id] == nil {
			unprocessable(w, "droplet "+strconv.Itoa(id)+" does not exist")
			return nil, nil
		}
	}
	return lb, req.DropletIDs
}

func addLBDroplets(s *Server, w http.ResponseWriter, r *http.Request, p map[string]string) {
	lb, ids := s.lbDroplets(w, r, p)
	if lb == nil {
		return
	}
	for _, id := range ids {
		if !slices.Contains(lb.DropletIDs, id) {
			lb.DropletIDs = append(lb.DropletIDs, id)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func removeLBDroplets(s *Server, w http.ResponseWriter, r *http.Request, p map[string]string) {
	lb, ids := s.lbDroplets(w, r, p)
	if lb == nil {
		return
	}
	lb.DropletIDs = slices.DeleteFunc(lb.DropletIDs, func(x int) bool { return slices.Contains(ids, x) })
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) tagInfo(name string) godo.Tag {
	n := 0
	for _, d := range s.droplets {
		if slices.Contains(d.Tags, name) {
			n++
		}
	}
	return godo.Tag{Name: name, Resources: &godo.TaggedResources{Count: n, Droplets: &godo.TaggedDropletsResources{Count: n}}}
}

func listTags(s *Server, w http.ResponseWriter, r *http.Request, _ map[string]string) {
	out := []godo.Tag{}
	for _, t := range sortedKeys(s.tags) {
		out = append(out, s.tagInfo(t))
	}
	items, links, meta := page(s, r, out)
	reply(w, http.StatusOK, map[string]any{"tags": items, "links": links, "meta": meta})
}

func createTag(s *Server, w http.ResponseWriter, r *http.Request, _ map[string]string) {
	var req godo.TagCreateRequest
	decode(r, &req)
	s.tags[req.Name] = true
	reply(w, http.StatusCreated, map[string]any{"tag": s.tagInfo(req.Name)})
}

func getTag(s *Server, w http.ResponseWriter, _ *http.Request, p map[string]string) {
	if !s.tags[p["tag_id"]] {
		notFound(w)
		return
	}
	reply(w, http.StatusOK, map[string]any{"tag": s.tagInfo(p["tag_id"])})
}

func deleteTag(s *Server, w http.ResponseWriter, _ *http.Request, p map[string]string) {
	name := p["tag_id"]
	if !s.tags[name] {
		notFound(w)
		return
	}
	delete(s.tags, name)
	for _, d := range s.droplets {
		d.Tags = slices.DeleteFunc(d.Tags, func(t string) bool { return t == name })
	}
	w.WriteHeader(http.StatusNoContent)
}

// taggedDroplets reads a tag resources request; only droplets are served.
func (s *Server) taggedDroplets(w http.ResponseWriter, r *http.Request, p map[string]string) ([]*godo.Droplet, bool) {
	if !s.tags[p["tag_id"]] {
		notFound(w)
		return nil, false
	}
	var req godo.TagResourcesRequest
	decode(r, &req)
	var out []*godo.Droplet
	for _, res := range req.Resources {
		id, _ := strconv.Atoi(res.ID)
		d := s.droplets[id]
		if res.Type != godo.DropletResourceType || d == nil {
			unprocessable(w, "resource "+res.ID+" of type "+string(res.Type)+" does not exist")
			return nil, false
		}
		out = append(out, d)
	}
	return out, true
}

func tagResources(s *Server, w http.ResponseWriter, r *http.Request, p map[string]string) {
	ds, ok := s.taggedDroplets(w, r, p)
	if !ok {
		return
	}
	for _, d := range ds {
		if !slices.Contains(d.Tags, p["tag_id"]) {
			d.Tags = append(d.Tags, p["tag_id"])
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func untagResources(s *Server, w http.ResponseWriter, r *http.Request, p map[string]string) {
	ds, ok := s.taggedDroplets(w, r, p)
	if !ok {
		return
	}
	for _, d := range ds {
		d.Tags = slices.DeleteFunc(d.Tags, func(t string) bool { return t == p["tag_id"] })
	}
	w.WriteHeader(http.StatusNoContent)
}
