package mirror_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fediops/fediops/backup/b2store"
	"github.com/fediops/fediops/backup/mirror"
	"github.com/fediops/fediops/internal/b2fake"
	"github.com/fediops/fediops/internal/s3fake"
	"github.com/fediops/fediops/internal/testenv"
	"github.com/fediops/fediops/spaces"
)

// mirBenchObjects is the object count of BenchmarkMirrorVsRclone
// (FEDIOPS_MIRROR_BENCH_OBJECTS overrides it for a quicker look).
func mirBenchObjects() int {
	if n, err := strconv.Atoi(os.Getenv("FEDIOPS_MIRROR_BENCH_OBJECTS")); err == nil && n > 0 {
		return n
	}
	return 10_000
}

// mirBenchSize draws a media-like size: mostly 1–32 KB, some up to 256 KB,
// one in a hundred up to 2 MB.
func mirBenchSize(r *rand.Rand) int {
	switch p := r.IntN(100); {
	case p < 90:
		return 1024 + r.IntN(31*1024)
	case p < 99:
		return 32*1024 + r.IntN(224*1024)
	default:
		return 256*1024 + r.IntN(1792*1024)
	}
}

func mirBenchKey(i int) string {
	ext := []string{"png", "jpg", "webp", "mp4"}[i%4]
	return fmt.Sprintf("media_attachments/files/%03d/%03d/original/%08x.%s", i/1000, (i/100)%10, i*2654435761%(1<<32), ext)
}

// BenchmarkMirrorVsRclone mirrors the same Spaces stand-in (s3fake) to three
// buckets of the same B2 stand-in (b2fake) with Mirror, `rclone sync` with
// its defaults and `rclone sync` tuned: a first full copy of 10,000 objects
// (1 KB–2 MB, fixed seed), then an incremental pass after 1% changed and
// 0.5% deleted. Run it with -benchtime 1x; it prints times and ratios.
func BenchmarkMirrorVsRclone(b *testing.B) {
	rclone := testenv.Binary(b, "rclone")
	n := mirBenchObjects()
	for range b.N {
		mirBenchOnce(b, rclone, n)
	}
}

func mirBenchOnce(b *testing.B, rclone string, n int) {
	ctx := context.Background()
	s3 := s3fake.New(b)
	if err := s3.CreateBucket("media"); err != nil {
		b.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	src, err := spaces.New(&spaces.Config{Bucket: "media", Region: "nyc3", Endpoint: s3.URL, PathStyle: true,
		AccessKeyID: "AKIDFAKE", SecretAccessKey: "fake-secret", HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		b.Fatal(err)
	}
	b2 := b2fake.New()
	defer b2.Close()
	v1, stop := b2.V1()
	defer stop()
	for _, name := range []string{"fediops", "rclone-default", "rclone-tuned"} {
		b2.CreateBucket(name)
	}

	r := rand.New(rand.NewPCG(2026, 11))
	sizes := make([]int, n)
	var total int64
	for i := range sizes {
		sizes[i] = mirBenchSize(r)
		total += int64(sizes[i])
	}
	put := func(keys []int, seed uint64) {
		var wg sync.WaitGroup
		ch := make(chan int)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range ch {
					rr := rand.New(rand.NewPCG(uint64(i), seed))
					data := make([]byte, sizes[i])
					for j := 0; j < len(data); j += 8 {
						v := rr.Uint64()
						for k := 0; k < 8 && j+k < len(data); k++ {
							data[j+k] = byte(v >> (8 * k))
						}
					}
					if _, err := src.Put(ctx, mirBenchKey(i), bytes.NewReader(data), nil); err != nil {
						b.Error(err)
					}
				}
			}()
		}
		for _, i := range keys {
			ch <- i
		}
		close(ch)
		wg.Wait()
	}
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	t0 := time.Now()
	put(all, 1)
	b.Logf("source: %d objects, %.1f MiB, written in %s", n, float64(total)/(1<<20), time.Since(t0).Round(time.Millisecond))

	fediops := func() (time.Duration, mirror.Report) {
		m, err := mirror.New(mirror.Config{Source: src, SourceName: "spaces:media", Workers: 16,
			B2:     b2store.Config{KeyID: b2.KeyID, Key: b2.Key, Bucket: "fediops", APIBase: b2.URL},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		rep, err := m.Run(ctx)
		if err != nil {
			b.Fatalf("mirror: %v\n%s", err, mirror.Details(rep))
		}
		return time.Since(start), rep
	}
	rcl := func(bucket string, args ...string) time.Duration {
		args = append(append([]string{"sync"}, args...), "src:media", "dst:"+bucket)
		cmd := exec.Command(rclone, args...)
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "RCLONE_") {
				env = append(env, kv)
			}
		}
		cmd.Env = append(env, "RCLONE_CONFIG=/dev/null",
			"RCLONE_CONFIG_SRC_TYPE=s3", "RCLONE_CONFIG_SRC_PROVIDER=Other", "RCLONE_CONFIG_SRC_ENDPOINT="+s3.URL,
			"RCLONE_CONFIG_SRC_REGION=nyc3", "RCLONE_CONFIG_SRC_ACCESS_KEY_ID=AKIDFAKE",
			"RCLONE_CONFIG_SRC_SECRET_ACCESS_KEY=fake-secret", "RCLONE_CONFIG_SRC_FORCE_PATH_STYLE=true",
			"RCLONE_CONFIG_DST_TYPE=b2", "RCLONE_CONFIG_DST_ACCOUNT="+b2.KeyID, "RCLONE_CONFIG_DST_KEY="+b2.Key,
			"RCLONE_CONFIG_DST_ENDPOINT="+v1)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("rclone %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if d := os.Getenv("FEDIOPS_MIRROR_BENCH_RCLONE_LOG"); d != "" {
			os.WriteFile(fmt.Sprintf("%s/%s-%d.log", d, bucket, time.Now().UnixNano()), out, 0o644)
		}
		return time.Since(start)
	}
	if os.Getenv("FEDIOPS_MIRROR_BENCH_RCLONE_LOG") != "" {
		rcl0 := rcl
		rcl = func(bucket string, args ...string) time.Duration {
			return rcl0(bucket, append(args, append([]string{"-vv"}, strings.Fields(os.Getenv("FEDIOPS_MIRROR_BENCH_RCLONE_ARGS"))...)...)...)
		}
	}
	tuned := []string{"--transfers", "16", "--checkers", "32", "--fast-list", "--b2-hard-delete"}

	type row struct {
		pass                string
		ours, rdef, rtuned  time.Duration
		copied, deleted, un int
	}
	var rows []row
	pass := func(name string) {
		// The stand-ins live in this process: collect the garbage they made
		// serving the previous run, so that no run pays for another's.
		runtime.GC()
		ours, rep := fediops()
		runtime.GC()
		rd := rcl("rclone-default")
		runtime.GC()
		rt := rcl("rclone-tuned", tuned...)
		rows = append(rows, row{name, ours, rd, rt, rep.Copied, rep.Deleted, rep.Unchanged})
		b.Logf("%-13s fediops %7.2fs (copied %d, deleted %d, old versions %d) | rclone defaults %7.2fs (%.1fx) | rclone tuned %7.2fs (%.1fx)",
			name, ours.Seconds(), rep.Copied, rep.Deleted, rep.StaleVersions, rd.Seconds(), rd.Seconds()/ours.Seconds(),
			rt.Seconds(), rt.Seconds()/ours.Seconds())
	}
	pass("full copy")

	// Three incremental rounds, each after 1% changed and 0.5% deleted (of
	// the original count), to see through the noise of a shared machine.
	alive := append([]int(nil), all...)
	for round := 1; round <= mirBenchRounds(); round++ {
		perm := r.Perm(len(alive))
		var changed, deleted []int
		for _, p := range perm[:n/100] {
			changed = append(changed, alive[p])
		}
		gone := map[int]bool{}
		for _, p := range perm[n/100 : n/100+n/200] {
			deleted = append(deleted, alive[p])
			gone[alive[p]] = true
		}
		for _, i := range changed[:len(changed)/2] {
			sizes[i] = mirBenchSize(r) // half change size, half only content
		}
		put(changed, uint64(1+round))
		var dkeys []string
		for _, i := range deleted {
			dkeys = append(dkeys, mirBenchKey(i))
		}
		if err := src.Delete(ctx, dkeys...); err != nil {
			b.Fatal(err)
		}
		keep := alive[:0]
		for _, i := range alive {
			if !gone[i] {
				keep = append(keep, i)
			}
		}
		alive = keep
		pass(fmt.Sprintf("incremental %d", round))
	}
	pass("no change")

	// Every copy must match the source.
	want := map[string]int{}
	for o, err := range src.Objects(ctx, "") {
		if err != nil {
			b.Fatal(err)
		}
		want[o.Key] = int(o.Size)
	}
	for _, bucket := range []string{"fediops", "rclone-default", "rclone-tuned"} {
		got, hidden := 0, 0
		for _, f := range b2.Files(bucket) {
			if strings.HasPrefix(f.Name, ".fediops-mirror/") {
				continue
			}
			if f.Hidden {
				hidden++
				continue
			}
			got++
			if want[f.Name] != len(f.Data) {
				b.Errorf("%s: %s has %d bytes, source %d", bucket, f.Name, len(f.Data), want[f.Name])
			}
		}
		if got != len(want) {
			b.Errorf("%s: %d visible files, source has %d", bucket, got, len(want))
		}
		b.Logf("%s: %d files match the source (%d hidden names left)", bucket, got, hidden)
	}
	var inc []row
	for _, x := range rows {
		if strings.HasPrefix(x.pass, "incremental") {
			inc = append(inc, x)
			continue
		}
		key := strings.ReplaceAll(x.pass, " ", "-")
		b.ReportMetric(x.ours.Seconds(), key+"-fediops-s")
		b.ReportMetric(x.rdef.Seconds()/x.ours.Seconds(), key+"-rclone-default/fediops")
		b.ReportMetric(x.rtuned.Seconds()/x.ours.Seconds(), key+"-rclone-tuned/fediops")
	}
	median := func(f func(row) float64) float64 {
		v := make([]float64, len(inc))
		for i, x := range inc {
			v[i] = f(x)
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	b.ReportMetric(median(func(x row) float64 { return x.ours.Seconds() }), "incremental-median-fediops-s")
	b.ReportMetric(median(func(x row) float64 { return x.rdef.Seconds() / x.ours.Seconds() }), "incremental-median-rclone-default/fediops")
	b.ReportMetric(median(func(x row) float64 { return x.rtuned.Seconds() / x.ours.Seconds() }), "incremental-median-rclone-tuned/fediops")
	b.Logf("incremental, median of %d rounds: rclone defaults %.1fx, rclone tuned %.1fx", len(inc),
		median(func(x row) float64 { return x.rdef.Seconds() / x.ours.Seconds() }),
		median(func(x row) float64 { return x.rtuned.Seconds() / x.ours.Seconds() }))
}

// mirBenchRounds is the number of incremental rounds (FEDIOPS_MIRROR_BENCH_ROUNDS, default 3).
func mirBenchRounds() int {
	if n, err := strconv.Atoi(os.Getenv("FEDIOPS_MIRROR_BENCH_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return 3
}
