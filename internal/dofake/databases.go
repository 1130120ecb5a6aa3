package dofake

import (
	"net/http"

	"github.com/digitalocean/godo"
)

// Cluster seeds a managed database cluster.
type Cluster struct {
	// ID is the cluster's UUID (UUID(n) gives one).
	ID   string
	Name string
	// Engine is "pg" unless set.
	Engine string
	// Size is the size slug ("db-s-2vcpu-4gb").
	Size string
	// Host and PrivateHost are the public and VPC host names; "" leaves
	// that connection out of the answer.
	Host, PrivateHost string
	// User and Password are doadmin's, returned in the connections.
	User, Password string
	// CA is the cluster's CA certificate (PEM).
	CA []byte
	// Limit is the connection limit the pools' sizes share: a create or
	// resize past it gets 422, as from DO. 0 means no check.
	Limit int
	// Pools are the cluster's connection pools.
	Pools []godo.DatabasePool
}

type cluster struct {
	Cluster
	pools map[string]godo.DatabasePool
}

func init() {
	handlers["databases_get_cluster"] = getCluster
	handlers["databases_get_ca"] = getCA
	handlers["databases_list_connectionPools"] = listPools
	handlers["databases_add_connectionPool"] = addPool
	handlers["databases_get_connectionPool"] = getPool
	handlers["databases_update_connectionPool"] = updatePool
	handlers["databases_delete_connectionPool"] = deletePool
}

// AddCluster seeds a cluster (replacing one with the same ID).
func (s *Server) AddCluster(c Cluster) {
	if c.Engine == "" {
		c.Engine = "pg"
	}
	if c.User == "" {
		c.User = "doadmin"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cl := &cluster{Cluster: c, pools: map[string]godo.DatabasePool{}}
	for _, p := range c.Pools {
		cl.pools[p.Name] = cl.withConnection(p)
	}
	s.clusters[c.ID] = cl
}

// SetCA replaces a cluster's CA certificate.
func (s *Server) SetCA(clusterID string, pem []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clusters[clusterID].CA = pem
}

// Pool returns a pool of a cluster as the fake holds it.
func (s *Server) Pool(clusterID, name string) (godo.DatabasePool, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.clusters[clusterID].pools[name]
	return p, ok
}

// Pools returns a cluster's pools, sorted by name.
func (s *Server) Pools(clusterID string) []godo.DatabasePool {
	s.mu.Lock()
	defer s.mu.Unlock()
	cl := s.clusters[clusterID]
	out := []godo.DatabasePool{}
	for _, n := range sortedKeys(cl.pools) {
		out = append(out, cl.pools[n])
	}
	return out
}

// PutPool sets a pool of a cluster as if made through the API.
func (s *Server) PutPool(clusterID string, p godo.DatabasePool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cl := s.clusters[clusterID]
	cl.pools[p.Name] = cl.withConnection(p)
}

func (c *cluster) conn(host string, port int, db string) *godo.DatabaseConnection {
	if host == "" {
		return nil
	}
	return &godo.DatabaseConnection{Host: host, Port: port, User: c.User, Password: c.Password, Database: db, SSL: true}
}

func (c *cluster) withConnection(p godo.DatabasePool) godo.DatabasePool {
	p.Connection = c.conn(c.Host, 25061, p.Name)
	p.PrivateConnection = c.conn(c.PrivateHost, 25061, p.Name)
	return p
}

func (c *cluster) poolSum() int {
	n := 0
	for _, p := range c.pools {
		n += p.Size
	}
	return n
}

func (s *Server) cluster(w http.ResponseWriter, p map[string]string) *cluster {
	c := s.clusters[p["database_cluster_uuid"]]
	if c == nil {
		notFound(w)
	}
	return c
}

func getCluster(s *Server, w http.ResponseWriter, _ *http.Request, p map[string]string) {
	c := s.cluster(w, p)
	if c == nil {
		return
	}
	reply(w, http.StatusOK, map[string]any{"database": godo.Database{ID: c.ID, Name: c.Name, EngineSlug: c.Engine,
		SizeSlug: c.Size, NumNodes: 1, Status: "online", Connection: c.conn(c.Host, 25060, "defaultdb"),
		PrivateConnection: c.conn(c.PrivateHost, 25060, "defaultdb")}})
}

func getCA(s *Server, w http.ResponseWriter, _ *http.Request, p map[string]string) {
	if c := s.cluster(w, p); c != nil {
		reply(w, http.StatusOK, map[string]any{"ca": godo.DatabaseCA{Certificate: c.CA}}) // base64 in JSON, as DO sends it
	}
}

func listPools(s *Server, w http.ResponseWriter, _ *http.Request, p map[string]string) {
	c := s.cluster(w, p)
	if c == nil {
		return
	}
	out := []godo.DatabasePool{}
	for _, n := range sortedKeys(c.pools) {
		out = append(out, c.pools[n])
	}
	reply(w, http.StatusOK, map[string]any{"pools": out})
}

func addPool(s *Server, w http.ResponseWriter, r *http.Request, p map[string]string) {
	c := s.cluster(w, p)
	if c == nil {
		return
	}
	var req godo.DatabaseCreatePoolRequest
	decode(r, &req)
	switch {
	case c.pools[req.Name].Name != "":
		unprocessable(w, "name is already in use")
	case req.Size < 1:
		unprocessable(w, "size must be at least 1")
	case c.Limit > 0 && c.poolSum()+req.Size > c.Limit:
		unprocessable(w, "pool size exceeds the available connections")
	default:
		pool := c.withConnection(godo.DatabasePool{Name: req.Name, User: req.User, Size: req.Size, Database: req.Database, Mode: req.Mode})
		c.pools[req.Name] = pool
		reply(w, http.StatusCreated, map[string]any{"pool": pool})
	}
}

func (c *cluster) pool(w http.ResponseWriter, p map[string]string) (godo.DatabasePool, bool) {
	pool, ok := c.pools[p["pool_name"]]
	if !ok {
		notFound(w)
	}
	return pool, ok
}

func getPool(s *Server, w http.ResponseWriter, _ *http.Request, p map[string]string) {
	if c := s.cluster(w, p); c != nil {
		if pool, ok := c.pool(w, p); ok {
			reply(w, http.StatusOK, map[string]any{"pool": pool})
		}
	}
}

func updatePool(s *Server, w http.ResponseWriter, r *http.Request, p map[string]string) {
	c := s.cluster(w, p)
	if c == nil {
		return
	}
	pool, ok := c.pool(w, p)
	if !ok {
		return
	}
	var req godo.DatabaseUpdatePoolRequest
	decode(r, &req)
	if c.Limit > 0 && c.poolSum()-pool.Size+req.Size > c.Limit {
		unprocessable(w, "pool size exceeds the available connections")
		return
	}
	pool.Size, pool.Mode, pool.Database = req.Size, req.Mode, req.Database
	if req.User != "" {
		pool.User = req.User
	}
	c.pools[pool.Name] = c.withConnection(pool)
	w.WriteHeader(http.StatusNoContent)
}

func deletePool(s *Server, w http.ResponseWriter, _ *http.Request, p map[string]string) {
	if c := s.cluster(w, p); c != nil {
		if pool, ok := c.pool(w, p); ok {
			delete(c.pools, pool.Name)
			w.WriteHeader(http.StatusNoContent)
		}
	}
}
