package redistls

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
)

// failoverForget is how long a node judged no longer primary stays judged
// when nothing reaches it any more: abandoning it again after that counts
// as a new failover event.
const failoverForget = 5 * time.Minute

// monitor watches the nodes this service's connections are pinned to, every
// ProbeInterval and at once when a connection saw -READONLY or lost its
// backend. A node is abandoned (its client connections closed, so clients
// reconnect through a fresh resolution) when the name no longer resolves to
// it, when ROLE says it is a replica after a probe saw it as the primary
// or a client got -READONLY from it, or when it stops answering. In the
// last three cases the name may not have moved yet: the node is held
// first (hold.go), so that new connections, the abandoned clients'
// reconnects among them, wait for the name to move instead of reaching
// the node again.
//
// Each node's probe client dials with the settings it was built with; a
// Reload (a new CAfile, sni, checkHost) replaces them, and the next round
// builds new clients, so no probe keeps verifying with the old ones.
//
// Abandoning a node is one failover event until the node is seen as the
// primary again (ROLE master and the name resolves to it): connections
// that still reach it (a connection that waited TIMEOUTconnect in vain is
// dialed where the name points) are closed on every probe, which counts
// closed connections, not events.
func (s *service) monitor(ctx context.Context) {
	tick := time.NewTicker(s.t.cfg.ProbeInterval)
	defer tick.Stop()
	type probe struct {
		c  *redis.Client
		st *settings // what c dials with
	}
	probes := map[string]probe{}
	failing := map[string]time.Time{} // node -> first failed probe in a row
	judged := map[string]time.Time{}  // node -> last abandoned, until seen as the primary again
	abandon := func(n, reason string) {
		last, seen := judged[n]
		judged[n] = time.Now()
		s.abandon(n, reason, !seen || time.Since(last) > failoverForget)
	}
	// judge abandons a node the name may still resolve to: new
	// connections wait for the name to move (hold.go) before the ones
	// pinned to it are closed, so that their clients' reconnects wait too.
	judge := func(n, reason string) {
		s.hold(n)
		abandon(n, reason)
	}
	defer func() {
		for _, p := range probes {
			p.c.Close()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-s.kick:
		}
		now := time.Now().Unix()
		s.clock.Store(now)
		st := s.settings()
		idle := now - int64(st.svc.IdleTimeout/time.Second)
		s.closeWhere(func(c *conn) bool {
			cb := c.closeBy.Load()
			return c.last.Load() < idle || cb != 0 && cb <= now
		})

		// Watch every node a connection was pinned to lately, not only those
		// with connections now: clients that left a demoted node on their
		// own (go-redis drops a connection that got -READONLY) must not
		// hide its failover.
		s.mu.Lock()
		nodes := make([]string, 0, len(s.used))
		for n, at := range s.used {
			if s.nodes[n] == nil && time.Since(at) > failoverForget {
				delete(s.used, n)
				continue
			}
			nodes = append(nodes, n)
		}
		suspects := s.suspects
		s.suspects = map[string]bool{}
		s.mu.Unlock()
		for n, p := range probes {
			gone := !contains(nodes, n)
			if gone || p.st != st {
				p.c.Close()
				delete(probes, n)
			}
			if gone {
				delete(failing, n)
				s.forgetPrimary(n)
			}
		}
		for n, at := range judged {
			if time.Since(at) > failoverForget {
				delete(judged, n)
			}
		}
		if len(nodes) == 0 {
			continue
		}
		current, resolved := s.resolveAll(ctx, st)
		for _, n := range nodes {
			if resolved && !current[n] {
				abandon(n, FailoverMoved)
				continue
			}
			if probes[n].c == nil {
				probes[n] = probe{s.probeClient(st, n), st}
			}
			role, err := probeRole(ctx, probes[n].c, s.t.cfg.ProbeTimeout)
			if isNetErr(err) { // one retry on a fresh connection before giving up on it
				role, err = probeRole(ctx, probes[n].c, s.t.cfg.ProbeTimeout)
			}
			if !isNetErr(err) {
				delete(failing, n)
			} else if failing[n].IsZero() {
				failing[n] = time.Now()
			}
			switch {
			case isNetErr(err) && (refused(err) || time.Since(failing[n]) >= 3*s.t.cfg.ProbeTimeout):
				// Refused: the node is gone. Timeouts: only after 3 probe
				// budgets in a row, so a busy primary is not abandoned.
				delete(failing, n)
				judge(n, FailoverDown)
			case err == nil && role != "master" && (s.wasPrimary(n) || suspects[n]):
				judge(n, FailoverRole)
			case err == nil && role != "master":
				// A replica never seen as the primary, which no client
				// tried to write to: the name points at it on purpose
				// (a read-only endpoint), or the tunnel started after
				// the demotion and the name will move. Leave it.
			case err != nil && suspects[n]: // no ROLE (no password?): trust the -READONLY
				judge(n, FailoverReadOnly)
			case err == nil:
				s.markPrimary(n)
				if resolved && current[n] {
					delete(judged, n) // the primary again: its next failover is a new event
					s.release(n)
				}
			}
		}
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

// resolveAll resolves every connect name; ok is false when any lookup
// failed, so that a resolver outage never closes connections.
func (s *service) resolveAll(ctx context.Context, st *settings) (map[string]bool, bool) {
	ctx, cancel := context.WithTimeout(ctx, s.t.cfg.ProbeTimeout)
	defer cancel()
	as, err := s.lookup(ctx, st)
	if err != nil {
		return nil, false
	}
	out := map[string]bool{}
	for _, a := range as {
		out[a] = true
	}
	return out, true
}

func (s *service) markPrimary(node string) {
	s.mu.Lock()
	s.primaries[node] = true
	s.mu.Unlock()
}

func (s *service) wasPrimary(node string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.primaries[node]
}

func (s *service) forgetPrimary(node string) {
	s.mu.Lock()
	delete(s.primaries, node)
	s.mu.Unlock()
}

// abandon closes every client connection pinned to node; event is true for
// the first abandon of a failover.
func (s *service) abandon(node, reason string, event bool) {
	s.mu.Lock()
	set := s.nodes[node]
	delete(s.nodes, node)
	s.mu.Unlock()
	for c := range set {
		c.close()
	}
	s.m.failover(reason, len(set), event)
	switch {
	case event:
		s.t.log.Warn("backend node is no longer the primary; closed its client connections so they reconnect to the primary",
			"service", s.name, "node", node, "reason", reason, "connections", len(set))
	case len(set) > 0:
		s.t.log.Info("closed client connections that reached the abandoned node again (its name still points at it after TIMEOUTconnect?)",
			"service", s.name, "node", node, "reason", reason, "connections", len(set))
	}
}

// suspect is called when a reply from node carried -READONLY.
func (s *service) suspect(node string) {
	s.mu.Lock()
	s.suspects[node] = true
	s.mu.Unlock()
	s.kickMonitor()
}

func (s *service) kickMonitor() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// probeClient talks to one resolved node (or, with node "", to the name
// resolved afresh) over the service's verified TLS.
func (s *service) probeClient(st *settings, node string) *redis.Client {
	to := s.t.cfg.ProbeTimeout
	return redis.NewClient(&redis.Options{
		Addr: "backend", Username: s.t.cfg.Username, Password: s.t.cfg.Password,
		Protocol: 2, DisableIdentity: true, PoolSize: 1, MaxRetries: -1, DialerRetries: 1,
		DialTimeout: to, ReadTimeout: to, WriteTimeout: to,
		Dialer: func(ctx context.Context, _, _ string) (net.Conn, error) {
			tc, _, _, err := s.dial(ctx, st, node, false)
			return tc, err
		},
	})
}

func probeRole(ctx context.Context, c *redis.Client, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v, err := c.Do(ctx, "ROLE").Slice()
	if err != nil {
		return "", err
	}
	if len(v) == 0 {
		return "", errors.New("empty ROLE reply")
	}
	role, _ := v[0].(string)
	return role, nil
}

func refused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}

// isNetErr is true for errors that say the node did not answer, as
// opposed to a Redis error reply such as NOAUTH or NOPERM.
func isNetErr(err error) bool {
	var re redis.Error
	return err != nil && !errors.As(err, &re)
}

// Check dials every service's backend by name as a client connection
// would (fresh resolution, verified TLS), sends AUTH and PING, and returns
// every service's failure, joined (nil when all answer). Its dials are not
// counted in redistls_dials_total or redistls_dial_errors_total, which
// count client connections only.
func (t *Tunnel) Check(ctx context.Context) error {
	t.mu.Lock()
	svcs := make([]*service, 0, len(t.services))
	for _, s := range t.services {
		svcs = append(svcs, s)
	}
	t.mu.Unlock()
	sort.Slice(svcs, func(i, j int) bool { return svcs[i].name < svcs[j].name })
	var errs []error
	for _, s := range svcs {
		c := s.probeClient(s.settings(), "")
		err := c.Ping(ctx).Err()
		c.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("[%s]: %w", s.name, err))
		}
	}
	return errors.Join(errs...)
}

// Handler serves /healthz (200 when Check passes, 503 with the reason
// otherwise) and /metrics.
func (t *Tunnel) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*t.cfg.ProbeTimeout)
		defer cancel()
		if err := t.Check(ctx); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	if t.gatherer != nil {
		mux.Handle("/metrics", promhttp.HandlerFor(t.gatherer, promhttp.HandlerOpts{}))
	}
	return mux
}
