package redistls

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fediops/fediops/internal/testenv"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A client that stops reading makes the loop keep what its socket refused
// and pause the backend; nothing is lost or reordered when it reads again.
func TestSlowClient(t *testing.T) {
	r := testenv.RedisTLS(t)
	h := startTunnel(t, r, "", nil)
	nc, err := net.Dial("tcp", h.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	val := strings.Repeat("slow client ", 700_000) // 8.4 MB: far more than the socket buffers
	const gets = 4
	var cmd bytes.Buffer
	fmt.Fprintf(&cmd, "AUTH %s\r\n*3\r\n$3\r\nSET\r\n$4\r\nslow\r\n$%d\r\n%s\r\n", r.Password, len(val), val)
	for range gets {
		cmd.WriteString("*2\r\n$3\r\nGET\r\n$4\r\nslow\r\n")
	}
	go nc.Write(cmd.Bytes())
	time.Sleep(time.Second) // the replies (34 MB) pile up in the tunnel
	nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(nc)
	for _, want := range []string{"+OK\r\n", "+OK\r\n"} {
		if l, err := br.ReadString('\n'); l != want {
			t.Fatalf("reply %q, %v; want %q", l, err, want)
		}
	}
	for i := range gets {
		if l, err := br.ReadString('\n'); l != fmt.Sprintf("$%d\r\n", len(val)) {
			t.Fatalf("GET %d header %q, %v", i, l, err)
		}
		got := make([]byte, len(val)+2)
		if _, err := io.ReadFull(br, got); err != nil || string(got[:len(val)]) != val {
			t.Fatalf("GET %d: value differs (err %v)", i, err)
		}
	}
}

// Idle connections cost no goroutines, and a client that sends its last
// command and its FIN together is still seen to leave.
func TestIdleConnectionsHoldNoGoroutines(t *testing.T) {
	r := testenv.RedisTLS(t)
	h := startTunnel(t, r, "", nil)
	active := func() float64 { return testutil.ToFloat64(h.tun.m.active.WithLabelValues("redis-client")) }
	before := runtime.NumGoroutine()
	cs := openIdleT(t, h.tun.Addr("redis-client").(*net.TCPAddr).Port, r.Password, 300)
	if n := active(); n != 300 {
		t.Fatalf("active connections = %v, want 300", n)
	}
	if d := runtime.NumGoroutine() - before; d > 20 {
		t.Errorf("300 idle connections added %d goroutines", d)
	}
	for _, c := range cs {
		c.Write([]byte("PING\r\n")) // command and FIN in one go, reply never read
		c.Close()
	}
	waitFor(t, "active connections back to 0", func() bool { return active() == 0 })
}

// Writing to a socket that can no longer send (a client that reset, or
// one a failover shut down under the loop) fails with EPIPE and raises no
// SIGPIPE, which a program using redistls may well watch for.
func TestWriteRaisesNoSIGPIPE(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fds[0])
	defer syscall.Close(fds[1])
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGPIPE)
	defer signal.Stop(sig)
	syscall.Shutdown(fds[0], syscall.SHUT_WR)
	if _, err := sysWrite(fds[0], []byte("PING\r\n")); err != syscall.EPIPE {
		t.Fatalf("write after shutdown: %v, want EPIPE", err)
	}
	select {
	case <-sig:
		t.Fatal("the write raised SIGPIPE")
	case <-time.After(100 * time.Millisecond):
	}
}
