package redistls

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// A failover moves the primary before it moves the name: between the
// old primary's demotion (or death) and the name's move, a new client
// connection would reach a node that refuses writes or connections, and a
// retrying client would reconnect over and over. So a node the monitor
// found no longer the primary is held: while every address the names
// resolve to is held, a new client connection waits for the name to move
// (or the node to be the primary again) before it is dialed.

// holdPoll is how often the names are resolved again while connections
// wait: one lookup per service, however many connections wait.
const holdPoll = 20 * time.Millisecond

// clientPoll is how often a waiting connection checks that its client is
// still there: a client that timed out and left frees its slot at once.
const clientPoll = 100 * time.Millisecond

// lookup resolves every connect name afresh, in order, and releases the
// held nodes the names no longer resolve to (when every name resolved).
func (s *service) lookup(ctx context.Context, st *settings) ([]string, error) {
	var addrs []string
	var err error
	for _, hp := range st.svc.Connect {
		as, rerr := s.t.cfg.Resolve(ctx, hp)
		if rerr != nil {
			err = rerr
		}
		addrs = append(addrs, as...)
	}
	if len(addrs) == 0 && err == nil {
		err = fmt.Errorf("%s resolves to no address", strings.Join(st.svc.Connect, ","))
	}
	if err == nil {
		s.seen(addrs)
	}
	return addrs, err
}

// seen releases the held nodes that are not among current, the complete
// answer of a lookup: the name moved away from them.
func (s *service) seen(current []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for n := range s.held {
		if !slices.Contains(current, n) {
			s.releaseLocked(n)
		}
	}
}

// hold keeps new connections from node until a lookup no longer returns
// it or release.
func (s *service) hold(node string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.held[node]; !ok {
		s.held[node] = time.Now()
	}
}

// release ends node's hold: it is the primary again.
func (s *service) release(node string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseLocked(node)
}

func (s *service) releaseLocked(node string) {
	if _, ok := s.held[node]; !ok {
		return
	}
	delete(s.held, node)
	delete(s.holdWarned, node)
	close(s.released) // wake the waiting connections
	s.released = make(chan struct{})
}

// usable drops the held nodes from addrs; nil when every one is held.
func (s *service) usable(addrs []string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, a := range addrs {
		if _, held := s.held[a]; !held {
			out = append(out, a)
		}
	}
	return out
}

// await resolves the backend names for a new client connection and
// returns the addresses to dial. While every address is a held node it
// waits, for at most the service's TIMEOUTconnect, for a lookup that
// returns another; then it returns the held addresses, as stunnel would
// dial them. ok is false when the client left or the service stopped
// while the connection waited.
func (s *service) await(ctx context.Context, st *settings, cl net.Conn) (addrs []string, err error, ok bool) {
	s.mu.Lock()
	released := s.released // taken before the lookup: a release after it still wakes us
	s.mu.Unlock()
	lookup := func() ([]string, error) {
		lctx, cancel := context.WithTimeout(ctx, st.svc.ConnectTimeout)
		defer cancel()
		return s.lookup(lctx, st)
	}
	if addrs, err = lookup(); len(addrs) == 0 {
		return nil, err, true
	}
	if use := s.usable(addrs); use != nil {
		return use, err, true
	}

	start := time.Now()
	s.startWaiting()
	defer s.stopWaiting()
	deadline := time.NewTimer(st.svc.ConnectTimeout)
	defer deadline.Stop()
	check := time.NewTicker(clientPoll)
	defer check.Stop()
	for {
		select {
		case <-released:
			s.mu.Lock()
			released = s.released
			s.mu.Unlock()
			// A failed lookup (the name in the middle of its move?) is
			// no reason to give up: wait for the next release.
			if as, lerr := lookup(); lerr == nil {
				if use := s.usable(as); use != nil {
					s.m.held[HoldReleased].Inc()
					s.t.log.Debug("the name moved; dialing the connection that waited", "service", s.name,
						"waited", time.Since(start), "addrs", strings.Join(use, ","))
					return use, nil, true
				}
				addrs = as
			}
		case <-check.C:
			if peerClosed(cl) {
				s.m.held[HoldClientClosed].Inc()
				return nil, nil, false
			}
		case <-deadline.C:
			s.m.held[HoldTimeout].Inc()
			s.warnHeldTimeout(st, addrs)
			return addrs, nil, true
		case <-ctx.Done():
			return nil, nil, false
		}
	}
}

// warnHeldTimeout says once per held node that a connection waited
// TIMEOUTconnect in vain and goes to the node the name still names.
func (s *service) warnHeldTimeout(st *settings, addrs []string) {
	s.mu.Lock()
	var fresh []string
	for _, a := range addrs {
		if !s.holdWarned[a] {
			s.holdWarned[a] = true
			fresh = append(fresh, a)
		}
	}
	s.mu.Unlock()
	if len(fresh) > 0 {
		s.t.log.Warn("the backend name still resolves to a node that is no longer the primary after TIMEOUTconnect; connecting to it anyway",
			"service", s.name, "connect", strings.Join(st.svc.Connect, ","), "nodes", strings.Join(fresh, ","), "waited", st.svc.ConnectTimeout)
	}
}

// startWaiting counts a waiting connection and starts the service's
// watcher if none runs.
func (s *service) startWaiting() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waiting++
	if !s.watching {
		s.watching = true
		go s.watch(s.ctx)
	}
}

func (s *service) stopWaiting() {
	s.mu.Lock()
	s.waiting--
	s.mu.Unlock()
}

// watch resolves the names every holdPoll while connections wait; each
// lookup releases the nodes the names left, which wakes the waiters.
func (s *service) watch(ctx context.Context) {
	tick := time.NewTicker(holdPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
		s.mu.Lock()
		if s.waiting == 0 || ctx.Err() != nil {
			s.watching = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		lctx, cancel := context.WithTimeout(ctx, s.t.cfg.ProbeTimeout)
		s.lookup(lctx, s.settings())
		cancel()
	}
}
