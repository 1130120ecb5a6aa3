package agezstd_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"hash"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/agezstd"
	"github.com/fediops/fediops/backup/filestore"
	"github.com/fediops/fediops/backup/internal/backuptest"
)

type genSource struct{ n int }

func (g genSource) Name() string                            { return "postgres" }
func (g genSource) Kind() string                            { return "postgres" }
func (g genSource) Version(context.Context) (string, error) { return "gen", nil }
func (g genSource) Dump(_ context.Context, w io.Writer) error {
	words := strings.Fields("the a fediverse toot boost follow instance server admin moderation timeline federation post reply mention hashtag media image video link preview account profile block mute report queue sidekiq redis postgres backup restore")
	r := rand.New(rand.NewSource(1))
	var b strings.Builder
	for b.Len() < 1<<20 {
		b.WriteString(words[r.Intn(len(words))])
		b.WriteByte(' ')
	}
	chunk := b.String()
	buf := make([]byte, 64<<10)
	for sent := 0; sent < g.n; {
		off := r.Intn(len(chunk) - len(buf))
		copy(buf, chunk[off:])
		k, err := w.Write(buf)
		sent += k
		if err != nil {
			return err
		}
	}
	return nil
}

type discardStore struct{ backup.Store }

func (discardStore) Put(ctx context.Context, name string, r io.Reader) (backup.ObjectInfo, error) {
	n, err := io.Copy(io.Discard, r)
	return backup.ObjectInfo{Name: name, Size: n}, err
}

// BenchmarkPipeline measures the pipeline alone (dump generator → zstd →
// age → sha256 → a store that discards) in bytes of dump per second.
func BenchmarkPipeline(b *testing.B) {
	id, _ := age.GenerateX25519Identity()
	workers, _ := strconv.Atoi(os.Getenv("FEDIOPS_ZSTD_WORKERS"))
	p := &backup.Pipeline{Store: discardStore{}, Logger: backuptest.Quiet, Now: func() time.Time { return time.Now() },
		Sealer: &agezstd.Sealer{Recipients: []age.Recipient{id.Recipient()}, Workers: workers}}
	const size = 64 << 20
	b.SetBytes(size)
	for b.Loop() {
		m, err := p.Backup(context.Background(), genSource{size})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(m.StoredBytes)/float64(m.DumpBytes), "stored/dump")
	}
}

// Parallel segments restore to the same bytes as the streaming encoder's.
func TestParallelZstdRoundTrip(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	for _, workers := range []int{1, 2, 3} {
		st, _ := filestore.New(t.TempDir())
		p := &backup.Pipeline{Store: st, Logger: backuptest.Quiet,
			Sealer: &agezstd.Sealer{Recipients: []age.Recipient{id.Recipient()}, Workers: workers}}
		const size = 9<<20 + 12345 // not a multiple of the segment size
		m, err := p.Backup(context.Background(), genSource{size})
		if err != nil {
			t.Fatal(err)
		}
		var got countingHash
		want := countingHash{}
		genSource{size}.Dump(context.Background(), &want)
		if _, err := backup.Restore(context.Background(), st, m, &agezstd.Unsealer{Identities: []age.Identity{id}}, &got); err != nil {
			t.Fatal(err)
		}
		if got.n != want.n || !bytes.Equal(got.sum(), want.sum()) || m.StoredBytes > m.DumpBytes/5 {
			t.Fatalf("workers %d: restored %d bytes (%x), want %d (%x); stored %d", workers, got.n, got.sum(), want.n, want.sum(), m.StoredBytes)
		}
	}
}

type countingHash struct {
	h hash.Hash
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	if c.h == nil {
		c.h = sha256.New()
	}
	c.n += int64(len(p))
	return c.h.Write(p)
}

func (c *countingHash) sum() []byte {
	if c.h == nil {
		return nil
	}
	return c.h.Sum(nil)
}

func (c *countingHash) Restore(_ context.Context, r io.Reader) error {
	_, err := io.Copy(c, r)
	return err
}

// A private key given as a recipient (directly, in a file, or in a line
// of several) is refused with the fix, and no error repeats any key.
func TestPrivateKeyAsRecipient(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	secret, public := id.String(), id.Recipient().String()
	file := filepath.Join(t.TempDir(), "recipients.txt")
	if err := os.WriteFile(file, []byte("# admins\n"+public+"\n"+secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		keys, files []string
		want        string
	}{
		{[]string{secret}, nil, "age recipient 1: this is a private key: put its public key (age-keygen -y) here"},
		{[]string{public, strings.ToLower(secret)}, nil, "age recipient 2: this is a private key"},
		{nil, []string{file}, "recipients.txt: line 3: this is a private key"},
		{[]string{"age1-not-really" + secret[20:30]}, nil, "age recipient 1: not an age public key (age1...)"},
	} {
		_, err := agezstd.ParseRecipients(c.keys, c.files)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseRecipients(%d keys, %d files): %v, want %q", len(c.keys), len(c.files), err, c.want)
		}
		if err != nil && (strings.Contains(err.Error(), secret[20:]) || strings.Contains(strings.ToUpper(err.Error()), secret[20:]) ||
			strings.Contains(err.Error(), public)) {
			t.Errorf("the error repeats a key: %v", err)
		}
		if c.want != "" && strings.Contains(c.want, "private") && !errors.Is(err, agezstd.ErrPrivateKey) {
			t.Errorf("not ErrPrivateKey: %v", err)
		}
	}
	if rs, err := agezstd.ParseRecipients([]string{public}, nil); err != nil || len(rs) != 1 {
		t.Errorf("a public key: %v", err)
	}
}
