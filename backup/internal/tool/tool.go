// Package tool runs the dump and restore programs of backup's sources and
// targets (pg_dump, pg_restore, redis-cli, mysqldump, mariadb): secrets in
// the environment only, stderr's tail in errors, the program ended with its
// parent, and its output read ahead in big blocks.
package tool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Cmd is a dump or restore program to run. Secrets travel only in Env
// (never Args, which every user can read in /proc); stderr is kept (its
// tail goes into errors) but never logged whole.
type Cmd struct {
	Bin  string
	Args []string
	Env  []string // KEY=value added to the environment, secrets included
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

func (t Cmd) command(ctx context.Context) (*exec.Cmd, *tailBuffer) {
	cmd := exec.CommandContext(ctx, t.Bin, t.Args...)
	cmd.Env = append(os.Environ(), t.Env...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	cmd.SysProcAttr = dieWithParent()
	stderr := &tailBuffer{max: 2048}
	cmd.Stderr = stderr
	return cmd, stderr
}

// Run streams the program's stdout into w (when w is not nil) and its stdin
// from r (when r is not nil). Its error names the program and, when it
// failed, its exit status and the last 2 KiB of its stderr.
func (t Cmd) Run(ctx context.Context, r io.Reader, w io.Writer) error {
	cmd, stderr := t.command(ctx)
	cmd.Stdin = r
	var out io.ReadCloser
	if w != nil {
		bigWrites(cmd)
		var err error
		if out, err = cmd.StdoutPipe(); err != nil {
			return err
		}
		growPipe(out.(*os.File))
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", base(t.Bin), err)
	}
	var copyErr error
	if out != nil {
		copyErr = copyAhead(w, out)
		if copyErr != nil {
			_ = cmd.Process.Kill() // the consumer failed: the tool must not go on
		}
	}
	err := cmd.Wait()
	if copyErr != nil {
		return fmt.Errorf("%s: stream: %w", base(t.Bin), copyErr)
	}
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", base(t.Bin), ctx.Err())
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			name := base(t.Bin)
			return fmt.Errorf("%s: %v: %s", name, ee.ProcessState, strings.TrimPrefix(stderr.String(), name+": "))
		}
		return fmt.Errorf("%s: %w", base(t.Bin), err)
	}
	return nil
}

// Version runs the program with Args (e.g. --version) and returns the
// first line it printed.
func (t Cmd) Version(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, t.Bin, t.Args...).Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", base(t.Bin), strings.Join(t.Args, " "), err)
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line, nil
}

func base(bin string) string {
	if i := strings.LastIndexByte(bin, '/'); i >= 0 {
		return bin[i+1:]
	}
	return bin
}

// Version finds the program (path, else name from PATH, as Find) and
// returns the first line of its --version.
func Version(ctx context.Context, path, name string) (string, error) {
	bin, err := Find(path, name)
	if err != nil {
		return "", err
	}
	return Cmd{Bin: bin, Args: []string{"--version"}}.Version(ctx)
}

// Find returns path when it is set, else the program name from PATH. A
// program that is missing is an error wrapping exec.ErrNotFound that says
// which Debian package has it.
func Find(path, name string) (string, error) {
	if path != "" {
		return path, nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s: %w (Debian: apt-get install %s)", name, exec.ErrNotFound, debianPackage[name])
	}
	return p, nil
}

// LastLines is the last n lines of s, joined with " | ".
func LastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], " | ")
}

var debianPackage = map[string]string{
	"pg_dump": "postgresql-client", "pg_restore": "postgresql-client", "psql": "postgresql-client",
	"redis-cli": "redis-tools", "redis-check-rdb": "redis-tools", "mysqldump": "mariadb-client", "mariadb": "mariadb-client",
}

// Dump tools write their output through stdio, which sizes its buffer by
// the pipe's st_blksize: pg_dump makes 300,000 writes of 4 KiB for a 1.2 GB
// dump, each waking the reader. Run under coreutils' stdbuf (when present)
// with a 1 MiB buffer and a 1 MiB pipe, it makes about 1,200, and the
// backup takes 10-20% less time (BENCHMARKS.md). stdbuf execs the tool, so
// signals and the exit status are the tool's own.
const bigWrite = "1048576" // bytes; stdbuf passes it on in _STDBUF_O as given

func bigWrites(cmd *exec.Cmd) {
	stdbuf, err := exec.LookPath("stdbuf")
	if err != nil {
		return
	}
	cmd.Args = append([]string{stdbuf, "-o", bigWrite}, cmd.Args...)
	cmd.Path = stdbuf
}

// A dump tool may run this far ahead of the compressor: with only the
// pipe's 64 KiB between them, pg_dump (and PostgreSQL behind it) stood
// still while a block was compressed, and the two ran one after the other.
const (
	aheadBufs = 4
	aheadSize = 1 << 20
)

// copyAhead copies r to w, reading on its own goroutine into up to
// aheadBufs buffers while w works on the ones before.
func copyAhead(w io.Writer, r io.Reader) error {
	free, full := make(chan []byte, aheadBufs), make(chan []byte, aheadBufs)
	done := make(chan struct{})
	defer close(done)
	for range aheadBufs {
		free <- make([]byte, aheadSize)
	}
	var rerr error
	go func() {
		defer close(full)
		for {
			var b []byte
			select {
			case b = <-free:
			case <-done:
				return
			}
			n, err := io.ReadFull(r, b)
			if n > 0 {
				select {
				case full <- b[:n]:
				case <-done:
					return
				}
			}
			if err != nil {
				if err != io.EOF && err != io.ErrUnexpectedEOF {
					rerr = err
				}
				return
			}
		}
	}()
	for b := range full {
		if _, err := w.Write(b); err != nil {
			return err
		}
		free <- b[:cap(b)]
	}
	return rerr
}
