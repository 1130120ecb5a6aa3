package backup_test

import (
	"context"
	"crypto/rand"
	"io"
	"testing"

	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/filestore"
	"github.com/fediops/fediops/backup/internal/backuptest"
)

// shortStore stores only the first n bytes it is given and reports
// success, as a store with a size cap that does not say so might.
type shortStore struct {
	backup.Store
	n int64
}

func (s shortStore) Put(ctx context.Context, name string, r io.Reader) (backup.ObjectInfo, error) {
	return s.Store.Put(ctx, name, io.LimitReader(r, s.n))
}

// A store that stops reading early fails the backup, and the truncated data
// object it kept must not stay behind.
func TestStoreReadingEarlyLeavesNothing(t *testing.T) {
	fs, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, sealer, _ := backuptest.Keys(t)
	p := &backup.Pipeline{Store: shortStore{fs, 1000}, Sealer: sealer, Logger: quiet}
	noise := make([]byte, 1<<20) // does not compress
	rand.Read(noise)
	src := memSource{name: "postgres", data: string(noise)}
	if _, err := p.Backup(ctxT(t), src); err == nil {
		t.Fatal("backup into a store that read 1000 bytes succeeded")
	}
	for o, err := range fs.List(context.Background(), "") {
		if err != nil {
			t.Fatal(err)
		}
		t.Errorf("left in the store: %s (%d bytes)", o.Name, o.Size)
	}
}
