package health

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func sampleReport() Report {
	return Run(context.Background(), time.Second,
		ErrCheck("db", func(context.Context) error { return nil }),
		ErrCheck("redis", func(context.Context) error { return errors.New("connection refused") }),
		CheckFunc("search", func(context.Context) (string, error) { return "yellow", Warn(errors.New("yellow")) }),
	)
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.Observe(sampleReport())
	want := `
# HELP fediops_check_status Result of the check in the last run: 0 ok, 1 warn, 2 fail.
# TYPE fediops_check_status gauge
fediops_check_status{check="db"} 0
fediops_check_status{check="redis"} 2
fediops_check_status{check="search"} 1
# HELP fediops_check_up 1 if the check passed (ok or warn) in the last run, 0 if it failed.
# TYPE fediops_check_up gauge
fediops_check_up{check="db"} 1
fediops_check_up{check="redis"} 0
fediops_check_up{check="search"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "fediops_check_up", "fediops_check_status"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(reg, "fediops_check_latency_seconds"); n != 3 {
		t.Fatalf("latency series %d", n)
	}
}

func TestPushUptimeKuma(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/push/Tok3n" {
			w.Write([]byte(`{"ok":false,"msg":"Monitor not found or not active."}`))
			return
		}
		q := r.URL.Query()
		got = append(got, q.Get("status")+"|"+q.Get("msg")+"|"+q.Get("ping"))
		w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	ctx := context.Background()
	if err := PushUptimeKuma(ctx, nil, srv.URL+"/api/push/Tok3n?status=up&msg=OK&ping=", sampleReport()); err != nil {
		t.Fatal(err)
	}
	ok := Run(ctx, time.Second, ErrCheck("db", func(context.Context) error { return nil }))
	if err := PushUptimeKuma(ctx, nil, srv.URL+"/api/push/Tok3n", ok); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !strings.HasPrefix(got[0], "down|fail: redis; warn: search|") || !strings.HasPrefix(got[1], "up|ok: 1 checks|") {
		t.Fatalf("%q", got)
	}
	err := PushUptimeKuma(ctx, nil, srv.URL+"/api/push/wrong", ok)
	if err == nil || strings.Contains(err.Error(), "wrong") || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("%v", err)
	}
	// A request that fails says why, without the URL (its path is the token).
	l, lerr := net.Listen("tcp", "127.0.0.1:0")
	if lerr != nil {
		t.Fatal(lerr)
	}
	closed := l.Addr().String()
	l.Close()
	err = PushUptimeKuma(ctx, nil, "http://"+closed+"/api/push/Tok3n", ok)
	if err == nil || strings.Contains(err.Error(), "Tok3n") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("push to a closed port: %v", err)
	}
}
