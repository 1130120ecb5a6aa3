package tool

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"testing/iotest"
	"time"
)

// chunky returns at most 70 KB per Read, as a pipe does.
type chunky struct{ r io.Reader }

func (c chunky) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), 70_000)]) }

func TestCopyAhead(t *testing.T) {
	data := make([]byte, 9*aheadSize+12345)
	for i := range data {
		data[i] = byte(rand.IntN(256))
	}
	var out bytes.Buffer
	if err := copyAhead(&out, chunky{bytes.NewReader(data)}); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("copied %d of %d bytes, equal %v, err %v", out.Len(), len(data), bytes.Equal(out.Bytes(), data), err)
	}

	// The tool's stream breaks: the error comes back after the bytes before it.
	broken := errors.New("pipe broke")
	out.Reset()
	err := copyAhead(&out, io.MultiReader(bytes.NewReader(data[:3*aheadSize]), iotest.ErrReader(broken)))
	if !errors.Is(err, broken) || out.Len() != 3*aheadSize {
		t.Fatalf("read error: %v after %d bytes", err, out.Len())
	}

	// The compressor fails: copyAhead returns at once and its reader
	// goroutine does not stay behind, even with the tool still writing.
	before := runtime.NumGoroutine()
	full := errors.New("store failed")
	pr, pw := io.Pipe()
	go func() {
		for {
			if _, err := pw.Write(data[:aheadSize]); err != nil {
				return
			}
		}
	}()
	if err := copyAhead(failingWriter{full}, pr); !errors.Is(err, full) {
		t.Fatalf("write error: %v", err)
	}
	pr.Close() // what killing the tool does to its pipe
	for end := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > before; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%d goroutines left behind", runtime.NumGoroutine()-before)
		}
	}
}

type failingWriter struct{ err error }

func (f failingWriter) Write(p []byte) (int, error) { return 0, f.err }

// The dump tool runs under stdbuf with a 1 MiB output buffer (stdbuf says
// so in _STDBUF_O), into a pipe grown to 1 MiB.
func TestToolWritesBig(t *testing.T) {
	if _, err := exec.LookPath("stdbuf"); err != nil {
		t.Fatal("stdbuf (coreutils) not found")
	}
	var out bytes.Buffer
	err := Cmd{Bin: "/bin/sh", Args: []string{"-c", `printf '%s' "$_STDBUF_O"`}}.Run(context.Background(), nil, &out)
	if err != nil || out.String() != bigWrite {
		t.Fatalf("tool saw _STDBUF_O=%q (err %v), want %q", out.String(), err, bigWrite)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	growPipe(r)
	raw, _ := r.SyscallConn()
	var size uintptr
	raw.Control(func(fd uintptr) { size, _, _ = syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETPIPE_SZ, 0) })
	if size < 1<<20 {
		t.Errorf("pipe size %d after growPipe, want 1 MiB", size)
	}
}
