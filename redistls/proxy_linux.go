//go:build linux

package redistls

import (
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

const (
	ctlAdd = syscall.EPOLL_CTL_ADD
	ctlMod = syscall.EPOLL_CTL_MOD
	evIn   = syscall.EPOLLIN
	evOut  = syscall.EPOLLOUT
	evHup  = syscall.EPOLLHUP | syscall.EPOLLERR
)

// sysRead and sysWrite are read(2) and send(2) on non-blocking sockets:
// they never wait, so they skip the runtime's syscall bookkeeping (which
// would also have the scheduler hand the loop's P to another thread).
// send's MSG_NOSIGNAL keeps a peer's reset from raising SIGPIPE.
func sysRead(fd int, p []byte) (int, error) {
	return sysRW(syscall.SYS_READ, fd, p, 0)
}

func sysWrite(fd int, p []byte) (int, error) {
	return sysRW(syscall.SYS_SENDTO, fd, p, syscall.MSG_NOSIGNAL)
}

func sysRW(trap uintptr, fd int, p []byte, flags uintptr) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, _, e := syscall.RawSyscall6(trap, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), flags, 0, 0)
		switch e {
		case 0:
			return int(n), nil
		case syscall.EINTR:
			continue
		}
		return 0, e
	}
}

var (
	loopOnce sync.Once
	loops    []*loop
	loopErr  error
)

// proxyLoop starts the loops on first use (one per GOMAXPROCS, at most
// maxLoops); they live as long as the process, like the runtime's own
// poller. Connections are spread over them by id.
func proxyLoop() (*loop, error) {
	loopOnce.Do(func() {
		for range min(runtime.GOMAXPROCS(0), maxLoops) {
			fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
			if err != nil {
				loopErr = os.NewSyscallError("epoll_create1", err)
				return
			}
			l := &loop{epfd: fd, buf: make([]byte, 16<<10), conns: map[uint32]*conn{}}
			loops = append(loops, l)
			go l.run()
		}
	})
	if loopErr != nil {
		return nil, loopErr
	}
	return loops[int(rr.Add(1))%len(loops)], nil
}

var rr atomic.Uint32

// maxLoops bounds the loops: one serves about 80k requests/s at -P 1 on
// a core of this machine, far beyond a Mastodon node's Redis traffic.
const maxLoops = 4

// ctl changes one descriptor's registration; the event carries the
// connection's id (never reused, so a late event for a finished connection
// finds nothing) and which side it is.
func (l *loop) ctl(op, fd int, mask, id uint32, backendSide bool) error {
	ev := syscall.EpollEvent{Events: mask, Fd: int32(id)}
	if backendSide {
		ev.Pad = 1
	}
	if err := syscall.EpollCtl(l.epfd, op, fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

func (l *loop) run() {
	events := make([]syscall.EpollEvent, 256)
	yielded := time.Now()
	for {
		n, err := syscall.EpollWait(l.epfd, events, -1)
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			panic("redistls: epoll_wait: " + err.Error()) // EBADF/EINVAL: nothing can be served any more
		}
		// The loop never parks, so the runtime would see one goroutine
		// running for ever: every 10 ms sysmon preempts it and takes its P
		// away during epoll_wait, and polls every 20 µs after each such
		// take (10% of the tunnel's CPU). A yield now and then avoids both.
		if now := time.Now(); now.Sub(yielded) > time.Millisecond {
			yielded = now
			runtime.Gosched()
		}
		for _, ev := range events[:n] {
			l.mu.Lock()
			c := l.conns[uint32(ev.Fd)]
			l.mu.Unlock()
			if c != nil {
				c.event(l, ev.Pad == 1, ev.Events)
			}
		}
	}
}

// peerClosed reports whether the peer of an accepted TCP connection has
// closed or reset it (TCP_INFO's state is no longer ESTABLISHED), without
// reading the bytes it sent.
func peerClosed(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	closed := false
	raw.Control(func(fd uintptr) {
		var info syscall.TCPInfo
		size := uint32(unsafe.Sizeof(info))
		_, _, e := syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_INFO,
			uintptr(unsafe.Pointer(&info)), uintptr(unsafe.Pointer(&size)), 0)
		closed = e == 0 && info.State != tcpEstablished
	})
	return closed
}

const tcpEstablished = 1 // TCP_ESTABLISHED in linux/tcp_states.h
