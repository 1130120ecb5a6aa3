package redistls

import (
	"context"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func processCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestShutdownDuringDial: when Shutdown's ctx ends while a client's backend
// dial is still under way (a backend that does not answer), Shutdown
// returns at once instead of waiting out TIMEOUTconnect, and it does not
// spin while it waits.
func TestShutdownDuringDial(t *testing.T) {
	conf := "[r]\nclient = yes\naccept = 127.0.0.1:0\nconnect = redis.fediops.test:25061\nTIMEOUTconnect = 3\n"
	cfg, err := ParseConfig("t.conf", strings.NewReader(conf))
	if err != nil {
		t.Fatal(err)
	}
	dialing := make(chan struct{}, 1)
	cfg.Resolve = func(context.Context, string) ([]string, error) { return []string{"127.0.0.1:1"}, nil }
	cfg.Dial = func(ctx context.Context, _, _ string) (net.Conn, error) {
		dialing <- struct{}{}
		<-ctx.Done() // a backend that never answers the SYN
		return nil, ctx.Err()
	}
	cfg.Registerer = prometheus.NewRegistry()
	tun, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := tun.Start(); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", tun.Addr("r").String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case <-dialing:
	case <-time.After(5 * time.Second):
		t.Fatal("the tunnel did not dial the backend")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	cpu0, start := processCPU(t), time.Now()
	tun.Shutdown(ctx)
	wall, cpu := time.Since(start), processCPU(t)-cpu0
	if wall > time.Second {
		t.Errorf("Shutdown took %v with a dial pending; want it to end soon after its ctx (100 ms), not after TIMEOUTconnect (3 s)", wall)
	}
	if cpu > wall/2+50*time.Millisecond {
		t.Errorf("Shutdown used %v of CPU in %v: it spins while it waits", cpu, wall)
	}
}
