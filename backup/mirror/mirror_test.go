package mirror_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fediops/fediops/backup/b2store"
	"github.com/fediops/fediops/backup/mirror"
	"github.com/fediops/fediops/backup/slacknotify"
	"github.com/fediops/fediops/internal/b2fake"
	"github.com/fediops/fediops/internal/s3fake"
	"github.com/fediops/fediops/spaces"
)

const mirBucket = "media-mirror"

type mirEnv struct {
	s3  *s3fake.Server
	src *spaces.Client
	b2  *b2fake.Server
}

func newMirEnv(t testing.TB) *mirEnv {
	t.Helper()
	s3 := s3fake.New(t)
	if err := s3.CreateBucket("media"); err != nil {
		t.Fatal(err)
	}
	src, err := spaces.New(&spaces.Config{Bucket: "media", Region: "nyc3", Endpoint: s3.URL, PathStyle: true,
		AccessKeyID: "AKIDFAKE", SecretAccessKey: "fake-secret"})
	if err != nil {
		t.Fatal(err)
	}
	b2 := b2fake.New()
	t.Cleanup(b2.Close)
	b2.CreateBucket(mirBucket)
	return &mirEnv{s3: s3, src: src, b2: b2}
}

func (e *mirEnv) config() mirror.Config {
	return mirror.Config{Source: e.src, SourceName: "spaces:media",
		B2: b2store.Config{KeyID: e.b2.KeyID, Key: e.b2.Key, Bucket: mirBucket, APIBase: e.b2.URL}, Backoff: 5 * time.Millisecond, Workers: 4,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func (e *mirEnv) put(t testing.TB, key string, data []byte) {
	t.Helper()
	if _, err := e.src.Put(context.Background(), key, bytes.NewReader(data), nil); err != nil {
		t.Fatal(err)
	}
}

func (e *mirEnv) run(t testing.TB, ctx context.Context, cfg mirror.Config) (mirror.Report, error) {
	t.Helper()
	m, err := mirror.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m.Run(ctx)
}

// check compares B2 (every version, not just the newest) with the source.
func (e *mirEnv) check(t testing.TB, want map[string][]byte) {
	t.Helper()
	files := e.b2.Files(mirBucket)
	got := map[string][]byte{}
	for _, f := range files {
		if strings.HasPrefix(f.Name, ".fediops-mirror/") {
			continue
		}
		if f.Hidden {
			t.Errorf("%s is hidden in B2; the mirror deletes, it does not hide", f.Name)
		}
		got[f.Name] = f.Data
	}
	for k, v := range want {
		if !bytes.Equal(got[k], v) {
			t.Errorf("B2 %s: %d bytes, want %d from the source", k, len(got[k]), len(v))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("B2 still has %s, gone from the source", k)
		}
	}
	// Exactly one version per name, and one state file.
	if n := mirVersions(t, e); n != len(want)+1 {
		t.Errorf("B2 holds %d versions, want %d (one per object plus the state)", n, len(want)+1)
	}
}

// mirVersions counts every version in the bucket through the B2 API.
func mirVersions(t testing.TB, e *mirEnv) int {
	t.Helper()
	n := 0
	var start string
	for range 100 {
		body := fmt.Sprintf(`{"bucketId":%q,"maxFileCount":10000,"startFileName":%q}`, mirBucketID(t, e), start)
		var out struct {
			Files []struct {
				FileName string `json:"fileName"`
			} `json:"files"`
			NextFileName *string `json:"nextFileName"`
		}
		mirCall(t, e, "b2_list_file_versions", body, &out)
		n += len(out.Files)
		if out.NextFileName == nil {
			return n
		}
		start = *out.NextFileName
	}
	t.Fatal("too many pages")
	return 0
}

func mirBucketID(t testing.TB, e *mirEnv) string {
	var out struct {
		Buckets []struct {
			BucketID string `json:"bucketId"`
		} `json:"buckets"`
	}
	mirCall(t, e, "b2_list_buckets", fmt.Sprintf(`{"bucketName":%q}`, mirBucket), &out)
	return out.Buckets[0].BucketID
}

func mirCall(t testing.TB, e *mirEnv, method, body string, out any) {
	t.Helper()
	req, _ := http.NewRequest("GET", e.b2.URL+"/b2api/v3/b2_authorize_account", nil)
	req.SetBasicAuth(e.b2.KeyID, e.b2.Key)
	var auth struct {
		Token string `json:"authorizationToken"`
	}
	mirDo(t, req, &auth)
	req, _ = http.NewRequest("POST", e.b2.URL+"/b2api/v3/"+method, strings.NewReader(body))
	req.Header.Set("Authorization", auth.Token)
	mirDo(t, req, out)
}

func mirDo(t testing.TB, req *http.Request, out any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d %s", req.URL.Path, resp.StatusCode, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		t.Fatal(err)
	}
}

func mirData(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestMirrorCopiesChangesDeletes(t *testing.T) {
	e := newMirEnv(t)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 2))
	want := map[string][]byte{}
	for i := range 40 {
		k := fmt.Sprintf("media_attachments/files/%03d/original/%d.png", i/10, i)
		want[k] = mirData(r, 100+r.IntN(20_000))
		e.put(t, k, want[k])
	}
	// Odd ones: empty, a name with spaces and non-ASCII.
	for _, k := range []string{"empty.bin", "custom_emojis/images/ä ö/café 1.png"} {
		want[k] = []byte{}
		if k != "empty.bin" {
			want[k] = []byte("odd name")
		}
		e.put(t, k, want[k])
	}
	rep, err := e.run(t, ctx, e.config())
	if err != nil {
		t.Fatalf("first run: %v\n%s", err, mirror.Details(rep))
	}
	if rep.Copied != 42 || !rep.Verified || rep.Deleted != 0 {
		t.Fatalf("first run: %+v", rep)
	}
	e.check(t, want)

	// Nothing changed: nothing is read from the source, nothing listed in B2.
	gets := e.b2.Calls("b2_list_file_versions")
	rep, err = e.run(t, ctx, e.config())
	if err != nil || rep.Copied != 0 || rep.Unchanged != 42 || rep.Verified {
		t.Fatalf("second run: %v %+v", err, rep)
	}
	if e.b2.Calls("b2_list_file_versions") != gets || e.b2.Calls("b2_list_file_names") != 0 {
		t.Error("an unchanged run listed B2")
	}

	// Change 2 (one same size, other content), delete 3, add 1.
	k0 := "media_attachments/files/000/original/0.png"
	want[k0] = mirData(r, len(want[k0]))
	e.put(t, k0, want[k0])
	k1 := "media_attachments/files/001/original/11.png"
	want[k1] = mirData(r, 5)
	e.put(t, k1, want[k1])
	var gone []string
	for _, i := range []int{20, 21, 22} {
		k := fmt.Sprintf("media_attachments/files/002/original/%d.png", i)
		gone = append(gone, k)
		delete(want, k)
	}
	if err := e.src.Delete(ctx, gone...); err != nil {
		t.Fatal(err)
	}
	want["new.txt"] = []byte("new")
	e.put(t, "new.txt", want["new.txt"])
	rep, err = e.run(t, ctx, e.config())
	if err != nil {
		t.Fatalf("third run: %v", err)
	}
	if rep.Copied != 3 || rep.Deleted != 3 || rep.StaleVersions != 2 || rep.Unchanged != 37 {
		t.Fatalf("third run: %+v", rep)
	}
	e.check(t, want)
	if s := mirror.Summary(rep); !strings.Contains(s, "copied 3 objects") || !strings.Contains(s, "deleted 3") {
		t.Errorf("summary %q", s)
	}
}

func TestMirrorDryRunAndShrinkGuard(t *testing.T) {
	e := newMirEnv(t)
	ctx := context.Background()
	want := map[string][]byte{}
	for i := range 20 {
		k := fmt.Sprintf("k%02d", i)
		want[k] = []byte(strings.Repeat(k, 10))
		e.put(t, k, want[k])
	}
	// Dry run: actions reported, nothing written.
	cfg := e.config()
	cfg.DryRun = true
	var mu sync.Mutex
	var acts []mirror.Action
	cfg.OnAction = func(a mirror.Action) { mu.Lock(); acts = append(acts, a); mu.Unlock() }
	rep, err := e.run(t, ctx, cfg)
	if err != nil || rep.Copied != 20 || len(acts) != 20 || acts[0].Op != "copy" {
		t.Fatalf("dry run: %v %+v %v", err, rep, acts)
	}
	if n := len(e.b2.Files(mirBucket)); n != 0 {
		t.Fatalf("dry run wrote %d files", n)
	}
	if _, err := e.run(t, ctx, e.config()); err != nil {
		t.Fatal(err)
	}
	// 3 of 20 deleted = 15% > 10%: refused, nothing deleted.
	if err := e.src.Delete(ctx, "k00", "k01", "k02"); err != nil {
		t.Fatal(err)
	}
	rep, err = e.run(t, ctx, e.config())
	if !errors.Is(err, mirror.ErrShrink) || rep.Deleted != 0 || rep.Refused != 3 {
		t.Fatalf("shrink: err %v, report %+v", err, rep)
	}
	e.check(t, want) // all 20 still there
	// Dry run with the limit raised lists the deletions and does none.
	cfg = e.config()
	cfg.DryRun, cfg.MaxDeleteFraction = true, 0.5
	acts = nil
	cfg.OnAction = func(a mirror.Action) { mu.Lock(); acts = append(acts, a); mu.Unlock() }
	rep, err = e.run(t, ctx, cfg)
	if err != nil || rep.Deleted != 3 || len(acts) != 3 || acts[0].Op != "delete" {
		t.Fatalf("dry run deletes: %v %+v %v", err, rep, acts)
	}
	e.check(t, want)
	// The intended deletion, with the limit raised.
	cfg = e.config()
	cfg.MaxDeleteFraction = 0.5
	rep, err = e.run(t, ctx, cfg)
	if err != nil || rep.Deleted != 3 {
		t.Fatalf("deletes: %v %+v", err, rep)
	}
	for _, k := range []string{"k00", "k01", "k02"} {
		delete(want, k)
	}
	e.check(t, want)
}

// failingSource lists some objects and then fails.
type failingSource struct {
	mirror.Source
	after int
}

func (f failingSource) Objects(ctx context.Context, prefix string) iter.Seq2[spaces.Object, error] {
	return func(yield func(spaces.Object, error) bool) {
		n := 0
		for o, err := range f.Source.Objects(ctx, prefix) {
			if err != nil || n == f.after {
				yield(spaces.Object{}, errors.New("injected listing failure"))
				return
			}
			n++
			if !yield(o, nil) {
				return
			}
		}
	}
}

func TestMirrorListingFailureDeletesNothing(t *testing.T) {
	e := newMirEnv(t)
	ctx := context.Background()
	want := map[string][]byte{}
	for i := range 10 {
		k := fmt.Sprintf("a/%d", i)
		want[k] = []byte(k)
		e.put(t, k, want[k])
	}
	if _, err := e.run(t, ctx, e.config()); err != nil {
		t.Fatal(err)
	}
	cfg := e.config()
	cfg.Source = failingSource{e.src, 3}
	cfg.MaxDeleteFraction = -1 // even with no limit
	rep, err := e.run(t, ctx, cfg)
	if !errors.Is(err, mirror.ErrListing) || rep.Deleted != 0 {
		t.Fatalf("err %v report %+v", err, rep)
	}
	e.check(t, want)
}

func TestMirrorUploadFaultsAndLargeFiles(t *testing.T) {
	e := newMirEnv(t)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(3, 4))
	want := map[string][]byte{}
	for i := range 30 {
		k := fmt.Sprintf("f/%02d", i)
		want[k] = mirData(r, 1000+r.IntN(3000))
		e.put(t, k, want[k])
	}
	big := mirData(r, 11_000_000) // three parts of 5 MB, 5 MB, 1 MB
	want["video.mp4"] = big
	e.put(t, "video.mp4", big)
	e.b2.FailNext("b2_upload_file", 6, 503)
	e.b2.FailNext("b2_upload_part", 1, 500)
	cfg := e.config()
	cfg.LargeFileThreshold, cfg.PartSize = 6_000_000, 5_000_000
	rec := &sseRecorder{next: http.DefaultTransport}
	cfg.B2.Transport = rec
	rep, err := e.run(t, ctx, cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, mirror.Details(rep))
	}
	if rep.Retries < 6 || rep.Copied != 31 {
		t.Errorf("retries %d copied %d", rep.Retries, rep.Copied)
	}
	e.check(t, want)
	if u := e.b2.Unfinished(mirBucket); len(u) != 0 {
		t.Errorf("unfinished large files left: %v", u)
	}
	if rec.large.Load() == 0 || rec.largeSSE.Load() != rec.large.Load() {
		t.Errorf("%d of %d b2_start_large_file calls asked for SSE-B2", rec.largeSSE.Load(), rec.large.Load())
	}
	// Persistent failure of one object: reported, the run fails, the next
	// run repairs it.
	e.put(t, "f/00", []byte("changed"))
	want["f/00"] = []byte("changed")
	cfg.Attempts = 2
	cfg.Source = brokenGet{e.src, "f/00"}
	rep, err = e.run(t, ctx, cfg)
	if err == nil || rep.Errors != 1 || !rep.Failed() || !strings.Contains(mirror.Details(rep), "f/00") {
		t.Fatalf("want a failure: %v %+v", err, rep)
	}
	rep, err = e.run(t, ctx, e.config())
	if err != nil || !rep.Verified || rep.Copied != 1 {
		t.Fatalf("repair run: %v %+v", err, rep)
	}
	e.check(t, want)

	// A large file a killed run left unfinished is cancelled by the next
	// full listing.
	var started struct {
		FileID string `json:"fileId"`
	}
	mirCall(t, e, "b2_start_large_file", fmt.Sprintf(`{"bucketId":%q,"fileName":"video2.mp4","contentType":"b2/x-auto"}`,
		mirBucketID(t, e)), &started)
	cfg = e.config()
	cfg.Verify = true
	rep, err = e.run(t, ctx, cfg)
	if err != nil || rep.Cancelled != 1 || len(e.b2.Unfinished(mirBucket)) != 0 {
		t.Fatalf("cancel unfinished: %v %+v %v", err, rep, e.b2.Unfinished(mirBucket))
	}
}

// brokenGet fails every read of one key.
type brokenGet struct {
	mirror.Source
	key string
}

func (b brokenGet) Get(ctx context.Context, key string) (io.ReadCloser, spaces.Object, error) {
	if key == b.key {
		return nil, spaces.Object{}, errors.New("injected read failure")
	}
	return b.Source.Get(ctx, key)
}

// sseRecorder counts b2_start_large_file calls and those asking for SSE-B2.
type sseRecorder struct {
	next            http.RoundTripper
	large, largeSSE atomic.Int64
}

func (s *sseRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/b2_start_large_file") {
		body, _ := io.ReadAll(r.Body)
		s.large.Add(1)
		if bytes.Contains(body, []byte(`"serverSideEncryption":{"algorithm":"AES256","mode":"SSE-B2"}`)) {
			s.largeSSE.Add(1)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	return s.next.RoundTrip(r)
}

// cancelAfter cancels ctx after n uploads reached B2.
type cancelAfter struct {
	next   http.RoundTripper
	n      atomic.Int64
	after  int64
	cancel context.CancelFunc
	sse    atomic.Int64
}

func (c *cancelAfter) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.Contains(r.URL.Path, "/upload/") {
		if r.Header.Get("X-Bz-Server-Side-Encryption") == "AES256" {
			c.sse.Add(1)
		}
		if c.n.Add(1) == c.after {
			c.cancel()
		}
	}
	return c.next.RoundTrip(r)
}

func TestMirrorInterruptedRunResumes(t *testing.T) {
	e := newMirEnv(t)
	r := rand.New(rand.NewPCG(5, 6))
	want := map[string][]byte{}
	for i := range 200 {
		k := fmt.Sprintf("m/%03d", i)
		want[k] = mirData(r, 500+r.IntN(2000))
		e.put(t, k, want[k])
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := e.config()
	tr := &cancelAfter{next: http.DefaultTransport, after: 80, cancel: cancel}
	cfg.B2.Transport = tr
	cfg.CheckpointEvery = 25
	rep, err := e.run(t, ctx, cfg)
	if !errors.Is(err, context.Canceled) || !rep.Interrupted || rep.Copied >= 200 || rep.Copied < 50 {
		t.Fatalf("interrupted run: err %v, %+v", err, rep)
	}
	if tr.sse.Load() < 50 {
		t.Errorf("only %d uploads asked for SSE-B2", tr.sse.Load())
	}
	first := rep.Copied
	// Uploads in flight when the run was cancelled may still land in B2
	// (the server does not know the client gave up). Between cron runs that
	// takes no time at all; here, wait until B2 holds still, so that the
	// resumed run's full listing sees them.
	for prev, still := -1, 0; still < 3; time.Sleep(50 * time.Millisecond) {
		if n := mirVersions(t, e); n == prev {
			still++
		} else {
			prev, still = n, 0
		}
	}
	rep, err = e.run(t, context.Background(), e.config())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Verified || rep.Copied+first > 200+4 || rep.Copied < 200-first-4 {
		t.Errorf("resume copied %d after %d (want about %d): %+v", rep.Copied, first, 200-first, rep)
	}
	e.check(t, want)
	// And the run after is clean again: no B2 listing.
	rep, err = e.run(t, context.Background(), e.config())
	if err != nil || rep.Verified || rep.Copied != 0 || rep.Unchanged != 200 {
		t.Fatalf("after resume: %v %+v", err, rep)
	}
}

func TestMirrorSlackAndConfig(t *testing.T) {
	var got atomic.Value
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(string(b))
	}))
	defer hook.Close()
	e := newMirEnv(t)
	e.put(t, "a", []byte("a"))
	cfg := e.config()
	cfg.Notifiers = []mirror.Notifier{&slacknotify.Notifier{WebhookURL: hook.URL, Mention: "-"}, mirror.LogNotifier{Logger: cfg.Logger}}
	if _, err := e.run(t, context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	msg, _ := got.Load().(string)
	if !strings.Contains(msg, "Media mirror OK") || !strings.Contains(msg, "copied 1 objects") {
		t.Errorf("slack message %s", msg)
	}
	bad := cfg
	bad.B2.APIBase = "http://api.backblazeb2.example"
	if _, err := mirror.New(bad); err == nil || !strings.Contains(err.Error(), "not https") {
		t.Errorf("plain http to a remote host: %v", err)
	}
	bad = cfg
	bad.B2.Key = ""
	if _, err := mirror.New(bad); err == nil || !strings.Contains(err.Error(), "B2_APPLICATION_KEY") {
		t.Errorf("missing key: %v", err)
	}
	svc, timer := mirror.Units([]string{"/usr/local/bin/backup", "mirror", "-env", "/home/mastodon/live/.env.production"})
	if !strings.Contains(svc, "ExecStart=/usr/local/bin/backup mirror -env /home/mastodon/live/.env.production") || !strings.Contains(timer, "OnCalendar=01/4:30") {
		t.Errorf("units:\n%s\n%s", svc, timer)
	}
}
