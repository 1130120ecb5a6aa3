package e2e

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/agezstd"
	"github.com/fediops/fediops/backup/b2store"
)

// bkRDBSource is a Source whose dump is a fixed RDB-looking byte string.
type bkRDBSource struct{}

func (bkRDBSource) Name() string                            { return "redis" }
func (bkRDBSource) Kind() string                            { return "redis" }
func (bkRDBSource) Version(context.Context) (string, error) { return "test 1", nil }
func (bkRDBSource) Dump(_ context.Context, w io.Writer) error {
	_, err := io.WriteString(w, "REDIS0011"+strings.Repeat("x", 100_000))
	return err
}

// `backup restore` against a B2 that answers every download with 503 exits
// 1 within B2_RETRY_FOR (plus blazer's backoff), naming the cause, and
// writes nothing; blazer alone retried for ever.
func TestCommandRestoreEndsWhenB2FailsDownloads(t *testing.T) {
	srv, env := bkBucket(t)
	id, idf := bkKeyFile(t)
	dir := t.TempDir()
	ctx := context.Background()
	st, err := b2store.Open(ctx, b2store.Config{KeyID: srv.KeyID, Key: srv.Key, Bucket: "fediops-backups", APIBase: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	p := &backup.Pipeline{Store: st, Prefix: "db/", Sealer: &agezstd.Sealer{Recipients: []age.Recipient{id.Recipient()}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if _, err := p.Backup(ctx, bkRDBSource{}); err != nil {
		t.Fatal(err)
	}
	env = append(env, "B2_RETRY_FOR=2s")
	out := filepath.Join(dir, "restored.rdb")
	args := []string{"restore", "-env", "", "-source", "redis", "-to-file", out, "-identity", idf}
	if r := bkRun(t, env, args...); r.code != 0 {
		t.Fatalf("restore: exit %d, %s", r.code, r.stderr)
	}
	os.Remove(out)
	srv.FailNext("b2_download_file_by_name", 1_000_000, 503)
	r := bkRun(t, env, args...)
	if r.code != 1 || !strings.Contains(r.stderr, "no usable answer from B2 for 2s") || r.wall > 30*time.Second {
		t.Fatalf("restore while B2 answers 503: exit %d after %s, %s", r.code, r.wall, r.stderr)
	}
	if strings.Contains(r.stderr, srv.Key) {
		t.Error("key in the error output")
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed restore left its target file")
	}
	if bad := bkRun(t, append(env, "B2_RETRY_FOR=soon"), args...); bad.code != 2 || !strings.Contains(bad.stderr, "B2_RETRY_FOR") {
		t.Errorf("B2_RETRY_FOR=soon: exit %d, %s", bad.code, bad.stderr)
	}
	t.Logf("restore while B2 answers 503: exit %d after %s: %s", r.code, r.wall.Round(time.Millisecond), strings.TrimSpace(r.stderr))
}
