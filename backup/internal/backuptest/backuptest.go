// Package backuptest holds what the tests of backup's packages share: a
// bucket on the B2 stand-in, age keys, a scan of stored bytes for
// secrets, a quiet logger.
package backuptest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/fediops/fediops/backup/agezstd"
	"github.com/fediops/fediops/backup/b2store"
	"github.com/fediops/fediops/internal/b2fake"
)

// Bucket is the stand-in's bucket.
const Bucket = "fediops-backups"

// Quiet is a logger that writes nothing.
var Quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// Context is a context for one step of a test: 90 seconds.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// B2 starts a B2 stand-in and opens a store on it with the smallest parts
// (5 MB), so that a few MB already use the large-file API.
func B2(t testing.TB) (*b2fake.Server, *b2store.Store) {
	t.Helper()
	srv := b2fake.New()
	t.Cleanup(srv.Close)
	srv.CreateBucket(Bucket)
	st, err := b2store.Open(Context(t), b2store.Config{KeyID: srv.KeyID, Key: srv.Key, Bucket: Bucket,
		APIBase: srv.URL, ChunkSize: b2store.MinChunkSize})
	if err != nil {
		t.Fatal(err)
	}
	return srv, st
}

// Keys makes an age identity, and the Sealer and Unsealer for it.
func Keys(t testing.TB) (*age.X25519Identity, *agezstd.Sealer, *agezstd.Unsealer) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id, &agezstd.Sealer{Recipients: []age.Recipient{id.Recipient()}}, &agezstd.Unsealer{Identities: []age.Identity{id}}
}

// AssertNoPlaintext scans every stored byte and file info of the bucket
// for each secret.
func AssertNoPlaintext(t testing.TB, srv *b2fake.Server, secrets ...string) {
	t.Helper()
	files := srv.Files(Bucket)
	if len(files) == 0 {
		t.Fatal("nothing stored")
	}
	for _, f := range files {
		for _, s := range secrets {
			if bytes.Contains(f.Data, []byte(s)) || bytes.Contains([]byte(fmt.Sprint(f.Info)), []byte(s)) {
				t.Errorf("secret %q found in plaintext in stored object %s", s, f.Name)
			}
		}
	}
}

// Source is a backup.Source whose dump is Data.
type Source struct {
	SourceName, SourceKind string
	Data                   []byte
}

// Name is SourceName.
func (s Source) Name() string { return s.SourceName }

// Kind is SourceKind.
func (s Source) Kind() string { return s.SourceKind }

// Version is "bytes 1".
func (s Source) Version(context.Context) (string, error) { return "bytes 1", nil }

// Dump writes Data.
func (s Source) Dump(_ context.Context, w io.Writer) error {
	_, err := w.Write(s.Data)
	return err
}
