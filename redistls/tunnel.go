package redistls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Tunnel accepts plaintext Redis connections on loopback and forwards each
// to its service's TLS backend, resolving the backend name for every
// connection and closing connections whose node stopped being the primary.
type Tunnel struct {
	cfg      *Config // with defaults, as New got it; Reload swaps each service's settings
	log      *slog.Logger
	m        *metrics
	gatherer prometheus.Gatherer

	mu       sync.Mutex
	services map[string]*service
	draining map[string]int // removed services still draining, by name
	started  bool
	httpSrv  *http.Server
}

// settings are a service's reloadable parts.
type settings struct {
	svc Service
	tls *tls.Config
}

type service struct {
	t     *Tunnel
	name  string
	m     *serviceMetrics
	st    atomic.Pointer[settings]
	clock atomic.Int64 // unix seconds, advanced by the monitor
	kick  chan struct{}

	mu         sync.Mutex
	ln         net.Listener
	nodes      map[string]map[*conn]struct{}
	used       map[string]time.Time // node -> last time a connection was pinned to it
	suspects   map[string]bool
	primaries  map[string]bool      // nodes a probe found to be the primary
	held       map[string]time.Time // nodes no longer the primary, the name not moved yet (hold.go)
	holdWarned map[string]bool      // held nodes whose wait timed out, said once
	released   chan struct{}        // closed and replaced when a hold ends
	waiting    int                  // connections waiting for a held node's name to move
	watching   bool                 // a watcher resolves the names while they wait
	closing    bool                 // shutdown began: accept nothing more
	conns      sync.WaitGroup
	ctx        context.Context // ends when the service stops: monitor and pending dials
	stop       context.CancelFunc
	stopped    chan struct{}
}

// New checks cfg (see Config.Validate) and registers the metrics; Start
// opens the listeners.
func New(cfg *Config) (*Tunnel, error) {
	c := cfg.withDefaults()
	tlsCfgs, err := c.tlsConfigs()
	if err != nil {
		return nil, err
	}
	t := &Tunnel{cfg: c, log: c.Logger, services: map[string]*service{}, draining: map[string]int{}}
	reg := c.Registerer
	if reg == nil {
		r := prometheus.NewRegistry()
		r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		reg, t.gatherer = r, r
	} else if g, ok := reg.(prometheus.Gatherer); ok {
		t.gatherer = g
	}
	if t.m, err = newMetrics(reg); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	for i, s := range c.Services {
		t.services[s.Name] = t.newService(s, tlsCfgs[i])
	}
	return t, nil
}

func (t *Tunnel) newService(s Service, tc *tls.Config) *service {
	sv := &service{t: t, name: s.Name, m: t.m.service(s.Name), kick: make(chan struct{}, 1),
		nodes: map[string]map[*conn]struct{}{}, used: map[string]time.Time{}, suspects: map[string]bool{},
		primaries: map[string]bool{}, held: map[string]time.Time{}, holdWarned: map[string]bool{}, released: make(chan struct{})}
	sv.st.Store(&settings{svc: s, tls: tc})
	sv.clock.Store(time.Now().Unix())
	return sv
}

func (s *service) settings() *settings { return s.st.Load() }

// Start listens on every service's accept address (and HTTPAddr) and
// serves in the background until Shutdown.
func (t *Tunnel) Start() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.started {
		return errors.New("tunnel already started")
	}
	if _, err := proxyLoop(); err != nil {
		return err
	}
	lns := map[*service]net.Listener{}
	for _, s := range t.services {
		ln, err := net.Listen("tcp", s.settings().svc.Accept)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return fmt.Errorf("[%s] listen: %w", s.name, err)
		}
		lns[s] = ln
	}
	if t.cfg.HTTPAddr != "" {
		ln, err := net.Listen("tcp", t.cfg.HTTPAddr)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return fmt.Errorf("health listen: %w", err)
		}
		t.httpSrv = &http.Server{Handler: t.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go t.httpSrv.Serve(ln)
		t.log.Info("health and metrics", "addr", ln.Addr().String())
	}
	for s, ln := range lns {
		s.start(ln)
	}
	t.started = true
	return nil
}

func (s *service) start(ln net.Listener) {
	ctx, cancel := context.WithCancel(context.Background())
	s.mu.Lock()
	s.ln, s.ctx, s.stop, s.stopped = ln, ctx, cancel, make(chan struct{})
	s.mu.Unlock()
	go s.serve(ln)
	go func() { defer close(s.stopped); s.monitor(ctx) }()
	st := s.settings().svc
	s.t.log.Info("listening", "service", s.name, "accept", ln.Addr().String(), "connect", strings.Join(st.Connect, ","), "sni", st.SNI,
		"probe_interval", s.t.cfg.ProbeInterval)
}

// Run starts the tunnel, serves until ctx ends, then drains for at most
// DrainTimeout.
func (t *Tunnel) Run(ctx context.Context) error {
	if err := t.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), t.cfg.DrainTimeout)
	defer cancel()
	return t.Shutdown(sctx)
}

// Addr is the address a service listens on (useful with port 0).
func (t *Tunnel) Addr(service string) net.Addr {
	t.mu.Lock()
	s := t.services[service]
	t.mu.Unlock()
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Shutdown stops accepting, closes each connection once no command waits
// for its reply, and closes the rest when ctx ends.
func (t *Tunnel) Shutdown(ctx context.Context) error {
	t.mu.Lock()
	svcs := make([]*service, 0, len(t.services))
	for _, s := range t.services {
		svcs = append(svcs, s)
	}
	if t.httpSrv != nil {
		t.httpSrv.Close()
	}
	t.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range svcs {
		wg.Add(1)
		go func() { defer wg.Done(); s.shutdown(ctx) }()
	}
	wg.Wait()
	return ctx.Err()
}

func (s *service) shutdown(ctx context.Context) {
	s.mu.Lock()
	s.closing = true // serve adds no connection from now on: conns.Wait may start
	if s.ln != nil {
		s.ln.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.conns.Wait(); close(done) }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	expired := ctx.Done()
	for quietOnly := true; ; {
		s.closeWhere(func(c *conn) bool { return !quietOnly || !c.pending.Load() })
		select {
		case <-done:
			if s.stop != nil {
				s.stop()
				<-s.stopped
			}
			return
		case <-expired:
			// Close everything from now on, and end the dials still under
			// way. Once: a closed channel would make this loop spin.
			quietOnly, expired = false, nil
			if s.stop != nil {
				s.stop()
			}
		case <-tick.C:
		}
	}
}

func (s *service) closeWhere(f func(*conn) bool) {
	s.mu.Lock()
	var cs []*conn
	for _, set := range s.nodes {
		for c := range set {
			if f(c) {
				cs = append(cs, c)
			}
		}
	}
	s.mu.Unlock()
	for _, c := range cs {
		c.close()
	}
}

// Reload applies a re-read configuration: changed backends, CA files and
// timeouts apply to new connections, a changed accept address moves the
// listener, new services start and removed ones drain, after which their
// metric series are deleted. Connections that are already open stay open.
// Options outside the stunnel file (HTTPAddr, credentials, Resolve, Dial,
// Logger) stay as New set them. Nothing changes when the new configuration
// is invalid.
func (t *Tunnel) Reload(cfg *Config) error {
	next := *t.cfg
	next.Services, next.PIDFile, next.Debug = cfg.Services, cfg.PIDFile, cfg.Debug
	next.problems, next.files = cfg.problems, cfg.files // a file ParseConfig refused is refused here too
	c := next.withDefaults()
	tlsCfgs, err := c.tlsConfigs()
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	lns := map[string]net.Listener{}
	for _, s := range c.Services {
		if old := t.services[s.Name]; t.started && (old == nil || old.settings().svc.Accept != s.Accept) {
			ln, err := net.Listen("tcp", s.Accept)
			if err != nil {
				for _, l := range lns {
					l.Close()
				}
				return fmt.Errorf("reload: [%s] listen: %w", s.Name, err)
			}
			lns[s.Name] = ln
		}
	}
	keep := map[string]bool{}
	for i, s := range c.Services {
		keep[s.Name] = true
		sv := t.services[s.Name]
		if sv == nil {
			sv = t.newService(s, tlsCfgs[i])
			t.services[s.Name] = sv
			if ln := lns[s.Name]; ln != nil {
				sv.start(ln)
			}
			continue
		}
		sv.st.Store(&settings{svc: s, tls: tlsCfgs[i]})
		if ln := lns[s.Name]; ln != nil {
			sv.mu.Lock()
			old := sv.ln
			sv.ln = ln
			sv.mu.Unlock()
			old.Close()
			go sv.serve(ln)
		}
	}
	for name, sv := range t.services {
		if !keep[name] {
			delete(t.services, name)
			t.draining[name]++
			ctx, cancel := context.WithTimeout(context.Background(), t.cfg.DrainTimeout)
			go func() { defer cancel(); sv.shutdown(ctx); t.drained(name) }()
		}
	}
	t.log.Info("configuration reloaded", "services", len(c.Services))
	return nil
}

// drained deletes the metric series of a removed service once its last
// draining instance is done, unless a reload brought the name back (the
// new service shares the series).
func (t *Tunnel) drained(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.draining[name]--
	if t.draining[name] > 0 {
		return
	}
	delete(t.draining, name)
	if t.services[name] == nil {
		t.m.forget(name)
	}
}

// serve accepts connections until the listener closes.
func (s *service) serve(ln net.Listener) {
	var backoff time.Duration
	for {
		cl, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.t.log.Warn("accept", "service", s.name, "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		// A connection accepted while shutdown closes the listener must not
		// be added once conns.Wait has begun (a WaitGroup forbids it).
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			cl.Close()
			return
		}
		s.conns.Add(1)
		s.mu.Unlock()
		go s.handle(cl)
	}
}

// handle dials the backend for one client (after waiting while the name
// still resolves to a node no longer the primary, see await) and hands
// both sockets to the loop; the handshake's deep stack ends with this
// goroutine.
func (s *service) handle(cl net.Conn) {
	st := s.settings()
	s.mu.Lock()
	parent := s.ctx
	s.mu.Unlock()
	addrs, rerr, ok := s.await(parent, st, cl)
	if !ok {
		cl.Close()
		s.conns.Done()
		return
	}
	ctx, cancel := context.WithTimeout(parent, st.svc.ConnectTimeout)
	tc, bc, node, err := s.connect(ctx, st, addrs, rerr, true)
	cancel()
	if err != nil {
		cl.Close()
		s.conns.Done()
		return
	}
	l, err := proxyLoop()
	cfd := -1
	if err == nil {
		cfd, err = detach(cl)
	}
	if err == nil {
		bc.fd, err = detach(bc.Conn)
	}
	if err != nil {
		s.t.log.Error("cannot hand the connection to the poller", "service", s.name, "err", err)
		cl.Close()
		bc.Conn.Close()
		for _, fd := range []int{cfd, bc.fd} {
			if fd >= 0 {
				syscall.Close(fd)
			}
		}
		s.conns.Done()
		return
	}
	c := &conn{s: s, node: node, cfd: cfd, backend: tc, bc: bc}
	c.last.Store(s.clock.Load())
	s.track(c)
	if err := l.add(c); err != nil {
		s.t.log.Error("cannot hand the connection to the poller", "service", s.name, "err", err)
		c.finish(l)
	}
}

// dial resolves the backend name now (stunnel's delay = yes) and
// connects as connect does; node = "" dials by name, otherwise that
// resolved address. The health check and the monitor's probes dial here.
func (s *service) dial(ctx context.Context, st *settings, node string, client bool) (*tls.Conn, *backendConn, string, error) {
	if node != "" {
		return s.connect(ctx, st, []string{node}, nil, client)
	}
	addrs, err := s.lookup(ctx, st)
	return s.connect(ctx, st, addrs, err, client)
}

// connect connects to the first of addrs that answers and verifies its
// certificate; with no addrs it fails with rerr, the lookup's error. Only
// client dials count in the dial metrics: the health check and the
// monitor's probes dial too, but an operator reads those metrics as the
// clients' connections.
func (s *service) connect(ctx context.Context, st *settings, addrs []string, rerr error, client bool) (*tls.Conn, *backendConn, string, error) {
	if client {
		s.m.dials.Inc()
	}
	err := rerr
	reason := ReasonResolve
	for _, a := range addrs {
		var raw net.Conn
		raw, err = s.t.cfg.Dial(ctx, "tcp", a)
		if err != nil {
			reason = ReasonConnect
			if client && refused(err) {
				s.kickMonitor() // the node may be gone: let the monitor hold it
			}
			continue
		}
		if _, ok := raw.(syscall.Conn); !ok {
			raw.Close()
			reason, err = ReasonConnect, errors.New("the connection Config.Dial returned has no SyscallConn")
			continue
		}
		bc := &backendConn{Conn: raw, fd: -1}
		tc := tls.Client(bc, st.tls)
		if err = tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			reason = tlsReason(err)
			if reason == ReasonTLSVerify {
				msg := "backend certificate rejected (health check or failover probe)"
				if client {
					msg = "backend certificate rejected; closing the client connection"
				}
				s.t.log.Error(msg, "service", s.name, "backend", a, "server_name", st.svc.SNI, "err", err)
			}
			continue
		}
		return tc, bc, a, nil
	}
	if client {
		s.m.dialError(reason)
	}
	if reason != ReasonTLSVerify {
		s.t.log.Warn("backend dial failed", "service", s.name, "reason", reason, "err", err)
	}
	return nil, nil, "", fmt.Errorf("[%s] dial %s: %w", s.name, strings.Join(st.svc.Connect, ","), err)
}

func tlsReason(err error) string {
	var cv *tls.CertificateVerificationError
	var he x509.HostnameError
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	if errors.As(err, &cv) || errors.As(err, &he) || errors.As(err, &ua) || errors.As(err, &ci) {
		return ReasonTLSVerify
	}
	return ReasonTLS
}

func (s *service) track(c *conn) {
	s.mu.Lock()
	set := s.nodes[c.node]
	if set == nil {
		set = map[*conn]struct{}{}
		s.nodes[c.node] = set
	}
	set[c] = struct{}{}
	s.used[c.node] = time.Now()
	s.mu.Unlock()
	s.m.active.Inc()
}

func (s *service) untrack(c *conn) {
	s.mu.Lock()
	if set := s.nodes[c.node]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(s.nodes, c.node)
		}
	}
	s.mu.Unlock()
	s.m.active.Dec()
	s.conns.Done()
}
