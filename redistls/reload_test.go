package redistls

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops/internal/testenv"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
)

// TestReloadKeepsConnections is SIGHUP: a second service appears, a bad
// file is refused, and the connection opened before both keeps working.
func TestReloadKeepsConnections(t *testing.T) {
	r := testenv.RedisTLS(t)
	h := startTunnel(t, r, "", nil)
	ctx := context.Background()
	c := h.client()
	defer c.Close()
	if err := c.Set(ctx, "reload", "before", 0).Err(); err != nil {
		t.Fatal(err)
	}
	two := fmt.Sprintf(testConf, r.CAFile, "[second]\nclient = yes\naccept = 127.0.0.1:0\nconnect = other.fediops.test:25061\nCAfile = "+r.CAFile+"\n")
	cfg, err := ParseConfig("test.conf", strings.NewReader(two))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.tun.Reload(cfg); err != nil {
		t.Fatalf("%q", err)
	}
	c2 := redis.NewClient(&redis.Options{Addr: h.tun.Addr("second").String(), Password: r.Password, Protocol: 2, DisableIdentity: true})
	defer c2.Close()
	if v, err := c2.Get(ctx, "reload").Result(); err != nil || v != "before" {
		t.Fatalf("new service after reload: %q %v\n%s", v, err, h.logs())
	}
	bad := *cfg
	bad.Services = append([]Service(nil), cfg.Services...)
	bad.Services[1].Accept = "0.0.0.0:0"
	if err := h.tun.Reload(&bad); !errors.Is(err, ErrConfig) {
		t.Fatalf("reload with a public accept address: %v, want ErrConfig", err)
	}
	if err := c.Set(ctx, "reload", "after", 0).Err(); err != nil {
		t.Fatalf("the connection opened before the reloads: %v", err)
	}
	if n := c.PoolStats().Misses; n != 1 {
		t.Errorf("client dialed %d times, want 1 (its connection was dropped)", n)
	}
}

// TestShutdownDrains is SIGTERM: idle connections close at once, a
// connection waiting for a reply gets it first.
func TestShutdownDrains(t *testing.T) {
	r := testenv.RedisTLS(t)
	h := startTunnel(t, r, "", nil)
	ctx := context.Background()
	idle, busy := h.client(), h.client()
	defer idle.Close()
	defer busy.Close()
	idle.Ping(ctx)
	busy.Ping(ctx)
	res := make(chan error, 1)
	go func() { res <- busy.BLPop(ctx, time.Second, "drain:empty").Err() }()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := h.tun.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if err := <-res; err != redis.Nil {
		t.Errorf("BLPOP during the drain: %v, want its reply (redis.Nil)", err)
	}
	if took < 400*time.Millisecond || took > 3*time.Second {
		t.Errorf("drain took %v, want about the 900 ms the BLPOP had left", took)
	}
	if err := idle.Ping(ctx).Err(); err == nil {
		t.Error("tunnel still serves after Shutdown")
	}
}

// TestReloadProbesUseNewSettings: after a reload that changes a service's
// CAfile and sni, the monitor's ROLE probe of a pinned node dials again
// with them instead of keeping the connection verified the old way.
func TestReloadProbesUseNewSettings(t *testing.T) {
	r := testenv.RedisTLS(t)
	ctx := context.Background()
	h, rec, c := pinnedTunnel(t, r)
	defer c.Close()
	time.Sleep(300 * time.Millisecond) // a few more probe rounds on the probe's pooled connection

	pem, err := os.ReadFile(r.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "rotated-ca.crt")
	if err := os.WriteFile(ca, pem, 0o644); err != nil {
		t.Fatal(err)
	}
	const sni = "probe-reload.fediops.test"
	cfg, err := ParseConfig("test.conf", strings.NewReader(fmt.Sprintf(testConf, ca, "sni = "+sni+"\n")))
	if err != nil {
		t.Fatal(err)
	}
	from := rec.dials()
	if rec.sentSNI(0, sni) {
		t.Fatalf("a dial sent %s before the reload", sni)
	}
	if err := h.tun.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a probe dial with the new sni", func() bool { return rec.sentSNI(from, sni) })
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("the connection opened before the reload: %v", err)
	}
	if n := c.PoolStats().Misses; n != 1 {
		t.Errorf("client dialed %d times, want 1: the dial with the new sni must be the probe's", n)
	}
	for _, reason := range failoverReasons {
		if n := testutil.ToFloat64(h.tun.m.failovers.WithLabelValues("redis-client", reason)); n != 0 {
			t.Errorf("failovers{reason=%s} = %v, want 0", reason, n)
		}
	}
}
