package redistls

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The data path. Once the backend's TLS handshake is done, a connection's
// two sockets leave the Go runtime's poller and join a level-triggered
// epoll set served by one goroutine for many connections (one loop per
// GOMAXPROCS, at most maxLoops), as HAProxy's and nginx's event loops do;
// stunnel runs a thread per connection, and a Go proxy usually a pair of
// goroutines:
//
//   - a request costs four syscalls (read the client, write the backend,
//     read the backend, write the client) and no goroutine wake-ups; with
//     edge-triggered polling each direction also needed a read that ends
//     in EAGAIN, or a FIN that came with the last data went unseen;
//   - an idle connection holds its two sockets, its tls.Conn and this
//     struct: no goroutine stacks and no buffers.
//
// Writes never wait: what a socket does not take is kept and the other
// side is not read until it is flushed. Other goroutines end a connection
// with shutdown(2), which the loop sees as a hang-up; only the loop closes
// descriptors, so a number reused by a new connection is never hit.

var (
	readOnly     = []byte("-READONLY ")
	crlfReadOnly = []byte("\r\n-READONLY ")
)

// errWouldBlock is what backendConn.Read returns instead of waiting. It is
// a temporary net.Error, which crypto/tls treats like a read deadline: the
// partial record stays buffered and the connection stays usable.
var errWouldBlock net.Error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "would block" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

// backendConn is the TCP connection under the backend's tls.Conn: the Go
// net.Conn during the handshake (and for health probes), the loop's
// non-blocking descriptor after detach.
type backendConn struct {
	net.Conn
	fd      int    // -1 until detach
	drained bool   // the last read found the socket empty; the loop clears it on readiness
	out     []byte // bytes the socket did not take yet
}

func (b *backendConn) Read(p []byte) (int, error) {
	if b.fd < 0 {
		return b.Conn.Read(p)
	}
	if b.drained {
		return 0, errWouldBlock
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := sysRead(b.fd, p)
	switch {
	case err == syscall.EAGAIN:
		b.drained = true
		return 0, errWouldBlock
	case err != nil:
		return 0, &net.OpError{Op: "read", Net: "tcp", Addr: b.RemoteAddr(), Err: os.NewSyscallError("read", err)}
	case n == 0:
		return 0, io.EOF
	}
	b.drained = n < len(p) // a short read emptied the socket; more data or a FIN re-arms the poll
	return n, nil
}

// Write takes every byte: what the socket refuses waits in out, flushed
// when the socket is writable (crypto/tls gives up on a connection after
// one failed write, so "would block" is not an answer here).
func (b *backendConn) Write(p []byte) (int, error) {
	if b.fd < 0 {
		return b.Conn.Write(p)
	}
	if len(b.out) > 0 {
		b.out = append(b.out, p...)
		return len(p), nil
	}
	n, err := sysWrite(b.fd, p)
	if err != nil && err != syscall.EAGAIN {
		return 0, &net.OpError{Op: "write", Net: "tcp", Addr: b.RemoteAddr(), Err: os.NewSyscallError("write", err)}
	}
	if n < len(p) {
		b.out = append(b.out, p[n:]...)
	}
	return len(p), nil
}

// Deadlines do not apply to the loop's descriptor (crypto/tls sets one
// around close_notify).
func (b *backendConn) SetDeadline(t time.Time) error { return b.deadline(b.Conn.SetDeadline, t) }
func (b *backendConn) SetReadDeadline(t time.Time) error {
	return b.deadline(b.Conn.SetReadDeadline, t)
}
func (b *backendConn) SetWriteDeadline(t time.Time) error {
	return b.deadline(b.Conn.SetWriteDeadline, t)
}

func (b *backendConn) deadline(set func(time.Time) error, t time.Time) error {
	if b.fd >= 0 {
		return nil
	}
	return set(t)
}

// flush writes out; true when nothing is left.
func flush(fd int, out *[]byte) (bool, error) {
	n, err := sysWrite(fd, *out)
	if err != nil && err != syscall.EAGAIN {
		return false, err
	}
	if n == len(*out) {
		*out = nil // give the memory back: most connections never need it again
		return true, nil
	}
	*out = (*out)[n:]
	return false, nil
}

// detach takes a connected socket out of the Go runtime's poller: it
// returns a close-on-exec duplicate (still non-blocking, the flag belongs to
// the shared file description) and closes the original.
func detach(nc net.Conn) (int, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1, errors.New("connection without SyscallConn")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	cerr := raw.Control(func(f uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, f, syscall.F_DUPFD_CLOEXEC, 0)
		if e != 0 {
			err = os.NewSyscallError("fcntl", e)
			return
		}
		fd = int(r)
	})
	if cerr != nil {
		err = cerr
	}
	nc.Close()
	return fd, err
}

// conn is one proxied client connection, pinned to one backend node.
// Fields without a comment on synchronisation belong to the loop.
type conn struct {
	s       *service
	node    string
	id      uint32
	cfd     int    // client socket
	cout    []byte // reply bytes the client socket did not take yet
	backend *tls.Conn
	bc      *backendConn
	cmask   uint32       // registered epoll interest of cfd
	bmask   uint32       // and of bc.fd
	eof     atomic.Bool  // the client finished sending
	pending atomic.Bool  // a command went out after the last reply came back
	last    atomic.Int64 // service clock at the last byte, for TIMEOUTidle
	closeBy atomic.Int64 // service clock by which a half-closed connection ends (TIMEOUTclose)
	closed  atomic.Bool  // closed by us (failover, drain, idle), not by a peer
	dead    bool         // the loop ends it after this event
	why     error        // the backend's error or EOF, for the log

	mu   sync.Mutex // orders close's shutdown(2) before the loop's close(2)
	gone bool
	once sync.Once
}

// close ends both sides; safe to call from any goroutine. The loop sees the
// hang-up and releases the connection.
func (c *conn) close() {
	c.once.Do(func() {
		c.closed.Store(true)
		c.mu.Lock()
		if !c.gone {
			syscall.Shutdown(c.cfd, syscall.SHUT_RDWR)
			syscall.Shutdown(c.bc.fd, syscall.SHUT_RDWR)
		}
		c.mu.Unlock()
	})
}

// event handles readiness of one side (backend or client) in the loop.
func (c *conn) event(l *loop, backendSide bool, ev uint32) {
	if c.closed.Load() {
		c.finish(l)
		return
	}
	// A hang-up is reported whatever the interest, so a side that is not
	// being read (its peer is full, or the client already sent its FIN)
	// ends the connection on one instead of spinning.
	if backendSide {
		if ev&evOut != 0 {
			c.flushBackend()
		}
		switch {
		case ev&evHup != 0 && len(c.cout) > 0:
			c.dead = true
		case ev&(evIn|evHup) != 0 && !c.dead:
			c.bc.drained = false
			c.fromBackend(l.buf)
		}
	} else {
		if ev&evOut != 0 && c.flushClient() {
			c.bc.drained = false // replies may wait inside the tls.Conn, not on the socket
			c.fromBackend(l.buf)
		}
		switch {
		case ev&evHup != 0 && (c.eof.Load() || len(c.bc.out) > 0):
			c.dead = true
		case ev&(evIn|evHup) != 0 && !c.dead && !c.eof.Load() && len(c.bc.out) == 0:
			c.fromClient(l.buf)
		}
	}
	if !c.dead {
		if err := c.interest(l); err != nil {
			c.dead, c.why = true, err
		}
	}
	if c.dead {
		c.finish(l)
	}
}

// fromClient forwards what the client sent to the backend.
func (c *conn) fromClient(buf []byte) {
	for {
		n, err := sysRead(c.cfd, buf)
		switch {
		case err == syscall.EAGAIN:
			return
		case err != nil:
			c.dead = true
			return
		case n == 0: // the client is done sending: tell the backend, let replies drain
			c.eof.Store(true)
			c.closeBy.Store(c.s.clock.Load() + int64(c.s.settings().svc.CloseTimeout/time.Second))
			c.backend.CloseWrite()
			return
		}
		c.pending.Store(true)
		if _, err := c.backend.Write(buf[:n]); err != nil {
			c.dead = true
			return
		}
		c.s.m.toBackend.Add(float64(n))
		c.last.Store(c.s.clock.Load())
		if n < len(buf) || len(c.bc.out) > 0 {
			return // drained (the poll reports more, or a FIN), or the backend is full
		}
	}
}

// fromBackend forwards what the backend sent, decrypted, to the client,
// until the socket is drained or the client stops taking bytes.
func (c *conn) fromBackend(buf []byte) {
	for len(c.cout) == 0 {
		n, err := c.backend.Read(buf)
		if n > 0 {
			b := buf[:n]
			if bytes.HasPrefix(b, readOnly) || bytes.Contains(b, crlfReadOnly) {
				c.s.suspect(c.node)
			}
			if !c.writeClient(b) {
				return
			}
			c.pending.Store(false)
			c.s.m.toClnt.Add(float64(n))
			c.last.Store(c.s.clock.Load())
		}
		if err == errWouldBlock {
			return
		}
		if err != nil {
			c.dead, c.why = true, err
			return
		}
	}
}

func (c *conn) writeClient(b []byte) bool {
	n, err := sysWrite(c.cfd, b)
	if err != nil && err != syscall.EAGAIN {
		c.dead = true
		return false
	}
	if n < len(b) {
		c.cout = append(c.cout, b[n:]...)
	}
	return true
}

func (c *conn) flushClient() bool {
	ok, err := flush(c.cfd, &c.cout)
	if err != nil {
		c.dead = true
	}
	return ok
}

func (c *conn) flushBackend() {
	if _, err := flush(c.bc.fd, &c.bc.out); err != nil {
		c.dead, c.why = true, err
	}
}

// interest registers what each side waits for: the client is read while
// the backend takes bytes, the backend while the client does.
func (c *conn) interest(l *loop) error {
	var cm, bm uint32
	if !c.eof.Load() && len(c.bc.out) == 0 {
		cm |= evIn
	}
	if len(c.cout) > 0 {
		cm |= evOut
	} else {
		bm |= evIn
	}
	if len(c.bc.out) > 0 {
		bm |= evOut
	}
	if cm != c.cmask {
		c.cmask = cm
		if err := l.ctl(ctlMod, c.cfd, cm, c.id, false); err != nil {
			return err
		}
	}
	if bm != c.bmask {
		c.bmask = bm
		return l.ctl(ctlMod, c.bc.fd, bm, c.id, true)
	}
	return nil
}

// finish releases the connection: descriptors, loop entry, tracking.
func (c *conn) finish(l *loop) {
	l.remove(c.id)
	c.mu.Lock()
	c.gone = true
	syscall.Close(c.cfd) // closing the last descriptor also leaves the epoll set
	syscall.Close(c.bc.fd)
	c.mu.Unlock()
	if !c.closed.Load() && !c.eof.Load() && c.why != nil {
		c.s.t.log.Debug("backend closed the connection", "service", c.s.name, "node", c.node, "err", c.why)
		c.s.kickMonitor() // the backend dropped us: check the node now
	}
	c.s.untrack(c)
}

// loop is the epoll set and the goroutine serving it.
type loop struct {
	epfd  int
	buf   []byte // the one read buffer: only the loop goroutine reads
	mu    sync.Mutex
	conns map[uint32]*conn
}

// connIDs numbers connections for the loop's events; never reused.
var connIDs atomic.Uint32

// add registers a tracked connection whose sockets are detached. The loop
// learns of it only once both sockets are in the set (until then it skips
// their events, which level-triggered polling reports again), so on an
// error the caller alone finishes it.
func (l *loop) add(c *conn) error {
	c.id = connIDs.Add(1)
	c.cmask, c.bmask = evIn, evIn
	err := l.ctl(ctlAdd, c.cfd, evIn, c.id, false)
	if err == nil {
		err = l.ctl(ctlAdd, c.bc.fd, evIn, c.id, true)
	}
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.conns[c.id] = c
	l.mu.Unlock()
	return nil
}

func (l *loop) remove(id uint32) {
	l.mu.Lock()
	delete(l.conns, id)
	l.mu.Unlock()
}
