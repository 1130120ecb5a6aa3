package e2e

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/internal/b2fake"
	"github.com/fediops/fediops/internal/s3fake"
	"github.com/fediops/fediops/spaces"
)

// bkMirror is a Spaces stand-in with bucket "media", a B2 stand-in with
// bucket "mirror", the environment the mirror reads for both, and a
// client of the media bucket to fill it.
type bkMirror struct {
	b2  *b2fake.Server
	env []string
	src *spaces.Client
}

func newBkMirror(t testing.TB) *bkMirror {
	s3 := s3fake.New(t)
	if err := s3.CreateBucket("media"); err != nil {
		t.Fatal(err)
	}
	b2 := b2fake.New()
	t.Cleanup(b2.Close)
	b2.CreateBucket("mirror")
	s3env := map[string]string{"S3_ENABLED": "true", "S3_BUCKET": "media", "S3_ENDPOINT": s3.URL, "S3_REGION": "nyc3",
		"AWS_ACCESS_KEY_ID": "AKIDFAKE", "AWS_SECRET_ACCESS_KEY": "fake-secret"}
	scfg, err := spaces.ConfigFromEnv(fediops.MapLookup(s3env))
	if err != nil {
		t.Fatal(err)
	}
	src, err := spaces.New(scfg)
	if err != nil {
		t.Fatal(err)
	}
	m := &bkMirror{b2: b2, src: src, env: []string{"B2_APPLICATION_KEY_ID=" + b2.KeyID, "B2_APPLICATION_KEY=" + b2.Key,
		"B2_API_BASE=" + b2.URL, "MIRROR_B2_BUCKET=mirror", "SLACK_WEBHOOK_URL="}}
	for k, v := range s3env {
		m.env = append(m.env, k+"="+v)
	}
	return m
}

func TestMirrorCommand(t *testing.T) {
	m := newBkMirror(t)
	b2, env, src := m.b2, m.env, m.src
	for i := range 10 {
		if _, err := src.Put(context.Background(), fmt.Sprintf("a/%d.png", i), strings.NewReader(strings.Repeat("x", i+1)), nil); err != nil {
			t.Fatal(err)
		}
	}
	lock := filepath.Join(t.TempDir(), "lock")
	mirror := func(args ...string) (int, string, string) {
		r := bkRun(t, env, append([]string{"mirror", "-env", "", "-lock", lock}, args...)...)
		return r.code, r.stdout, r.stderr
	}
	if code, out, _ := mirror("-dry-run"); code != 0 || strings.Count(out, "would copy media/a/") != 10 {
		t.Fatalf("dry run: %d\n%s", code, out)
	}
	if len(b2.Files("mirror")) != 0 {
		t.Fatal("dry run wrote to B2")
	}
	if code, _, errs := mirror(); code != 0 {
		t.Fatalf("run: %d %s", code, errs)
	}
	if n := len(b2.Files("mirror")); n != 11 { // 10 objects + the state
		t.Fatalf("B2 has %d files, want 11", n)
	}
	if err := src.Delete(context.Background(), "a/0.png", "a/1.png", "a/2.png"); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := mirror(); code != 1 || !strings.Contains(errs, "shrank suspiciously") {
		t.Fatalf("shrink guard: %d %s", code, errs)
	}
	if code, _, errs := mirror("-max-delete", "0.5"); code != 0 || len(b2.Files("mirror")) != 8 {
		t.Fatalf("intended deletion: %d %s", code, errs)
	}
	if code, out, _ := mirror("-units"); code != 0 || !strings.Contains(out, "OnCalendar=01/4:30") {
		t.Fatalf("units: %d %s", code, out)
	}
	if code, _, _ := mirror("extra"); code != 2 {
		t.Errorf("extra argument: exit %d, want 2", code)
	}
	env = append(env, "S3_ENABLED=false") // the later one wins
	if code, _, errs := mirror(); code != 2 || !strings.Contains(errs, "S3_ENABLED") {
		t.Errorf("S3 disabled: exit %d %s", code, errs)
	}
}

// TestMirrorCommandPeakRSS mirrors 192 MiB in 12 MiB objects with 16
// workers through the built binary and checks its peak RSS: streaming
// keeps it far below one object per worker (16 × 12 MiB).
func TestMirrorCommandPeakRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and moves 192 MiB")
	}
	m := newBkMirror(t)
	b2, env, src := m.b2, m.env, m.src
	const n, size = 16, 12 << 20
	for i := range n {
		data := bytes.Repeat([]byte{byte(i), byte(i >> 8), 'm', 'e', 'd', 'i', 'a', '\n'}, size/8)
		if _, err := src.Put(context.Background(), fmt.Sprintf("v/%02d.mp4", i), bytes.NewReader(data), nil); err != nil {
			t.Fatal(err)
		}
	}
	r := bkRun(t, env, "mirror", "-env", "", "-lock", filepath.Join(t.TempDir(), "lock"), "-workers", "16")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	got := 0
	for _, f := range b2.Files("mirror") {
		if strings.HasPrefix(f.Name, "media/v/") && len(f.Data) == size {
			got++
		}
	}
	if got != n {
		t.Fatalf("%d of %d objects in B2", got, n)
	}
	t.Logf("mirrored %d MiB in %s, peak RSS %.1f MiB", n*size>>20, r.wall.Round(time.Millisecond), float64(r.maxRSS)/(1<<20))
	if r.maxRSS > 64<<20 {
		t.Errorf("peak RSS %.1f MiB: not streaming (limit 64 MiB; one object per worker would be %d MiB)",
			float64(r.maxRSS)/(1<<20), n*size>>20)
	}
}
