package dofake

import (
	"net/http"
	"strings"
	"time"

	"github.com/digitalocean/godo"
)

// FlushLimit is the most paths one purge request may name: DO purges 50
// files per 20 s and answers 429 beyond.
const FlushLimit = 50

func init() {
	handlers["cdn_list_endpoints"] = listEndpoints
	handlers["cdn_create_endpoint"] = createEndpoint
	handlers["cdn_get_endpoint"] = getEndpoint
	handlers["cdn_update_endpoints"] = updateEndpoint
	handlers["cdn_delete_endpoint"] = deleteEndpoint
	handlers["cdn_purge_cache"] = purgeCache
}

// AddEndpoint seeds a CDN endpoint; an empty ID gets a UUID, an empty
// Endpoint the origin's CDN host. It returns the endpoint as stored.
func (s *Server) AddEndpoint(ep godo.CDN) godo.CDN {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addEndpoint(ep)
}

func (s *Server) addEndpoint(ep godo.CDN) godo.CDN {
	if ep.ID == "" {
		s.nextID++
		ep.ID = UUID(s.nextID)
	}
	if ep.Endpoint == "" {
		ep.Endpoint = strings.Replace(ep.Origin, ".digitaloceanspaces.com", ".cdn.digitaloceanspaces.com", 1)
	}
	if ep.CreatedAt.IsZero() {
		ep.CreatedAt = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	s.endpoints = append(s.endpoints, ep)
	return ep
}

// Endpoints returns the CDN endpoints in the order they were made.
func (s *Server) Endpoints() []godo.CDN {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]godo.CDN(nil), s.endpoints...)
}

// SetEndpoint replaces the endpoint with ep's ID.
func (s *Server) SetEndpoint(ep godo.CDN) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.endpoints {
		if s.endpoints[i].ID == ep.ID {
			s.endpoints[i] = ep
		}
	}
}

// RemoveEndpoint deletes an endpoint as if through the API.
func (s *Server) RemoveEndpoint(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeEndpoint(id)
}

func (s *Server) removeEndpoint(id string) bool {
	for i := range s.endpoints {
		if s.endpoints[i].ID == id {
			s.endpoints = append(s.endpoints[:i], s.endpoints[i+1:]...)
			return true
		}
	}
	return false
}

// Flushes returns the files of each purge request.
func (s *Server) Flushes() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]string(nil), s.flushes...)
}

func (s *Server) endpoint(w http.ResponseWriter, p map[string]string) *godo.CDN {
	for i := range s.endpoints {
		if s.endpoints[i].ID == p["cdn_id"] {
			return &s.endpoints[i]
		}
	}
	notFound(w)
	return nil
}

func listEndpoints(s *Server, w http.ResponseWriter, r *http.Request, _ map[string]string) {
	items, links, meta := page(s, r, append([]godo.CDN{}, s.endpoints...))
	reply(w, http.StatusOK, map[string]any{"endpoints": items, "links": links, "meta": meta})
}

func createEndpoint(s *Server, w http.ResponseWriter, r *http.Request, _ map[string]string) {
	var req godo.CDNCreateRequest
	decode(r, &req)
	for _, ep := range s.endpoints {
		if strings.EqualFold(ep.Origin, req.Origin) {
			unprocessable(w, "origin already has an endpoint")
			return
		}
	}
	if req.CustomDomain != "" && req.CertificateID == "" {
		unprocessable(w, "certificate_id is required with custom_domain")
		return
	}
	if req.TTL == 0 {
		req.TTL = 3600
	}
	ep := s.addEndpoint(godo.CDN{Origin: req.Origin, TTL: req.TTL, CustomDomain: req.CustomDomain,
		CertificateID: req.CertificateID, CreatedAt: time.Now().UTC().Truncate(time.Second)})
	reply(w, http.StatusCreated, map[string]any{"endpoint": ep})
}

func getEndpoint(s *Server, w http.ResponseWriter, _ *http.Request, p map[string]string) {
	if ep := s.endpoint(w, p); ep != nil {
		reply(w, http.StatusOK, map[string]any{"endpoint": ep})
	}
}

func updateEndpoint(s *Server, w http.ResponseWriter, r *http.Request, p map[string]string) {
	ep := s.endpoint(w, p)
	if ep == nil {
		return
	}
	var req struct {
		TTL           *uint32 `json:"ttl"`
		CertificateID *string `json:"certificate_id"`
		CustomDomain  *string `json:"custom_domain"`
	}
	decode(r, &req)
	if req.CustomDomain != nil && *req.CustomDomain != "" && (req.CertificateID == nil || *req.CertificateID == "") {
		unprocessable(w, "certificate_id is required with custom_domain")
		return
	}
	if req.TTL != nil {
		ep.TTL = *req.TTL
	}
	if req.CustomDomain != nil {
		ep.CustomDomain = *req.CustomDomain
		ep.CertificateID = ""
		if req.CertificateID != nil {
			ep.CertificateID = *req.CertificateID
		}
	}
	reply(w, http.StatusOK, map[string]any{"endpoint": ep})
}

func deleteEndpoint(s *Server, w http.ResponseWriter, _ *http.Request, p map[string]string) {
	if ep := s.endpoint(w, p); ep != nil {
		s.removeEndpoint(ep.ID)
		w.WriteHeader(http.StatusNoContent)
	}
}

func purgeCache(s *Server, w http.ResponseWriter, r *http.Request, p map[string]string) {
	if s.endpoint(w, p) == nil {
		return
	}
	var req godo.CDNFlushCacheRequest
	decode(r, &req)
	if len(req.Files) > FlushLimit {
		w.Header().Set("Retry-After", "20")
		apiError(w, http.StatusTooManyRequests, "too_many_requests", "purge at most 50 files per 20 seconds", "")
		return
	}
	s.flushes = append(s.flushes, req.Files)
	w.WriteHeader(http.StatusNoContent)
}
