package redistls

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fediops/fediops/internal/testenv"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// switchResolver maps every name to one address, switchable at run time:
// the stand-in for a DNS record that moves in a failover.
type switchResolver struct {
	mu   sync.Mutex
	addr string
	n    int
}

func (r *switchResolver) Resolve(ctx context.Context, hostport string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	return []string{r.addr}, nil
}

func (r *switchResolver) set(addr string) { r.mu.Lock(); r.addr = addr; r.mu.Unlock() }

func (r *switchResolver) lookups() int { r.mu.Lock(); defer r.mu.Unlock(); return r.n }

const testConf = `; the seed's file, plus verification
pid = /run/stunnel-redis.pid
delay = yes
[redis-client]
client = yes
accept = 127.0.0.1:0
connect = redis.fediops.test:25061
CAfile = %s
verifyChain = yes
%s`

type harness struct {
	tun *Tunnel
	res *switchResolver
	reg *prometheus.Registry
	log *bytes.Buffer
	mu  *sync.Mutex
}

func (h *harness) addr() string { return h.tun.Addr("redis-client").String() }

func (h *harness) logs() string { h.mu.Lock(); defer h.mu.Unlock(); return h.log.String() }

func (h *harness) client() *redis.Client {
	r := h.redisPassword()
	return redis.NewClient(&redis.Options{Addr: h.addr(), Password: r, Protocol: 2, DisableIdentity: true})
}

func (h *harness) redisPassword() string { return h.tun.cfg.Password }

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func startTunnel(t *testing.T, r *testenv.Redis, extra string, mod func(*Config)) *harness {
	t.Helper()
	cfg, err := ParseConfig("test.conf", strings.NewReader(fmt.Sprintf(testConf, r.CAFile, extra)))
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{res: &switchResolver{addr: r.Addr()}, reg: prometheus.NewRegistry(), log: &bytes.Buffer{}, mu: &sync.Mutex{}}
	cfg.Resolve = h.res.Resolve
	cfg.Password = r.Password
	cfg.ProbeInterval = 100 * time.Millisecond
	cfg.Registerer = h.reg
	cfg.Logger = slog.New(slog.NewTextHandler(lockedWriter{h.mu, h.log}, nil))
	if mod != nil {
		mod(cfg)
	}
	if h.tun, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	if err := h.tun.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		h.tun.Shutdown(ctx)
	})
	return h
}

func TestProxy(t *testing.T) {
	r := testenv.RedisTLS(t)
	h := startTunnel(t, r, "", nil)
	ctx := context.Background()
	c := h.client()
	defer c.Close()

	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB: many TLS records each way
	if err := c.Set(ctx, "proxy:big", big, 0).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, "proxy:big").Result()
	if err != nil || got != big {
		t.Fatalf("GET 1 MiB: %d bytes, err %v", len(got), err)
	}
	// A pipeline of 2000 commands: replies arrive coalesced in records.
	cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range 1000 {
			p.Set(ctx, fmt.Sprintf("proxy:%d", i), i, 0)
			p.Get(ctx, fmt.Sprintf("proxy:%d", i))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if v := cmds[1999].(*redis.StringCmd).Val(); v != "999" {
		t.Fatalf("pipelined GET = %q", v)
	}
	if n := testutil.ToFloat64(h.tun.m.active.WithLabelValues("redis-client")); n < 1 {
		t.Errorf("active connections = %v, want >= 1", n)
	}
	if n := testutil.ToFloat64(h.tun.m.bytes.WithLabelValues("redis-client", "to_client")); n < 1<<20 {
		t.Errorf("bytes to client = %v, want > 1 MiB", n)
	}
	// Ten connections resolve the name ten times (delay = yes).
	before := h.res.lookups()
	for range 10 {
		cl := h.client()
		if err := cl.Ping(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		cl.Close()
	}
	if n := h.res.lookups() - before; n < 10 {
		t.Errorf("10 connections made %d lookups, want >= 10", n)
	}
	// A client that half-closes still gets its reply.
	nc, err := net.Dial("tcp", h.addr())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(nc, "AUTH %s\r\nPING\r\n", r.Password)
	nc.(*net.TCPConn).CloseWrite()
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	reply, _ := io.ReadAll(nc)
	nc.Close()
	if string(reply) != "+OK\r\n+PONG\r\n" {
		t.Errorf("half-closed client got %q", reply)
	}
	c.Close()
	waitFor(t, "active connections back to 0", func() bool {
		return testutil.ToFloat64(h.tun.m.active.WithLabelValues("redis-client")) == 0
	})
}

func TestBadCertificate(t *testing.T) {
	r := testenv.RedisTLS(t)
	h := startTunnel(t, r, "checkHost = redis.example.org\n", nil)
	c := h.client()
	defer c.Close()
	if err := c.Ping(context.Background()).Err(); err == nil {
		t.Fatal("PING through a tunnel whose backend certificate does not match succeeded")
	}
	if n := testutil.ToFloat64(h.tun.m.dialErrors.WithLabelValues("redis-client", ReasonTLSVerify)); n < 1 {
		t.Errorf("dial errors{reason=tls_verify} = %v", n)
	}
	if l := h.logs(); !strings.Contains(l, "backend certificate rejected") || !strings.Contains(l, "redis.example.org") {
		t.Errorf("log does not explain the rejection:\n%s", l)
	}
}

func TestHealthz(t *testing.T) {
	r := testenv.RedisTLS(t)
	h := startTunnel(t, r, "", nil)
	srv := httptest.NewServer(h.tun.Handler())
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != 200 {
		t.Fatalf("/healthz = %d %s", code, body)
	}
	c := h.client()
	c.Ping(context.Background())
	c.Close()
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, `redistls_dials_total{service="redis-client"}`) {
		t.Fatalf("/metrics = %d:\n%s", code, body)
	}

	bad := startTunnel(t, r, "", func(c *Config) { c.Password = "wrong-password" })
	srv2 := httptest.NewServer(bad.tun.Handler())
	defer srv2.Close()
	resp, err := http.Get(srv2.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || strings.Contains(string(b), "wrong-password") {
		t.Fatalf("/healthz with a wrong password = %d %q", resp.StatusCode, b)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			var keep []string
			for _, g := range strings.Split(string(buf[:n]), "\n\n") {
				if strings.Contains(g, "redistls.(*conn)") {
					keep = append(keep, g)
				}
			}
			t.Fatalf("timed out waiting for %s\n%s", what, strings.Join(keep, "\n\n"))
		}
	}
}

// TestMetricsStartAtZero: every labelled series exists at 0 before the
// first event, so that rate() and increase() count the first burst.
func TestMetricsStartAtZero(t *testing.T) {
	cfg, err := ParseConfig("zero.conf", strings.NewReader("[a]\nclient = yes\naccept = 127.0.0.1:0\nconnect = a.fediops.test:25061\n[b]\nclient = yes\naccept = 127.0.0.1:0\nconnect = b.fediops.test:25061\n"))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	if _, err := New(cfg); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			have[mf.GetName()+"{"+strings.Join(ls, ",")+"}"] = v
		}
	}
	var want []string
	for _, svc := range []string{"a", "b"} {
		for _, r := range []string{ReasonResolve, ReasonConnect, ReasonTLSVerify, ReasonTLS} {
			want = append(want, "redistls_dial_errors_total{reason="+r+",service="+svc+"}")
		}
		for _, r := range []string{FailoverMoved, FailoverRole, FailoverReadOnly, FailoverDown} {
			want = append(want, "redistls_failovers_total{reason="+r+",service="+svc+"}")
		}
		for _, o := range []string{HoldReleased, HoldTimeout, HoldClientClosed} {
			want = append(want, "redistls_connections_held_total{outcome="+o+",service="+svc+"}")
		}
		want = append(want, "redistls_failover_closed_connections_total{service="+svc+"}",
			"redistls_bytes_total{direction=to_backend,service="+svc+"}", "redistls_bytes_total{direction=to_client,service="+svc+"}",
			"redistls_dials_total{service="+svc+"}", "redistls_connections_active{service="+svc+"}")
	}
	for _, w := range want {
		if v, ok := have[w]; !ok || v != 0 {
			t.Errorf("%s: present %v, value %v; want present at 0", w, ok, v)
		}
	}
}
