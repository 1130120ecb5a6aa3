package redistls

import (
	"bytes"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"crypto/tls"
)

// Buffers are taken from the pool only while bytes flow: an idle
// connection parks both its goroutines in the poller holding none, which is
// what keeps it near 10 KB instead of the 64 KB of two io.Copy buffers.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// errWouldBlock is what backendConn.Read returns instead of waiting. It is
// a temporary net.Error, which crypto/tls treats like a read deadline: the
// partial record stays buffered and the connection stays usable.
var errWouldBlock net.Error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "redistls: would block" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

// backendConn is the TCP connection under the backend's tls.Conn. While fd
// is set (inside a RawConn.Read callback) it reads with non-blocking
// syscalls, so tls.Conn.Read returns whatever it can decrypt without
// waiting; otherwise (the handshake) it reads as usual.
type backendConn struct {
	net.Conn
	raw syscall.RawConn
	fd  int
}

func (b *backendConn) Read(p []byte) (int, error) {
	if b.fd < 0 {
		return b.Conn.Read(p)
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := readFD(b.fd, p)
	switch {
	case err == syscall.EAGAIN:
		return 0, errWouldBlock
	case err != nil:
		return 0, &net.OpError{Op: "read", Net: "tcp", Addr: b.RemoteAddr(), Err: os.NewSyscallError("read", err)}
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func readFD(fd int, p []byte) (int, error) {
	for {
		n, err := syscall.Read(fd, p)
		if err != syscall.EINTR {
			return max(n, 0), err
		}
	}
}

// conn is one proxied client connection, pinned to one backend node.
type conn struct {
	s       *service
	node    string
	client  net.Conn
	craw    syscall.RawConn
	backend *tls.Conn
	bc      *backendConn
	pending atomic.Bool  // a command went out after the last reply came back
	last    atomic.Int64 // service clock at the last byte, for TIMEOUTidle
	closed  atomic.Bool  // closed by us (failover, drain, idle), not by a peer
	eof     atomic.Bool  // the client finished sending
	left    atomic.Int32 // copy goroutines still running
	once    sync.Once
}

// close ends both sides at once; safe to call from any goroutine.
func (c *conn) close() {
	c.once.Do(func() {
		c.closed.Store(true)
		c.client.Close()
		c.bc.Conn.Close()
	})
}

// Both copy loops run inside one syscall.RawConn.Read callback for the
// life of the connection: they read with non-blocking syscalls into a
// pooled buffer until the socket says EAGAIN, give the buffer back, and
// park in the poller. (Parking after a short read, without the EAGAIN
// read, would save a syscall per message but miss a FIN that came with
// the last data, as Redis sends after QUIT or our close_notify.)

// upstream copies client -> backend.
func (c *conn) upstream() {
	defer c.done()
	var (
		buf *[]byte
		eof bool
	)
	read := func(fd uintptr) bool {
		for {
			if buf == nil {
				buf = bufPool.Get().(*[]byte)
			}
			n, rerr := readFD(int(fd), *buf)
			switch {
			case rerr == syscall.EAGAIN:
				bufPool.Put(buf)
				buf = nil
				return false
			case rerr != nil:
				return true
			case n == 0:
				eof = true
				return true
			}
			c.pending.Store(true)
			if _, err := c.backend.Write((*buf)[:n]); err != nil {
				return true
			}
			c.s.m.toBackend.Add(float64(n))
			c.last.Store(c.s.clock.Load())
		}
	}
	c.craw.Read(read)
	if buf != nil {
		bufPool.Put(buf)
	}
	if eof { // the client is done sending: tell the backend, let replies drain
		c.eof.Store(true)
		c.backend.CloseWrite()
		c.bc.SetReadDeadline(time.Now().Add(c.s.settings().svc.CloseTimeout))
		return
	}
	c.close()
}

// downstream copies backend -> client: tls.Conn.Read over backendConn
// returns errWouldBlock where it would wait.
func (c *conn) downstream() {
	defer c.done()
	var (
		buf        *[]byte
		err        error
		clientGone bool
	)
	read := func(fd uintptr) bool {
		c.bc.fd = int(fd)
		defer func() { c.bc.fd = -1 }()
		for {
			if buf == nil {
				buf = bufPool.Get().(*[]byte)
			}
			n, rerr := c.backend.Read(*buf)
			if n > 0 {
				b := (*buf)[:n]
				if bytes.HasPrefix(b, readOnly) || bytes.Contains(b, crlfReadOnly) {
					c.s.suspect(c.node)
				}
				if _, err = c.client.Write(b); err != nil {
					clientGone = true
					return true
				}
				c.pending.Store(false)
				c.s.m.toClnt.Add(float64(n))
				c.last.Store(c.s.clock.Load())
			}
			if rerr == errWouldBlock {
				bufPool.Put(buf)
				buf = nil
				return false
			}
			if rerr != nil {
				err = rerr
				return true
			}
		}
	}
	if rerr := c.bc.raw.Read(read); err == nil {
		err = rerr
	}
	if buf != nil {
		bufPool.Put(buf)
	}
	if !c.closed.Load() && !c.eof.Load() && !clientGone {
		c.s.t.log.Debug("redistls: backend closed the connection", "service", c.s.name, "node", c.node, "err", err)
		c.s.kickMonitor() // the backend dropped us: check the node now
	}
	c.close()
}

var (
	readOnly     = []byte("-READONLY ")
	crlfReadOnly = []byte("\r\n-READONLY ")
)

func (c *conn) done() {
	if c.left.Add(-1) == 0 {
		c.s.untrack(c)
	}
}
