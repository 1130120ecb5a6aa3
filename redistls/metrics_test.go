package redistls

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fediops/fediops/internal/testenv"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
)

// dialRecorder is a Config.Dial that counts the tunnel's backend dials
// (client connections, probes and health checks alike) and keeps the
// first bytes each sent: the TLS ClientHello, which names the SNI.
type dialRecorder struct {
	mu     sync.Mutex
	hellos []string
}

func (d *dialRecorder) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	i := len(d.hellos)
	d.hellos = append(d.hellos, "")
	d.mu.Unlock()
	return &helloConn{TCPConn: c.(*net.TCPConn), d: d, i: i}, nil
}

func (d *dialRecorder) dials() int { d.mu.Lock(); defer d.mu.Unlock(); return len(d.hellos) }

// sentSNI reports whether a dial from the from'th on sent name in its hello.
func (d *dialRecorder) sentSNI(from int, name string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, h := range d.hellos[min(from, len(d.hellos)):] {
		if strings.Contains(h, name) {
			return true
		}
	}
	return false
}

// helloConn records its first write; it keeps SyscallConn, which the
// tunnel needs, through the embedded *net.TCPConn.
type helloConn struct {
	*net.TCPConn
	d    *dialRecorder
	i    int
	once sync.Once
}

func (c *helloConn) Write(p []byte) (int, error) {
	c.once.Do(func() {
		c.d.mu.Lock()
		c.d.hellos[c.i] = string(p)
		c.d.mu.Unlock()
	})
	return c.TCPConn.Write(p)
}

// TestDialMetricsCountClientsOnly: the monitor's probes and the health
// check dial the backend too, but redistls_dials_total and
// redistls_dial_errors_total count client connections only, so a failing
// health check does not show as failing clients.
func TestDialMetricsCountClientsOnly(t *testing.T) {
	r := testenv.RedisTLS(t)
	ctx := context.Background()
	h, rec, c := pinnedTunnel(t, r)
	defer c.Close()
	for range 3 {
		if err := h.tun.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := testutil.ToFloat64(h.tun.m.dials.WithLabelValues("redis-client")); n != 1 || rec.dials() < 5 {
		t.Errorf("1 client connection, a probe and 3 health checks made %d dials; dials_total = %v, want 1", rec.dials(), n)
	}

	// The certificate does not match: health checks fail, then one client
	// connection fails.
	bad := startTunnel(t, r, "checkHost = redis.example.org\n", nil)
	for range 3 {
		if err := bad.tun.Check(ctx); err == nil {
			t.Fatal("Check passed with a certificate that does not match checkHost")
		}
	}
	dialErrors := func() (n float64) {
		for _, r := range dialErrorReasons {
			n += testutil.ToFloat64(bad.tun.m.dialErrors.WithLabelValues("redis-client", r))
		}
		return n
	}
	if n, e := testutil.ToFloat64(bad.tun.m.dials.WithLabelValues("redis-client")), dialErrors(); n != 0 || e != 0 {
		t.Errorf("after 3 failed health checks and no client: dials_total = %v, dial_errors_total = %v; want 0 and 0", n, e)
	}
	nc, err := net.Dial("tcp", bad.addr())
	if err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.ReadAll(nc) // the tunnel closes the client once its dial failed
	nc.Close()
	if n, e := testutil.ToFloat64(bad.tun.m.dials.WithLabelValues("redis-client")), testutil.ToFloat64(bad.tun.m.dialErrors.WithLabelValues("redis-client", ReasonTLSVerify)); n != 1 || e != 1 || dialErrors() != 1 {
		t.Errorf("after one failed client connection: dials_total = %v, dial_errors_total{reason=tls_verify} = %v (all reasons %v); want 1, 1, 1", n, e, dialErrors())
	}
}

// seriesOf lists the redistls_ series labelled service=svc.
func seriesOf(t *testing.T, reg prometheus.Gatherer, svc string) []string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "service" && l.GetValue() == svc && strings.HasPrefix(mf.GetName(), "redistls_") {
					out = append(out, mf.GetName())
				}
			}
		}
	}
	return out
}

// TestRemovedServiceMetricsDeleted: a service removed by Reload loses its
// series once it has drained, and only then; a service removed and added
// back while its old connections drain keeps them.
func TestRemovedServiceMetricsDeleted(t *testing.T) {
	r := testenv.RedisTLS(t)
	ctx := context.Background()
	h := startTunnel(t, r, "", nil)
	parse := func(second bool) *Config {
		extra := ""
		if second {
			extra = "[second]\nclient = yes\naccept = 127.0.0.1:0\nconnect = other.fediops.test:25061\nCAfile = " + r.CAFile + "\n"
		}
		cfg, err := ParseConfig("test.conf", strings.NewReader(fmt.Sprintf(testConf, r.CAFile, extra)))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	reload := func(second bool) {
		t.Helper()
		if err := h.tun.Reload(parse(second)); err != nil {
			t.Fatal(err)
		}
	}
	client := func() *redis.Client {
		return redis.NewClient(&redis.Options{Addr: h.tun.Addr("second").String(), Password: r.Password, Protocol: 2, DisableIdentity: true})
	}
	gone := func() bool { return len(seriesOf(t, h.reg, "second")) == 0 }
	// active, dials, closed connections, bytes both ways and every reason and outcome
	perService := 5 + len(dialErrorReasons) + len(failoverReasons) + len(holdOutcomes)

	reload(true)
	c := client()
	if err := c.Set(ctx, "metrics:removed", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n := len(seriesOf(t, h.reg, "second")); n != perService {
		t.Fatalf("service second has %d series, want %d: %v", n, perService, seriesOf(t, h.reg, "second"))
	}
	reload(false) // its idle connection closes at once
	waitFor(t, "the removed service's series to go", gone)
	c.Close()
	if n := len(seriesOf(t, h.reg, "redis-client")); n != perService {
		t.Errorf("the remaining service has %d series, want %d", n, perService)
	}

	// Removed while a BLPOP drains for 1 s, and added back at once: the
	// old instance's end must not delete the new one's series.
	reload(true)
	c = client()
	defer c.Close()
	res := make(chan error, 1)
	go func() { res <- c.BLPop(ctx, time.Second, "metrics:empty").Err() }()
	time.Sleep(100 * time.Millisecond)
	reload(false)
	reload(true)
	if err := <-res; err != redis.Nil {
		t.Fatalf("BLPOP while its service drained: %v, want its reply (redis.Nil)", err)
	}
	time.Sleep(300 * time.Millisecond)
	if gone() {
		t.Fatal("the series of a service added back were deleted when its old instance finished draining")
	}

	// Removed while a BLPOP drains, added back and removed again: the
	// series stay until the last instance is done.
	c2 := client()
	defer c2.Close()
	go func() { res <- c2.BLPop(ctx, time.Second, "metrics:empty").Err() }()
	time.Sleep(100 * time.Millisecond)
	reload(false)
	reload(true)
	reload(false) // this instance has no connection: it is done at once
	time.Sleep(300 * time.Millisecond)
	if gone() {
		t.Fatal("the series were deleted while a removed instance still drained a connection")
	}
	if err := <-res; err != redis.Nil {
		t.Fatalf("BLPOP while its service drained: %v, want its reply (redis.Nil)", err)
	}
	waitFor(t, "the series to go once the last instance drained", gone)
}

// pinnedTunnel starts a tunnel whose dials are recorded, pins one client
// to the backend and waits for the monitor's first probe of that node.
func pinnedTunnel(t *testing.T, r *testenv.Redis) (*harness, *dialRecorder, *redis.Client) {
	t.Helper()
	rec := &dialRecorder{}
	h := startTunnel(t, r, "", func(c *Config) { c.Dial = rec.Dial })
	c := h.client()
	if err := c.Ping(context.Background()).Err(); err != nil {
		c.Close()
		t.Fatal(err)
	}
	waitFor(t, "a ROLE probe of the pinned node", func() bool { return rec.dials() >= 2 })
	return h, rec, c
}
