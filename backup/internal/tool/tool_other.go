//go:build !linux

package tool

import (
	"os"
	"syscall"
)

// dieWithParent: only Linux has a parent-death signal; elsewhere a killed
// run's tool ends when it next writes to the closed pipe.
func dieWithParent() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }

// growPipe: pipe sizes are fixed outside Linux.
func growPipe(*os.File) {}
