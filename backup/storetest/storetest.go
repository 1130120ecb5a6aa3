// Package storetest checks a backup.Store against the contract the
// pipeline relies on: call Run from a test of your Store (backup/b2store
// and backup/filestore do), as restic's backends share one test suite.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops/backup"
)

// Run checks the Store that open returns (a new, empty one per call):
// Put, Open, Stat, List and Delete, objects of the sizes around common
// part sizes, odd names, Put's all-or-nothing when its reader fails or its
// context ends, ErrNotExist, and errors that do not repeat the object's
// name. A store that implements backup.Canceler must have nothing left to
// cancel after a failed Put.
func Run(t *testing.T, open func(t *testing.T) backup.Store) {
	t.Run("RoundTrip", func(t *testing.T) { roundTrip(t, open(t)) })
	t.Run("ReplaceListDelete", func(t *testing.T) { replaceListDelete(t, open(t)) })
	t.Run("Missing", func(t *testing.T) { missing(t, open(t)) })
	t.Run("FailedPutLeavesNothing", func(t *testing.T) { failedPut(t, open(t)) })
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// stream hides everything but Read, as the pipeline's io.Pipe does.
type stream struct{ r io.Reader }

func (s stream) Read(p []byte) (int, error) { return s.r.Read(p) }

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func put(t *testing.T, ctx context.Context, st backup.Store, name string, data []byte) {
	t.Helper()
	info, err := st.Put(ctx, name, stream{bytes.NewReader(data)})
	if err != nil {
		t.Fatalf("Put %s (%d bytes): %v", name, len(data), err)
	}
	if info.Name != name || info.Size != int64(len(data)) {
		t.Fatalf("Put %s (%d bytes) returned %+v", name, len(data), info)
	}
}

func read(t *testing.T, ctx context.Context, st backup.Store, name string) []byte {
	t.Helper()
	rc, err := st.Open(ctx, name)
	if err != nil {
		t.Fatalf("Open %s: %v", name, err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return got
}

func list(t *testing.T, ctx context.Context, st backup.Store, prefix string) []backup.ObjectInfo {
	t.Helper()
	var out []backup.ObjectInfo
	for o, err := range st.List(ctx, prefix) {
		if err != nil {
			t.Fatalf("List %q: %v", prefix, err)
		}
		out = append(out, o)
	}
	return out
}

// roundTrip stores objects of sizes around the usual part sizes (B2's
// 5 MB minimum, 1 MiB buffers) and odd names, and reads them back.
func roundTrip(t *testing.T, st backup.Store) {
	ctx := ctxFor(t)
	sizes := []int{0, 1, 1 << 20, 5_000_000 - 1, 5_000_000, 5_000_000 + 1, 10_000_000, 12_345_678}
	objects := map[string][]byte{}
	for i, n := range sizes {
		objects[fmt.Sprintf("rt/sizes/%02d", i)] = random(n)
	}
	objects["rt/odd/ä ö/café 1.png"] = []byte("odd name")
	objects["rt/odd/semi;colon,plus+quote'"] = []byte("odder name")
	for name, data := range objects {
		put(t, ctx, st, name, data)
	}
	for name, data := range objects {
		if got := read(t, ctx, st, name); !bytes.Equal(got, data) {
			t.Errorf("%s: read %d bytes back, stored %d (equal %v)", name, len(got), len(data), bytes.Equal(got, data))
		}
		info, err := st.Stat(ctx, name)
		if err != nil || info.Size != int64(len(data)) || info.Modified.IsZero() {
			t.Errorf("Stat %s: %+v, %v; want size %d and a time", name, info, err, len(data))
		}
	}
	if got := list(t, ctx, st, "rt/"); len(got) != len(objects) {
		t.Errorf("List rt/: %d objects, stored %d", len(got), len(objects))
	}
}

// replaceListDelete checks that Put replaces, List filters by prefix and
// keeps name order, and Delete removes (a missing object included).
func replaceListDelete(t *testing.T, st backup.Store) {
	ctx := ctxFor(t)
	for _, name := range []string{"db/b/2", "db/a/1", "db/a/2", "dbx/1", "other/1"} {
		put(t, ctx, st, name, []byte("first "+name))
	}
	put(t, ctx, st, "db/a/1", []byte("second"))
	if got := read(t, ctx, st, "db/a/1"); string(got) != "second" {
		t.Errorf("after a second Put: %q", got)
	}
	var names []string
	for _, o := range list(t, ctx, st, "db/") {
		names = append(names, o.Name)
		if o.Name == "db/a/1" && o.Size != int64(len("second")) {
			t.Errorf("List: db/a/1 has size %d after the second Put", o.Size)
		}
	}
	if strings.Join(names, ",") != "db/a/1,db/a/2,db/b/2" {
		t.Errorf("List db/: %v, want db/a/1, db/a/2, db/b/2 in that order", names)
	}
	if got := list(t, ctx, st, "db/a/"); len(got) != 2 {
		t.Errorf("List db/a/: %v", got)
	}
	for _, name := range []string{"db/a/1", "db/a/1", "db/never"} {
		if err := st.Delete(ctx, name); err != nil {
			t.Errorf("Delete %s: %v", name, err)
		}
	}
	if _, err := st.Stat(ctx, "db/a/1"); !errors.Is(err, backup.ErrNotExist) {
		t.Errorf("Stat after Delete: %v, want ErrNotExist", err)
	}
	if got := list(t, ctx, st, "db/"); len(got) != 2 {
		t.Errorf("List db/ after Delete: %v", got)
	}
}

// missing checks ErrNotExist, and that the error leaves naming the object
// to the caller.
func missing(t *testing.T, st backup.Store) {
	ctx := ctxFor(t)
	const name = "db/postgres/20261126T000000Z.pgdump.zst.age"
	_, err := st.Open(ctx, name)
	if !errors.Is(err, backup.ErrNotExist) {
		t.Errorf("Open of a missing object: %v, want ErrNotExist", err)
	} else if strings.Contains(err.Error(), name) {
		t.Errorf("Open's error %q names the object: its caller does", err)
	}
	_, err = st.Stat(ctx, name)
	if !errors.Is(err, backup.ErrNotExist) {
		t.Errorf("Stat of a missing object: %v, want ErrNotExist", err)
	} else if strings.Contains(err.Error(), name) {
		t.Errorf("Stat's error %q names the object: its caller does", err)
	}
	if got := list(t, ctx, st, "db/"); len(got) != 0 {
		t.Errorf("an empty store lists %v", got)
	}
}

// failing yields n bytes, then fails.
type failing struct {
	r   io.Reader
	err error
}

func (f *failing) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

// cancelling cancels its context once n bytes were read.
type cancelling struct {
	r      io.Reader
	left   int
	cancel context.CancelFunc
}

func (c *cancelling) Read(p []byte) (int, error) {
	if c.left <= 0 && c.cancel != nil {
		c.cancel()
		c.cancel = nil
	}
	if c.left > 0 {
		p = p[:min(len(p), c.left)]
	}
	n, err := c.r.Read(p)
	c.left -= n
	return n, err
}

// failedPut checks all or nothing: a Put whose reader fails or whose
// context ends lists nothing, returns the reader's error (errors.Is), and
// leaves nothing for CancelUnfinished.
func failedPut(t *testing.T, st backup.Store) {
	ctx := ctxFor(t)
	dumpDied := errors.New("pg_dump: connection lost")
	for _, n := range []int{0, 1000, 7_000_000, 12_000_000} {
		name := fmt.Sprintf("fail/%d", n)
		_, err := st.Put(ctx, name, &failing{r: bytes.NewReader(random(n)), err: dumpDied})
		if !errors.Is(err, dumpDied) {
			t.Errorf("Put of a reader failing after %d bytes: %v, want the reader's error", n, err)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	if _, err := st.Put(cctx, "fail/cancelled", &cancelling{r: bytes.NewReader(random(12_000_000)), left: 6_000_000, cancel: cancel}); err == nil {
		t.Error("Put whose context ended half-way succeeded")
	}
	cancel()
	if got := list(t, ctx, st, "fail/"); len(got) != 0 {
		t.Errorf("failed Puts listed: %v", got)
	}
	if c, ok := st.(backup.Canceler); ok {
		if n, err := c.CancelUnfinished(ctx, "fail/"); n != 0 || err != nil {
			t.Errorf("failed Puts left %d unfinished uploads (%v)", n, err)
		}
	}
}
