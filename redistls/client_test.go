package redistls

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/internal/testenv"
)

func env(m map[string]string) fediops.Lookup { return fediops.MapLookup(m) }

func TestClientOptionsFromEnv(t *testing.T) {
	o, err := ClientOptionsFromEnv(env(map[string]string{"REDIS_HOST": "10.0.0.3", "REDIS_PORT": "6380", "REDIS_PASSWORD": "s3cret$", "REDIS_DB": "2"}), "")
	if err != nil {
		t.Fatal(err)
	}
	if o.Addr != "10.0.0.3:6380" || o.Password != "s3cret$" || o.DB != 2 || o.TLSConfig != nil {
		t.Errorf("REDIS_HOST form: %+v", o)
	}
	// SIDEKIQ_REDIS_ inherits all of REDIS_ only when its URL, HOST and SENTINELS are unset.
	o, _ = ClientOptionsFromEnv(env(map[string]string{"REDIS_HOST": "a", "REDIS_PASSWORD": "p", "SIDEKIQ_REDIS_PORT": "7000"}), "SIDEKIQ_REDIS_")
	if o.Addr != "a:6379" || o.Password != "p" {
		t.Errorf("SIDEKIQ_REDIS_ should inherit REDIS_: %+v", o)
	}
	o, _ = ClientOptionsFromEnv(env(map[string]string{"REDIS_PASSWORD": "p", "SIDEKIQ_REDIS_HOST": "b"}), "SIDEKIQ_REDIS_")
	if o.Addr != "b:6379" || o.Password != "" {
		t.Errorf("SIDEKIQ_REDIS_HOST set: REDIS_PASSWORD must not be inherited: %+v", o)
	}
	if _, err := ClientOptionsFromEnv(env(map[string]string{"REDIS_SENTINELS": "a:26379"}), ""); !errors.Is(err, ErrSentinel) {
		t.Errorf("sentinels: %v", err)
	}
	// Sentinel settings are refused by name, not read as localhost:6379.
	if _, err := ClientOptionsFromEnv(env(map[string]string{"SIDEKIQ_REDIS_SENTINELS": "10.0.0.5:26379", "SIDEKIQ_REDIS_SENTINEL_MASTER": "m"}),
		"SIDEKIQ_REDIS_"); !errors.Is(err, ErrSentinel) || !strings.Contains(err.Error(), "SIDEKIQ_REDIS_SENTINELS") {
		t.Errorf("SIDEKIQ_REDIS_SENTINELS: %v", err)
	}
	if _, err := ClientOptionsFromEnv(env(map[string]string{"REDIS_URL": "http://user:hunter2@x"}), ""); err == nil || contains([]string{err.Error()}, "hunter2") {
		t.Errorf("bad URL: %v", err)
	}

	r := testenv.RedisTLS(t)
	o, err = ClientOptionsFromEnv(env(map[string]string{"REDIS_URL": r.URL(), EnvCAFile: r.CAFile}), "")
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(o)
	defer c.Close()
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("rediss:// with the CA: %v", err)
	}
	o, _ = ClientOptionsFromEnv(env(map[string]string{"REDIS_URL": r.URL()}), "")
	c2 := redis.NewClient(o)
	defer c2.Close()
	if err := c2.Ping(context.Background()).Err(); err == nil {
		t.Fatal("a private CA verified against the system roots")
	}
	if _, err := ClientOptionsFromEnv(env(map[string]string{"REDIS_URL": r.URL(), EnvCAFile: "/nonexistent/ca.pem"}), ""); err == nil || !strings.Contains(err.Error(), EnvCAFile) {
		t.Fatalf("missing CA file: %v, want it to name %s", err, EnvCAFile)
	}
}

// TestDropOnReadOnly fills a pool with 8 connections to the primary, then
// demotes it and moves the name. Without the hook the next write meets
// stale connections on every retry and fails with READONLY; with it, the
// first READONLY empties the pool and the write reaches the new primary.
func TestDropOnReadOnly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := testenv.NewRedis(t), testenv.NewRedis(t)
	if err := b.ReplicaOf(ctx, a); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	target := a.Addr()
	hook := DropOnReadOnly().(*readOnlyHook)
	client := func(withHook bool) *redis.Client {
		o, err := ClientOptionsFromEnv(env(map[string]string{"REDIS_URL": "rediss://default:" + a.Password + "@redis.fediops.test:25061", EnvCAFile: a.CAFile}), "")
		if err != nil {
			t.Fatal(err)
		}
		o.PoolSize, o.MaxRetries = 8, 3
		o.Dialer = func(ctx context.Context, network, _ string) (net.Conn, error) {
			mu.Lock()
			addr := target
			mu.Unlock()
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return tls.Client(c, o.TLSConfig), nil
		}
		c := redis.NewClient(o)
		if withHook {
			c.AddHook(hook)
		}
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() { defer wg.Done(); c.Do(ctx, "DEBUG", "SLEEP", "0.05") }()
		}
		wg.Wait()
		if n := c.PoolStats().TotalConns; n != 8 {
			t.Fatalf("pool holds %d connections, want 8", n)
		}
		return c
	}
	plain, hooked := client(false), client(true)
	defer plain.Close()
	defer hooked.Close()

	if err := b.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.ReplicaOf(ctx, b); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	target = b.Addr()
	mu.Unlock()

	if err := plain.Set(ctx, "k", "plain", 0).Err(); !redis.IsReadOnlyError(err) {
		t.Errorf("without the hook: %v, want READONLY after 3 retries on stale connections", err)
	}
	for i := range 5 {
		if err := hooked.Set(ctx, "k"+strconv.Itoa(i), "hooked", 0).Err(); err != nil {
			t.Fatalf("with the hook, write %d: %v", i, err)
		}
	}
	hook.mu.Lock()
	defer hook.mu.Unlock()
	if n := len(hook.conns); n > 2 {
		t.Errorf("with the hook %d connections are still open", n)
	}
}

// Without a URL, a bad PORT or DB is named as that variable, not as a URL
// the admin never wrote.
func TestClientOptionsFromEnvNamesTheBadPart(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"REDIS_HOST": "h", "REDIS_DB": "two", "REDIS_PASSWORD": "hunter2"}, "REDIS_DB"},
		{map[string]string{"REDIS_HOST": "h", "REDIS_PORT": "63x9", "REDIS_PASSWORD": "hunter2"}, "REDIS_PORT"},
		{map[string]string{"CACHE_REDIS_HOST": "h", "CACHE_REDIS_PORT": "99999"}, "CACHE_REDIS_PORT"},
	} {
		prefix := "REDIS_"
		if _, ok := tc.env["CACHE_REDIS_HOST"]; ok {
			prefix = "CACHE_REDIS_"
		}
		_, err := ClientOptionsFromEnv(env(tc.env), prefix)
		if err == nil {
			t.Errorf("%v: no error", tc.env)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, tc.want) || strings.Contains(msg, "URL") || strings.Contains(msg, "hunter2") {
			t.Errorf("%v: %q, want it to name %s (and no URL, no password)", tc.env, msg, tc.want)
		}
	}
}
