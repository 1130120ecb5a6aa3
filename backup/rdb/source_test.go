package rdb_test

import (
	"strings"
	"testing"

	"github.com/fediops/fediops/backup/rdb"
)

func TestRedisFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	// The seed: Mastodon talks plain Redis to the local tunnel.
	s, err := rdb.SourceFromEnv(env(map[string]string{"REDIS_HOST": "127.0.0.1", "REDIS_PORT": "6379", "REDIS_PASSWORD": "s3cret"}))
	if err != nil || s.Host != "127.0.0.1" || s.Port != 6379 || s.Password != "s3cret" || s.TLS {
		t.Fatalf("host/port: %+v %v", s, err)
	}
	// Defaults, as Mastodon's.
	if s, err = rdb.SourceFromEnv(env(nil)); err != nil || s.Host != "localhost" || s.Port != 6379 {
		t.Fatalf("defaults: %+v %v", s, err)
	}
	// REDIS_URL wins; rediss:// means TLS.
	s, err = rdb.SourceFromEnv(env(map[string]string{"REDIS_HOST": "ignored", "REDIS_URL": "rediss://default:pw@redis.example.test:25061/0"}))
	if err != nil || s.Host != "redis.example.test" || s.Port != 25061 || s.User != "default" || s.Password != "pw" || !s.TLS {
		t.Fatalf("url: %+v %v", s, err)
	}
	for _, c := range []struct {
		env  map[string]string
		name string
	}{
		{map[string]string{"REDIS_PORT": "63x9"}, "REDIS_PORT"},
		{map[string]string{"REDIS_URL": "http://default:topsecret@h:1"}, "REDIS_URL"},
		{map[string]string{"REDIS_SENTINELS": "a:26379"}, "REDIS_SENTINELS"},
	} {
		_, err := rdb.SourceFromEnv(env(c.env))
		if err == nil || !strings.Contains(err.Error(), c.name) || strings.Contains(err.Error(), "topsecret") {
			t.Errorf("%v: %v, want an error naming %s without the password", c.env, err, c.name)
		}
	}
}
