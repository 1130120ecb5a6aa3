package promfile_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fediops/fediops/internal/promfile"
)

// BenchmarkTextfile writes a backup run's metrics (4 sources) beside the
// anchor, client_golang's own prometheus.WriteToTextfile (temp file and
// rename, no fsync). promfile also fsyncs the file and its directory.
func BenchmarkTextfile(b *testing.B) {
	runs, _ := promfile.NewRuns("backup")
	for i, s := range []string{"postgres", "redis", "mysql", "media"} {
		runs.Observe(promfile.Result{Source: s, Start: t0, Duration: time.Duration(i) * time.Second, Bytes: 1 << 20, Objects: 1})
	}
	dir := b.TempDir()
	b.Run("promfile.WriteFile", func(b *testing.B) {
		for b.Loop() {
			mfs, err := runs.Gatherer().Gather()
			if err != nil {
				b.Fatal(err)
			}
			if err := promfile.WriteFile(filepath.Join(dir, "a.prom"), mfs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("prometheus.WriteToTextfile", func(b *testing.B) {
		for b.Loop() {
			if err := prometheus.WriteToTextfile(filepath.Join(dir, "b.prom"), runs.Gatherer()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Runs.Write(read back, merge, write)", func(b *testing.B) {
		cfg := promfile.Config{Dir: dir}
		for b.Loop() {
			if err := runs.Write(b.Context(), cfg); err != nil {
				b.Fatal(err)
			}
		}
	})
}
