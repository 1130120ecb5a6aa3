package redistls

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fediops/fediops/internal/testenv"
	"github.com/prometheus/client_golang/prometheus/testutil"
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
	rec := &dialRecorder{}
	h := startTunnel(t, r, "", func(c *Config) { c.Dial = rec.Dial })
	c := h.client()
	defer c.Close()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a ROLE probe of the pinned node", func() bool { return rec.dials() >= 2 })
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
