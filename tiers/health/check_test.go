package health

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHTTPChecks(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("OK")) })
	mux.HandleFunc("GET /api/v1/streaming/health", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("OK")) })
	good := httptest.NewServer(mux)
	defer good.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			http.Error(w, "We're sorry, but something went wrong", 500)
			return
		}
		w.Write([]byte("Service Unavailable... not OK"))
	}))
	defer bad.Close()
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer hang.Close()

	slow := CheckFunc("ignores-ctx", func(ctx context.Context) (string, error) {
		time.Sleep(2 * time.Second)
		return "late", nil
	})
	warn := CheckFunc("degraded", func(ctx context.Context) (string, error) { return "lag 40s", Warn(errors.New("latency high")) })
	rep := Run(context.Background(), 300*time.Millisecond,
		WebHealth("web kirk", good.URL),
		StreamingHealth("streaming kirk", good.URL+"/"),
		WebHealth("web spock", bad.URL),
		StreamingHealth("streaming spock", bad.URL),
		WebHealth("web hang", hang.URL),
		slow, warn,
		ErrCheck("db", func(ctx context.Context) error { return nil }),
	)
	want := []Status{StatusOK, StatusOK, StatusFail, StatusFail, StatusFail, StatusFail, StatusWarn, StatusOK}
	for i, r := range rep.Results {
		if r.Status != want[i] {
			t.Errorf("%s: %s (%s %v), want %s", r.Name, r.Status, r.Detail, r.Err, want[i])
		}
	}
	if rep.OK() {
		t.Error("report OK with failures")
	}
	if !strings.Contains(rep.Results[2].Error, "status 500") || !strings.Contains(rep.Results[3].Error, `want "OK"`) {
		t.Errorf("details: %q / %q", rep.Results[2].Error, rep.Results[3].Error)
	}
	if !errors.Is(rep.Results[5].Err, ErrCheckTimeout) {
		t.Errorf("abandoned check: %v", rep.Results[5].Err)
	}
	// Concurrent: the whole run took about one timeout, not the sum.
	if rep.Duration > 1500*time.Millisecond {
		t.Errorf("checks ran one after another: %v", rep.Duration)
	}
	var b bytes.Buffer
	rep.WriteTable(&b)
	if !strings.Contains(b.String(), "web kirk") || !strings.Contains(b.String(), "warn") {
		t.Error(b.String())
	}
	if !Run(context.Background(), time.Second, warn).OK() {
		t.Error("a warning fails the report")
	}
}
