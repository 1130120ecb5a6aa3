package b2store_test

import (
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/b2store"
	"github.com/fediops/fediops/backup/internal/backuptest"
	"github.com/fediops/fediops/backup/rdb"
	"github.com/fediops/fediops/internal/b2fake"
)

// failingDownloads is a store whose B2 answers every download with status
// from the moment an object has been opened (its Stat passed): B2 going
// away in the middle of a restore.
type failingDownloads struct {
	backup.Store
	srv    *b2fake.Server
	status int
}

func (f failingDownloads) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	rc, err := f.Store.Open(ctx, name)
	f.srv.FailNext("b2_download_file_by_name", 1_000_000, f.status)
	return rc, err
}

// Restore and Check fail with the cause after b2store's RetryFor when B2
// answers every download with 500/503; blazer alone retried for ever and
// the restore hung. Nothing is left at the restore target.
func TestRestoreAndCheckEndWhenB2FailsDownloads(t *testing.T) {
	_, sealer, unsealer := backuptest.Keys(t)
	data := make([]byte, 12<<20) // random: three 5 MB ranged reads after compression
	rand.Read(data)
	copy(data, "REDIS0011")
	for _, status := range []int{503, 500} {
		for _, op := range []string{"restore", "check"} {
			srv := b2fake.New()
			srv.CreateBucket(backuptest.Bucket)
			st, err := b2store.Open(backuptest.Context(t), b2store.Config{KeyID: srv.KeyID, Key: srv.Key, Bucket: backuptest.Bucket,
				APIBase: srv.URL, ChunkSize: b2store.MinChunkSize, RetryFor: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			p := &backup.Pipeline{Store: st, Prefix: "db/", Sealer: sealer, Logger: backuptest.Quiet}
			m, err := p.Backup(backuptest.Context(t), backuptest.Source{SourceName: "redis", SourceKind: "redis", Data: data})
			if err != nil {
				t.Fatal(err)
			}
			store := failingDownloads{st, srv, status}
			dir := t.TempDir()
			done := make(chan error, 1)
			t0 := time.Now()
			go func() {
				if op == "check" {
					done <- backup.Check(backuptest.Context(t), store, m)
					return
				}
				_, err := backup.Restore(backuptest.Context(t), store, m, unsealer, &rdb.FileTarget{Path: filepath.Join(dir, "dump.rdb")})
				done <- err
			}()
			select {
			case err = <-done:
			case <-time.After(40 * time.Second):
				t.Fatalf("%s still waiting 40 s after B2 began answering %d to downloads", op, status)
			}
			srv.Close()
			if err == nil || !strings.Contains(err.Error(), "no usable answer from B2") || !strings.Contains(err.Error(), m.Object) {
				t.Fatalf("%s while B2 answers %d: %v", op, status, err)
			}
			if strings.Contains(err.Error(), srv.Key) {
				t.Errorf("key in the error: %v", err)
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Errorf("%s left %s behind", op, left[0].Name())
			}
			t.Logf("%s while B2 answers %d: %s: %v", op, status, time.Since(t0).Round(time.Millisecond), err)
		}
	}
}
