package backup_test

import (
	"context"
	"io"
	"math/rand"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/fediops/fediops/backup"
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
	p := &backup.Pipeline{Store: discardStore{}, Recipients: []age.Recipient{id.Recipient()}, Logger: quiet,
		Now: func() time.Time { return time.Now() }}
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
