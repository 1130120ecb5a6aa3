package backup

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// ErrLocked means another run holds the lock file.
var ErrLocked = errors.New("another run holds the lock")

// Lock takes an exclusive flock(2) on path (created 0600 if missing)
// without waiting, so that two cron or timer runs never overlap. The lock
// goes away with the process, even on SIGKILL. Call release when done.
func Lock(path string) (release func() error, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err) // *PathError names the file
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	_ = f.Truncate(0)
	fmt.Fprintf(f, "%d\n", os.Getpid())
	return func() error {
		defer f.Close()
		return syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	}, nil
}
