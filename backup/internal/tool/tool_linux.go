//go:build linux

package tool

import (
	"os"
	"syscall"
)

// dieWithParent has the kernel send the tool SIGTERM if this process dies
// first, so a killed run leaves no pg_dump behind.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}

// growPipe asks for a 1 MiB pipe (Linux's default /proc/sys/fs/pipe-max-size)
// so that the tool's 1 MiB writes go through in one piece; the pipe keeps
// its size when the kernel says no.
func growPipe(f *os.File) {
	if raw, err := f.SyscallConn(); err == nil { // not f.Fd(), which makes reads blocking
		raw.Control(func(fd uintptr) { syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_SETPIPE_SZ, 1<<20) })
	}
}
