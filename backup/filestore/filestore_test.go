package filestore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/filestore"
	"github.com/fediops/fediops/backup/storetest"
)

type failing struct{ n int }

func (f *failing) Read(p []byte) (int, error) {
	if f.n > 0 {
		f.n--
		return copy(p, "data"), nil
	}
	return 0, errors.New("dump died")
}

func TestPutIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := filestore.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(ctx, "db/pg/x", &failing{n: 3}); err == nil {
		t.Fatal("Put of a failing reader succeeded")
	}
	for o, err := range st.List(ctx, "") {
		t.Fatalf("listed after a failed Put: %v %v", o, err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "db", "pg"))
	if len(entries) != 0 {
		t.Fatalf("files left: %v", entries)
	}
	// a partial file left by a killed process is not listed, and is removed
	os.WriteFile(filepath.Join(dir, "db", "pg", ".y.partial-123"), []byte("half"), 0o600)
	if _, err := st.Put(ctx, "db/pg/y", strings.NewReader("whole")); err != nil {
		t.Fatal(err)
	}
	var names []string
	for o, err := range st.List(ctx, "db/") {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, o.Name)
	}
	if fmt.Sprint(names) != "[db/pg/y]" {
		t.Fatalf("list: %v", names)
	}
	if n, err := st.CancelUnfinished(ctx, "db/pg/"); n != 1 || err != nil {
		t.Fatalf("CancelUnfinished: %d %v", n, err)
	}
	if _, err := st.Open(ctx, "db/pg/nope"); !errors.Is(err, backup.ErrNotExist) {
		t.Fatalf("Open missing: %v", err)
	}
	if _, err := st.Put(ctx, "../escape", strings.NewReader("x")); err == nil {
		t.Fatal("a name outside the directory was accepted")
	}
}

// Store objects in a local directory, as a second copy beside B2.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "filestore")
	defer os.RemoveAll(dir)
	st, _ := filestore.New(dir)
	st.Put(ctx, "db/postgres/20261126T000000Z.manifest.json", strings.NewReader(`{"format":1}`))
	for o, err := range st.List(ctx, "db/") {
		fmt.Println(o.Name, o.Size, err)
	}
	rc, _ := st.Open(ctx, "db/postgres/20261126T000000Z.manifest.json")
	data, _ := io.ReadAll(rc)
	rc.Close()
	fmt.Println(string(data))
	// Output:
	// db/postgres/20261126T000000Z.manifest.json 12 <nil>
	// {"format":1}
}

// The directory store meets backup.Store's contract.
func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) backup.Store {
		st, err := filestore.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}
