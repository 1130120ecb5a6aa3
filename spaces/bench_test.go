package spaces

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops/internal/s3fake"
	"github.com/fediops/fediops/internal/testenv"
)

// rclone runs rclone against the fake with a remote named "fake".
func rclone(b *testing.B, srv *s3fake.Server, args ...string) time.Duration {
	b.Helper()
	cmd := exec.Command(testenv.Binary(b, "rclone"), args...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") { // AWS_CA_BUNDLE and the like change rclone's client
			env = append(env, kv)
		}
	}
	cmd.Env = append(env,
		"RCLONE_CONFIG_FAKE_TYPE=s3", "RCLONE_CONFIG_FAKE_PROVIDER=Other",
		"RCLONE_CONFIG_FAKE_ENDPOINT="+srv.URL, "RCLONE_CONFIG_FAKE_REGION=nyc3",
		"RCLONE_CONFIG_FAKE_ACCESS_KEY_ID=AKIDFAKE", "RCLONE_CONFIG_FAKE_SECRET_ACCESS_KEY=fake-secret",
		"RCLONE_CONFIG_FAKE_FORCE_PATH_STYLE=true", "RCLONE_CONFIG=/dev/null")
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("rclone %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return time.Since(start)
}

// BenchmarkUploadVsRclone uploads the same 96 MiB file in 15 MiB parts with
// Put and with `rclone copyto`, to the same in-process S3 server.
func BenchmarkUploadVsRclone(b *testing.B) {
	srv, cfg := newFakeB(b)
	cfg.MultipartThreshold = DefaultMultipartThreshold
	c, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "big.bin")
	data := make([]byte, 96<<20)
	_, _ = rand.Read(data)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		b.Fatal(err)
	}
	data = nil
	var ours, theirs time.Duration
	for i := 0; b.Loop(); i++ {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if _, err := c.Put(b.Context(), fmt.Sprintf("go-%d.bin", i), f, nil); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(start)
		f.Close()
		theirs += rclone(b, srv, "copyto", "--s3-chunk-size", "15M", "--s3-upload-cutoff", "15M",
			"--s3-upload-concurrency", "2", path, fmt.Sprintf("fake:media/rclone-%d.bin", i))
	}
	report(b, ours, theirs, 96)
}

// BenchmarkListVsRclone lists 3000 objects with Objects and with `rclone lsf`.
func BenchmarkListVsRclone(b *testing.B) {
	srv, cfg := newFakeB(b)
	c, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	const n = 3000
	for i := range n {
		if _, err := c.Put(b.Context(), fmt.Sprintf("m/%05d", i), strings.NewReader("x"), nil); err != nil {
			b.Fatal(err)
		}
	}
	var ours, theirs time.Duration
	for b.Loop() {
		start := time.Now()
		count := 0
		for _, err := range c.Objects(b.Context(), "") {
			if err != nil {
				b.Fatal(err)
			}
			count++
		}
		if count != n {
			b.Fatalf("listed %d", count)
		}
		ours += time.Since(start)
		theirs += rclone(b, srv, "lsf", "-R", "--files-only", "fake:media")
	}
	report(b, ours, theirs, 0)
}

func report(b *testing.B, ours, theirs time.Duration, mib float64) {
	n := float64(b.N)
	b.ReportMetric(ours.Seconds()/n, "spaces-s/op")
	b.ReportMetric(theirs.Seconds()/n, "rclone-s/op")
	b.ReportMetric(theirs.Seconds()/ours.Seconds(), "rclone/spaces")
	if mib > 0 {
		b.ReportMetric(mib*n/ours.Seconds(), "spaces-MiB/s")
		b.ReportMetric(mib*n/theirs.Seconds(), "rclone-MiB/s")
	}
}

func newFakeB(b *testing.B, opts ...s3fake.Option) (*s3fake.Server, *Config) {
	srv := s3fake.New(b, append([]s3fake.Option{s3fake.Strict()}, opts...)...)
	if err := srv.CreateBucket("media"); err != nil {
		b.Fatal(err)
	}
	return srv, &Config{Bucket: "media", Region: "nyc3", Endpoint: srv.URL, PathStyle: true,
		AccessKeyID: "AKIDFAKE", SecretAccessKey: "fake-secret", Permission: DefaultPermission}
}

// BenchmarkDeleteBatchVsSingle deletes the same 1,207 keys with Delete from
// the strict (Spaces) fake, which takes its DeleteObjects batches since they
// carry Content-MD5, and from a fake that refuses DeleteObjects, where Delete
// falls back to one DeleteObject per key: what it did against Spaces before.
func BenchmarkDeleteBatchVsSingle(b *testing.B) {
	const n = 1207
	batchSrv, batchCfg := newFakeB(b)
	singleSrv, singleCfg := newFakeB(b, s3fake.NoBatchDelete())
	batch, err := New(batchCfg)
	if err != nil {
		b.Fatal(err)
	}
	single, err := New(singleCfg)
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("m/%05d", i)
	}
	del := func(c *Client, srv *s3fake.Server) (time.Duration, int) {
		for _, k := range keys {
			if _, err := c.Put(b.Context(), k, strings.NewReader("x"), nil); err != nil {
				b.Fatal(err)
			}
		}
		before := len(srv.Requests())
		start := time.Now()
		if err := c.Delete(b.Context(), keys...); err != nil {
			b.Fatal(err)
		}
		return time.Since(start), len(srv.Requests()) - before
	}
	var ours, theirs time.Duration
	var ourReqs, theirReqs int
	for b.Loop() {
		d, r := del(batch, batchSrv)
		ours, ourReqs = ours+d, ourReqs+r
		d, r = del(single, singleSrv)
		theirs, theirReqs = theirs+d, theirReqs+r
	}
	nf := float64(b.N)
	b.ReportMetric(ours.Seconds()/nf, "batch-s/op")
	b.ReportMetric(theirs.Seconds()/nf, "single-s/op")
	b.ReportMetric(theirs.Seconds()/ours.Seconds(), "single/batch")
	b.ReportMetric(float64(ourReqs)/nf, "batch-requests/op")
	b.ReportMetric(float64(theirReqs)/nf, "single-requests/op")
}
