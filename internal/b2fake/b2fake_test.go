package b2fake_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/Backblaze/blazer/b2"

	"github.com/fediops/fediops/internal/b2fake"
)

func client(t *testing.T, s *b2fake.Server) *b2.Bucket {
	t.Helper()
	ctx := context.Background()
	c, err := b2.NewClient(ctx, s.KeyID, s.Key, b2.APIBase(s.URL))
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Bucket(ctx, "backups")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func put(t *testing.T, b *b2.Bucket, name string, data []byte, chunk int) error {
	t.Helper()
	w := b.Object(name).NewWriter(context.Background())
	w.ChunkSize = chunk
	w.ConcurrentUploads = 1
	if _, err := io.Copy(w, bytes.NewBuffer(data)); err != nil { // a Buffer is no Seeker: the streaming path
		w.Close()
		return err
	}
	return w.Close()
}

func get(t *testing.T, b *b2.Bucket, name string) []byte {
	t.Helper()
	r := b.Object(name).NewReader(context.Background())
	r.ChunkSize = 3_000_000
	r.ConcurrentDownloads = 2
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return data
}

func TestSmallAndLargeFilesWithFaults(t *testing.T) {
	s := b2fake.New()
	defer s.Close()
	s.CreateBucket("backups")
	b := client(t, s)

	small := []byte("hello b2")
	big := make([]byte, 12_345_678)
	rand.Read(big)

	s.FailNext("b2_upload_file", 1, 503)
	if err := put(t, b, "a/small.txt", small, 5_000_000); err != nil {
		t.Fatal(err)
	}
	s.FailNext("b2_upload_part", 2, 500)
	s.ExpireTokens()
	if err := put(t, b, "a/big.bin", big, 5_000_000); err != nil {
		t.Fatal(err)
	}
	if got := s.Calls("b2_upload_part"); got != 5 {
		t.Errorf("upload_part calls = %d, want 3 parts + 2 injected failures", got)
	}
	if got := s.Calls("b2_authorize_account"); got < 2 {
		t.Errorf("expired tokens did not make blazer authorize again (%d authorizations)", got)
	}
	files := s.Files("backups")
	if len(files) != 2 || files[0].Name != "a/big.bin" || !bytes.Equal(files[0].Data, big) || !bytes.Equal(files[1].Data, small) {
		t.Fatalf("stored files wrong: %d files", len(files))
	}
	if got := get(t, b, "a/big.bin"); !bytes.Equal(got, big) {
		t.Fatalf("ranged download differs (%d bytes)", len(got))
	}
	if got := get(t, b, "a/small.txt"); !bytes.Equal(got, small) {
		t.Fatalf("download = %q", got)
	}
	// listing and deleting through blazer
	it := b.List(context.Background(), b2.ListPrefix("a/"))
	n := 0
	for it.Next() {
		n++
		if err := it.Object().Delete(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := it.Err(); err != nil || n != 2 || len(s.Files("backups")) != 0 {
		t.Fatalf("list/delete: n=%d err=%v left=%d", n, err, len(s.Files("backups")))
	}
}

func TestUnfinishedLargeFileIsListedAndCancelled(t *testing.T) {
	s := b2fake.New()
	defer s.Close()
	s.CreateBucket("backups")
	b := client(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	w := b.Object("x/partial").NewWriter(ctx)
	w.ChunkSize = 5_000_000
	buf := make([]byte, 11_000_000)
	if _, err := w.Write(buf); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(s.Unfinished("backups")) == 0 || s.Unfinished("backups")[0].Parts < 2 {
		if time.Now().After(deadline) {
			t.Fatal("parts never arrived")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := w.Close(); err == nil {
		t.Fatal("Close after cancel succeeded")
	}
	if len(s.Files("backups")) != 0 {
		t.Fatal("a cancelled writer finished its file")
	}
	it := b.List(context.Background(), b2.ListUnfinished())
	for it.Next() {
		if err := it.Object().Cancel(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if u := s.Unfinished("backups"); len(u) != 0 {
		t.Fatalf("still unfinished: %+v", u)
	}
}

// FailNext with Drop closes the connection: the client gets a transport
// error, no HTTP answer; the next call is served again.
func TestFailNextDrop(t *testing.T) {
	s := b2fake.New()
	defer s.Close()
	s.FailNext("b2_authorize_account", 1, b2fake.Drop)
	url := s.URL + "/b2api/v3/b2_authorize_account"
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.SetBasicAuth(s.KeyID, s.Key)
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("dropped call answered %s", resp.Status)
	}
	req, _ = http.NewRequest(http.MethodGet, url, nil)
	req.SetBasicAuth(s.KeyID, s.Key)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || s.Calls("b2_authorize_account") != 2 {
		t.Fatalf("after the drop: %s, %d calls", resp.Status, s.Calls("b2_authorize_account"))
	}
}

// FailNext with Stall never answers: the client's own timeout ends the
// call; Close ends a stalled call too.
func TestFailNextStall(t *testing.T) {
	s := b2fake.New()
	defer s.Close()
	s.FailNext("b2_authorize_account", 2, b2fake.Stall)
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/b2api/v3/b2_authorize_account", nil)
	req.SetBasicAuth(s.KeyID, s.Key)
	t0 := time.Now()
	if resp, err := (&http.Client{Timeout: 300 * time.Millisecond}).Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("a stalled call answered %s", resp.Status)
	}
	if d := time.Since(t0); d < 300*time.Millisecond || d > 2*time.Second {
		t.Errorf("stalled call ended after %s", d)
	}
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req.Clone(context.Background()))
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	for s.Calls("b2_authorize_account") < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	s.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("a stalled call answered after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end a stalled call")
	}
}
