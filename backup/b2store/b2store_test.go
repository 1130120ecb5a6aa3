package b2store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/b2store"
	"github.com/fediops/fediops/backup/storetest"
	"github.com/fediops/fediops/internal/b2fake"
)

// The B2 store meets backup.Store's contract, with parts of B2's minimum
// size so that a few MB already take the large-file path.
func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) backup.Store {
		srv := b2fake.New()
		t.Cleanup(srv.Close)
		srv.CreateBucket("b")
		st, err := b2store.Open(context.Background(), b2store.Config{KeyID: srv.KeyID, Key: srv.Key, Bucket: "b",
			APIBase: srv.URL, ChunkSize: b2store.MinChunkSize})
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}

func open(t *testing.T) (*b2fake.Server, *b2store.Store) { return openWith(t, b2store.Config{}) }

// openWith opens bucket "b" of a new B2 stand-in with c's other settings
// (RetryFor, Logger).
func openWith(t *testing.T, c b2store.Config) (*b2fake.Server, *b2store.Store) {
	srv := b2fake.New()
	t.Cleanup(srv.Close)
	srv.CreateBucket("b")
	c.KeyID, c.Key, c.Bucket, c.APIBase = srv.KeyID, srv.Key, "b", srv.URL
	st, err := b2store.Open(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return srv, st
}

// a reader that is not a Seeker, like the backup pipe
type stream struct{ r io.Reader }

func (s stream) Read(p []byte) (int, error) { return s.r.Read(p) }

func TestPutOpenListDelete(t *testing.T) {
	srv, st := open(t)
	ctx := context.Background()
	big := make([]byte, 20_000_000)
	rand.Read(big)
	srv.FailNext("b2_upload_part", 1, 500)
	if _, err := st.Put(ctx, "db/x/big", stream{bytes.NewReader(big)}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(ctx, "db/x/small", strings.NewReader("hi")); err != nil {
		t.Fatal(err)
	}
	rc, err := st.Open(ctx, "db/x/big")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
	var names []string
	for o, err := range st.List(ctx, "db/") {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, o.Name)
	}
	if strings.Join(names, ",") != "db/x/big,db/x/small" {
		t.Fatalf("list: %v", names)
	}
	if _, err := st.Open(ctx, "db/nope"); !errors.Is(err, backup.ErrNotExist) {
		t.Fatalf("open missing: %v", err)
	}
	for _, n := range names {
		if err := st.Delete(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Delete(ctx, "db/x/big"); err != nil || len(srv.Files("b")) != 0 {
		t.Fatalf("delete: %v, %d left", err, len(srv.Files("b")))
	}
}

// blazer v0.7.2 deadlocks when its only upload thread fails for good while
// Write waits to hand it the next part; Put must return, cancel the large
// file, and name the cause.
func TestRefusedPartDoesNotHang(t *testing.T) {
	srv, st := open(t)
	for _, failAt := range []int{1, 2} {
		srv.FailNext("b2_upload_part", 0, 0)
		big := make([]byte, 40_000_000)
		done := make(chan error, 1)
		go func() {
			// fail the failAt-th part
			for srv.Calls("b2_upload_part") < failAt-1 {
				time.Sleep(time.Millisecond)
			}
			srv.FailNext("b2_upload_part", 1, 400)
		}()
		go func() {
			_, err := st.Put(context.Background(), "db/refused", stream{bytes.NewReader(big)})
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("Put with a refused part succeeded")
			}
			if !strings.Contains(err.Error(), "HTTP 400") {
				t.Errorf("Put with a refused part: %v, want the cause", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Put hangs after B2 refused a part")
		}
		if f, u := srv.Files("b"), srv.Unfinished("b"); len(f) != 0 || len(u) != 0 {
			t.Fatalf("after a refused part: %d files, %d unfinished", len(f), len(u))
		}
	}
}

// A part whose connection drops once is retried (blazer treats a transport
// error as transient); a B2 that keeps dropping connections ends the Put
// after Config.RetryFor instead of retrying for ever, which is what kept
// orphaned backup runs waiting at 0% CPU.
func TestDroppedPartsEndPut(t *testing.T) {
	srv, st := openWith(t, b2store.Config{RetryFor: 2 * time.Second})
	big := make([]byte, 12_000_000)
	rand.Read(big)
	srv.FailNext("b2_upload_part", 1, b2fake.Drop)
	if _, err := st.Put(context.Background(), "db/once", stream{bytes.NewReader(big)}); err != nil {
		t.Fatalf("Put after one dropped part: %v", err)
	}
	srv.FailNext("b2_upload_part", 1000, b2fake.Drop)
	done := make(chan error, 1)
	go func() {
		_, err := st.Put(context.Background(), "db/dropped", stream{bytes.NewReader(big)})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "no usable answer from B2") {
			t.Fatalf("Put while every part's connection drops: %v", err)
		}
		if strings.Contains(err.Error(), srv.Key) {
			t.Error("key in the error")
		}
		t.Logf("Put: %v", err)
	case <-time.After(40 * time.Second):
		t.Fatal("Put retries for ever while every part's connection drops")
	}
	if u := srv.Unfinished("b"); len(u) != 0 {
		t.Fatalf("after dropped parts: %d unfinished", len(u))
	}
}

// Open against a B2 that does not answer (connections refused) fails after
// RetryFor; blazer alone retries the authorization for ever.
func TestOpenUnreachableFails(t *testing.T) {
	srv := b2fake.New()
	url := srv.URL
	srv.Close()
	done := make(chan error, 1)
	go func() {
		_, err := b2store.Open(context.Background(), b2store.Config{KeyID: "k", Key: "secret-key-1", Bucket: "b",
			APIBase: url, RetryFor: time.Second})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Open of an unreachable B2 succeeded")
		}
		if strings.Contains(err.Error(), "secret-key-1") {
			t.Errorf("key in the error: %v", err)
		}
		t.Logf("Open: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Open of an unreachable B2 still waiting after 30 s")
	}
}

// CancelUnfinished (the first thing a backup run does per source), Stat
// and Delete (prune) give up after RetryFor when B2 went away after Open.
func TestCancelUnfinishedUnreachableFails(t *testing.T) {
	srv := b2fake.New()
	srv.CreateBucket("b")
	st, err := b2store.Open(context.Background(), b2store.Config{KeyID: srv.KeyID, Key: srv.Key, Bucket: "b",
		APIBase: srv.URL, RetryFor: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	done := make(chan error, 1)
	calls := map[string]func() error{
		"CancelUnfinished": func() error { _, err := st.CancelUnfinished(context.Background(), "db/"); return err },
		"Stat":             func() error { _, err := st.Stat(context.Background(), "db/x"); return err },
		"Delete":           func() error { return st.Delete(context.Background(), "db/x") },
	}
	for name, call := range calls {
		go func() { done <- call() }()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("%s against a closed B2 succeeded", name)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s against a closed B2 still waiting after 30 s", name)
		}
	}
}

// List pages through b2_list_file_names (1000 names per call) and
// authorizes again when the token expired.
func TestListPagesAndReauthorizes(t *testing.T) {
	srv, st := open(t)
	ctx := context.Background()
	const n = 1203
	for i := 0; i < n; i++ {
		if _, err := st.Put(ctx, fmt.Sprintf("m/%05d", i), strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
	}
	st.Put(ctx, "other/1", strings.NewReader("y"))
	srv.ExpireTokens()
	srv.FailNext("b2_list_file_names", 1, 503)
	calls := srv.Calls("b2_list_file_names")
	i := 0
	for o, err := range st.List(ctx, "m/") {
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("m/%05d", i); o.Name != want || o.Size != 1 || o.Modified.IsZero() {
			t.Fatalf("object %d: %+v, want %s", i, o, want)
		}
		i++
	}
	if i != n {
		t.Fatalf("listed %d of %d", i, n)
	}
	if got := srv.Calls("b2_list_file_names") - calls; got != 4 { // expired, 503, two pages
		t.Errorf("%d list calls, want 4", got)
	}
}

// A download that meets one 503 or one dropped connection is retried; a B2
// that answers every download with 500/503 (or drops it) after Open ends
// the read after Config.RetryFor, naming the cause, instead of retrying
// for ever. Restore and Check read through Open.
func TestFailingDownloadsEndRead(t *testing.T) {
	big := make([]byte, 12_000_000) // three ranged reads of 5 MB
	rand.Read(big)
	// read opens the object on a fresh B2 stand-in, then makes the next n
	// download calls fail with fault and reads the object.
	read := func(fault int, n int) ([]byte, error) {
		srv := b2fake.New()
		defer srv.Close()
		srv.CreateBucket("b")
		st, err := b2store.Open(context.Background(), b2store.Config{KeyID: srv.KeyID, Key: srv.Key, Bucket: "b",
			APIBase: srv.URL, RetryFor: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Put(context.Background(), "db/big", stream{bytes.NewReader(big)}); err != nil {
			t.Fatal(err)
		}
		rc, err := st.Open(context.Background(), "db/big")
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		srv.FailNext("b2_download_file_by_name", n, fault)
		done := make(chan error, 1)
		var got []byte
		go func() { got, err = io.ReadAll(rc); done <- err }()
		select {
		case err := <-done:
			if err != nil && strings.Contains(err.Error(), srv.Key) {
				t.Error("key in the error")
			}
			return got, err
		case <-time.After(40 * time.Second):
			t.Fatalf("download still retrying 40 s after B2 began answering %d", fault)
			return nil, nil
		}
	}
	for _, fault := range []int{503, b2fake.Drop} {
		if got, err := read(fault, 1); err != nil || !bytes.Equal(got, big) {
			t.Fatalf("download after one fault %d: %d bytes, %v", fault, len(got), err)
		}
	}
	for _, fault := range []int{500, 503, b2fake.Drop} {
		t0 := time.Now()
		_, err := read(fault, 1_000_000)
		// The caller (backup.Restore, backup.Check) names the object.
		if err == nil || !strings.Contains(err.Error(), "no usable answer from B2") || !strings.Contains(err.Error(), "b2_download_file_by_name") {
			t.Fatalf("download while B2 answers %d: %v", fault, err)
		}
		t.Logf("download while B2 answers %d: %s: %v", fault, time.Since(t0).Round(time.Millisecond), err)
	}
	// Stat (the start of every Open) names the bound too.
	srv, st := open(t)
	st2, err := b2store.Open(context.Background(), b2store.Config{KeyID: srv.KeyID, Key: srv.Key, Bucket: "b",
		APIBase: srv.URL, RetryFor: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	st.Put(context.Background(), "db/small", strings.NewReader("hi"))
	srv.FailNext("b2_download_file_by_name", 1_000_000, 503)
	if _, err := st2.Stat(context.Background(), "db/small"); err == nil || !strings.Contains(err.Error(), "no usable answer from B2 for 2s") {
		t.Fatalf("Stat while B2 answers 503: %v", err)
	}
}

// cutProxy stands between blazer and srv and cuts the next n download
// bodies short after half their Content-Length (the connection closes),
// as a flaky network does; blazer retries such a range for ever.
func cutProxy(t *testing.T, srv *b2fake.Server, n *atomic.Int64) string {
	var self string
	px := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, srv.URL+r.URL.RequestURI(), r.Body)
		req.Header = r.Header.Clone()
		req.ContentLength = r.ContentLength
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if strings.HasSuffix(r.URL.Path, "b2_authorize_account") { // API and download URLs: through the proxy
			body = bytes.ReplaceAll(body, []byte(srv.URL), []byte(self))
		}
		maps.Copy(w.Header(), resp.Header)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(resp.StatusCode)
		if strings.HasPrefix(r.URL.Path, "/file/") && r.Method == http.MethodGet && n.Add(-1) >= 0 {
			body = body[:len(body)/2]
		}
		w.Write(body)
	}))
	t.Cleanup(px.Close)
	self = px.URL
	return px.URL
}

// A range whose body is cut short once is read again; a B2 (or network)
// that cuts every download body short ends the read after RetryFor.
func TestCutDownloadsEndRead(t *testing.T) {
	srv := b2fake.New()
	t.Cleanup(srv.Close)
	srv.CreateBucket("b")
	var cut atomic.Int64
	st, err := b2store.Open(context.Background(), b2store.Config{KeyID: srv.KeyID, Key: srv.Key, Bucket: "b",
		APIBase: cutProxy(t, srv, &cut), RetryFor: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 12_000_000)
	rand.Read(big)
	if _, err := st.Put(context.Background(), "db/big", stream{bytes.NewReader(big)}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int64{1, 1_000_000} {
		rc, err := st.Open(context.Background(), "db/big")
		if err != nil {
			t.Fatal(err)
		}
		cut.Store(n)
		done := make(chan error, 1)
		var got []byte
		go func() { got, err = io.ReadAll(rc); done <- err }()
		select {
		case err = <-done:
		case <-time.After(40 * time.Second):
			t.Fatalf("download still retrying 40 s after its bodies began to be cut short (%d)", n)
		}
		rc.Close()
		if n == 1 && (err != nil || !bytes.Equal(got, big)) {
			t.Fatalf("download after one cut body: %d bytes, %v", len(got), err)
		}
		if n > 1 && (err == nil || !strings.Contains(err.Error(), "no usable answer from B2")) {
			t.Fatalf("download while every body is cut short: %v", err)
		}
		t.Logf("%d bodies cut: %v", n, err)
	}
}
