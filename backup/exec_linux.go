//go:build linux

package backup

import "syscall"

// dieWithParent has the kernel send the tool SIGTERM if this process dies
// first, so a killed run leaves no pg_dump behind.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
