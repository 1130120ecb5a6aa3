package backup_test

import (
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/b2store"
	"github.com/fediops/fediops/internal/b2fake"
)

// bytesSource is a Source whose dump is a fixed byte string.
type bytesSource struct {
	name, kind string
	data       []byte
}

func (s bytesSource) Name() string                            { return s.name }
func (s bytesSource) Kind() string                            { return s.kind }
func (s bytesSource) Version(context.Context) (string, error) { return "bytes 1", nil }
func (s bytesSource) Dump(_ context.Context, w io.Writer) error {
	_, err := w.Write(s.data)
	return err
}

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
	id, recips := newKey(t)
	data := make([]byte, 12<<20) // random: three 5 MB ranged reads after compression
	rand.Read(data)
	copy(data, "REDIS0011")
	for _, status := range []int{503, 500} {
		for _, op := range []string{"restore", "check"} {
			srv := b2fake.New()
			srv.CreateBucket(bucket)
			st, err := b2store.Open(ctxT(t), b2store.Config{KeyID: srv.KeyID, Key: srv.Key, Bucket: bucket,
				APIBase: srv.URL, ChunkSize: b2store.MinChunkSize, RetryFor: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			p := &backup.Pipeline{Store: st, Prefix: "db/", Recipients: recips, Logger: quiet}
			m, err := p.Backup(ctxT(t), bytesSource{"redis", "redis", data})
			if err != nil {
				t.Fatal(err)
			}
			store := failingDownloads{st, srv, status}
			dir := t.TempDir()
			done := make(chan error, 1)
			t0 := time.Now()
			go func() {
				if op == "check" {
					done <- backup.Check(ctxT(t), store, m)
					return
				}
				_, err := backup.Restore(ctxT(t), store, m, []age.Identity{id}, &backup.RedisFileTarget{Path: filepath.Join(dir, "dump.rdb")})
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
