//go:build !linux

package redistls

import (
	"errors"
	"net"
)

// The data path is an epoll loop (proxy_linux.go). Elsewhere the package
// builds, so that ParseConfig, ClientOptionsFromEnv and DropOnReadOnly (and the
// packages that use them) work on an admin's laptop, but Start refuses.
var errNoEpoll = errors.New("the tunnel runs on Linux only (its data path is an epoll loop); ParseConfig, ClientOptionsFromEnv and DropOnReadOnly work everywhere")

const (
	evIn = 1 << iota
	evOut
	evHup
	ctlAdd
	ctlMod
)

func proxyLoop() (*loop, error) { return nil, errNoEpoll }

func (l *loop) ctl(op, fd int, mask, id uint32, backendSide bool) error { return errNoEpoll }

func sysRead(fd int, p []byte) (int, error)  { return 0, errNoEpoll }
func sysWrite(fd int, p []byte) (int, error) { return 0, errNoEpoll }

func peerClosed(c net.Conn) bool { return false }
