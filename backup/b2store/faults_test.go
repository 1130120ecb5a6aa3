package b2store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops/backup/b2store"
	"github.com/fediops/fediops/internal/b2fake"
)

// silent is a listener that accepts connections and never answers.
func silent(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String()
}

// A closed port and a name that does not resolve end Open at once with
// the cause (B2 is not there: no retry brings it), whatever RetryFor; a
// server that accepts and never answers ends it after RetryFor, naming
// the call and the silence.
func TestUnreachableFailsFast(t *testing.T) {
	srv := b2fake.New()
	closed := srv.URL
	srv.Close()
	for _, c := range []struct {
		api, want string
		within    time.Duration
	}{
		{closed, "b2_authorize_account: dial tcp " + strings.TrimPrefix(closed, "http://") + ": connect: connection refused", time.Second},
		{"https://b2.invalid", "b2_authorize_account: dial tcp: lookup b2.invalid", 5 * time.Second},
		{silent(t), "no usable answer from B2 for 1.5s: authorize key k: b2_authorize_account: no answer from 127.0.0.1:", 4 * time.Second},
	} {
		t0 := time.Now()
		_, err := b2store.Open(context.Background(), b2store.Config{KeyID: "k", Key: "secret-key-1", Bucket: "b", APIBase: c.api, RetryFor: 1500 * time.Millisecond})
		took := time.Since(t0)
		if err == nil || !strings.Contains(err.Error(), c.want) || took > c.within {
			t.Errorf("Open(%s): %v after %s; want %q within %s", c.api, err, took, c.want, c.within)
		}
		if err != nil && strings.Contains(err.Error(), "secret-key-1") {
			t.Errorf("key in the error: %v", err)
		}
		var u *b2store.Unreachable
		if errors.As(err, &u) != !strings.Contains(c.want, "no answer") {
			t.Errorf("Open(%s): errors.As Unreachable = %t: %v", c.api, errors.As(err, &u), err)
		}
		t.Logf("Open(%s): %s: %v", c.api, took.Round(time.Millisecond), err)
	}
	// With the default RetryFor (2m) too: refused at once.
	t0 := time.Now()
	if _, err := b2store.Open(context.Background(), b2store.Config{KeyID: "k", Key: "k", Bucket: "b", APIBase: closed}); err == nil || time.Since(t0) > time.Second {
		t.Errorf("closed port with the default RetryFor: %v after %s", err, time.Since(t0))
	}
}

// A large upload whose every part B2 answers 503 (a fresh part URL
// succeeding before each retry) ends after RetryFor in total, counted
// from the part's first attempt, names the cause and cancels the large
// file; a retry is logged at info each time.
func TestEveryPart503EndsAfterRetryFor(t *testing.T) {
	var logs bytes.Buffer
	srv, st := openWith(t, b2store.Config{RetryFor: 2 * time.Second, Logger: newLogger(&logs)})
	big := make([]byte, 12_000_000)
	rand.Read(big)
	srv.FailNext("b2_upload_part", 1_000_000, 503)
	t0 := time.Now()
	_, err := st.Put(context.Background(), "db/x", stream{bytes.NewReader(big)})
	took := time.Since(t0)
	if err == nil || !strings.Contains(err.Error(), "upload part 1: no usable answer from B2 for 2s: b2_upload_part: HTTP 503") || took > 4*time.Second {
		t.Fatalf("Put while every part gets 503: %v after %s", err, took)
	}
	if u := srv.Unfinished("b"); len(u) != 0 {
		t.Errorf("%d unfinished large files left", len(u))
	}
	if n := strings.Count(logs.String(), "retrying"); n < 1 || n != srv.Calls("b2_upload_part")-1 {
		t.Errorf("%d retries logged for %d part uploads:\n%s", n, srv.Calls("b2_upload_part"), logs.String())
	}
	t.Logf("Put: %s, %d part uploads: %v", took.Round(time.Millisecond), srv.Calls("b2_upload_part"), err)
}

func newLogger(w *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// A part upload that B2 reads and never answers (a server gone silent
// mid-upload) ends the Put after RetryFor, naming the silence, and the
// large file is cancelled.
func TestSilentPartEndsPut(t *testing.T) {
	srv, st := openWith(t, b2store.Config{RetryFor: 1500 * time.Millisecond})
	big := make([]byte, 12_000_000)
	rand.Read(big)
	srv.FailNext("b2_upload_part", 1_000_000, b2fake.Stall)
	t0 := time.Now()
	_, err := st.Put(context.Background(), "db/x", stream{bytes.NewReader(big)})
	took := time.Since(t0)
	if err == nil || !strings.Contains(err.Error(), "b2_upload_part") || !strings.Contains(err.Error(), "no answer from") || took > 4*time.Second {
		t.Fatalf("Put while B2 is silent: %v after %s", err, took)
	}
	if u := srv.Unfinished("b"); len(u) != 0 {
		t.Errorf("%d unfinished large files left", len(u))
	}
	t.Logf("Put: %s, %d part uploads: %v", took.Round(time.Millisecond), srv.Calls("b2_upload_part"), err)
}
