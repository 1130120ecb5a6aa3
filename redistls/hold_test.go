package redistls

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fediops/fediops/internal/testenv"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
)

// The hold's outcomes, one by one, with a name that moves only when the
// test says (an injected resolver; TestFailover moves a real name).

// rawClient dials the tunnel and sends AUTH plus cmd without waiting.
func rawClient(t *testing.T, h *harness, cmd string) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.Dial("tcp", h.addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	fmt.Fprintf(nc, "AUTH %s\r\n%s\r\n", h.redisPassword(), cmd)
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	return nc, bufio.NewReader(nc)
}

// roleReply reads +OK (AUTH) and ROLE's first element.
func roleReply(br *bufio.Reader) (string, error) {
	var lines []string
	for range 4 { // +OK, *N, $len, role
		l, err := br.ReadString('\n')
		if err != nil {
			return strings.Join(lines, ""), err
		}
		lines = append(lines, l)
	}
	if lines[0] != "+OK\r\n" {
		return strings.Join(lines, ""), fmt.Errorf("AUTH: %q", lines[0])
	}
	return strings.TrimSpace(lines[3]), nil
}

func (s *service) isHeld(node string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.held[node]
	return ok
}

// TestHold: the primary is demoted and the name does not move. A client
// that leaves while waiting is let go (client_closed); connections that
// wait TIMEOUTconnect in vain go where the name points, with one warning
// (timeout); a waiting connection reaches the new primary as soon as the
// name moves (released).
func TestHold(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	primary, replica := testenv.NewRedis(t), testenv.NewRedis(t)
	if err := replica.ReplicaOf(ctx, primary); err != nil {
		t.Fatal(err)
	}
	// No periodic probe: the monitor runs when a reply carries -READONLY,
	// so nothing else closes the connections this test opens.
	h := startTunnel(t, primary, "TIMEOUTconnect = 1\n", func(c *Config) { c.ProbeInterval = time.Hour })
	held := func(o string) float64 { return testutil.ToFloat64(h.tun.m.held.WithLabelValues("redis-client", o)) }
	s := h.tun.services["redis-client"]
	c := redis.NewClient(&redis.Options{Addr: h.addr(), Password: primary.Password, MaxRetries: -1}) // its -READONLY is not retried
	defer c.Close()
	if err := c.Set(ctx, "hold", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := replica.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	if err := primary.ReplicaOf(ctx, replica); err != nil {
		t.Fatal(err)
	}
	c.Set(ctx, "hold", "2", 0) // -READONLY: the monitor judges the node
	waitFor(t, "the demoted node to be held", func() bool { return s.isHeld(primary.Addr()) })

	nc, _ := rawClient(t, h, "ROLE")
	time.Sleep(50 * time.Millisecond)
	nc.Close()
	waitFor(t, "the waiting client that left to be let go", func() bool { return held(HoldClientClosed) == 1 })

	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			_, br := rawClient(t, h, "ROLE")
			role, err := roleReply(br)
			if took := time.Since(start); err != nil || role != "slave" || took < 900*time.Millisecond {
				t.Errorf("connection %d waiting in vain: ROLE %q, %v after %v; want the demoted node's (slave) after TIMEOUTconnect (1 s)", i, role, err, took)
			}
		}()
	}
	wg.Wait()
	if n, warned := held(HoldTimeout), strings.Count(h.logs(), "still resolves to a node that is no longer the primary"); n != 2 || warned != 1 {
		t.Errorf("timeouts: %v (want 2), warnings %d (want 1)\n%s", n, warned, h.logs())
	}

	_, br := rawClient(t, h, "ROLE")
	time.Sleep(200 * time.Millisecond)
	h.res.set(replica.Addr())
	moved := time.Now()
	role, err := roleReply(br)
	// The name polled every 20 ms: a few ms on a quiet machine. A wait
	// that missed the move would end at TIMEOUTconnect on the demoted node.
	took := time.Since(moved)
	t.Logf("the waiting connection was served %v after the move", took)
	if err != nil || role != "master" || took > time.Second {
		t.Errorf("the connection waiting while the name moved: ROLE %q, %v, %v after the move; want master within 1 s", role, err, took)
	}
	if n := held(HoldReleased); n != 1 {
		t.Errorf("released: %v, want 1", n)
	}
}

// TestHoldUntilTheNodeIsBack: the primary dies and comes back on the same
// address with no failover (a restart): connections made meanwhile wait
// and are served once a probe sees it answer as the primary, instead of
// being refused.
func TestHoldUntilTheNodeIsBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := testenv.NewRedis(t)
	h := startTunnel(t, r, "", nil)
	s := h.tun.services["redis-client"]
	c := h.client()
	defer c.Close()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a probe to see the primary", func() bool { return s.wasPrimary(r.Addr()) })
	r.Kill()
	waitFor(t, "the dead node to be held", func() bool { return s.isHeld(r.Addr()) })
	_, br := rawClient(t, h, "ROLE")
	time.Sleep(300 * time.Millisecond)
	back, err := testenv.Shared(t).StartRedisAt(ctx, r.Host, r.Port)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Stop()
	if role, err := roleReply(br); err != nil || role != "master" {
		t.Errorf("the connection made while the node was down: ROLE %q, %v; want master once it is back", role, err)
	}
	if n := testutil.ToFloat64(h.tun.m.held.WithLabelValues("redis-client", HoldReleased)); n != 1 {
		t.Errorf("released: %v, want 1", n)
	}
	if n := testutil.ToFloat64(h.tun.m.failovers.WithLabelValues("redis-client", FailoverDown)); n != 1 {
		t.Errorf("failovers{down}: %v, want 1", n)
	}
}

// TestReadOnlyEndpointLeftAlone: a name that points at a replica the
// tunnel never saw as the primary (a read-only endpoint) is no failover:
// its connections stay open and new ones do not wait.
func TestReadOnlyEndpointLeftAlone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	primary, replica := testenv.NewRedis(t), testenv.NewRedis(t)
	if err := replica.ReplicaOf(ctx, primary); err != nil {
		t.Fatal(err)
	}
	h := startTunnel(t, replica, "", nil)
	c := h.client()
	defer c.Close()
	for range 5 {
		if err := c.Get(ctx, "absent").Err(); err != redis.Nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // a probe interval
	}
	events := 0.0
	for _, r := range failoverReasons {
		events += testutil.ToFloat64(h.tun.m.failovers.WithLabelValues("redis-client", r))
	}
	dials := testutil.ToFloat64(h.tun.m.dials.WithLabelValues("redis-client"))
	closed := testutil.ToFloat64(h.tun.m.closed.WithLabelValues("redis-client"))
	if dials != 1 || closed != 0 || events != 0 {
		t.Errorf("reads from a replica endpoint: %v dials (want 1), %v connections closed, %v failover events (want 0)", dials, closed, events)
	}
}
