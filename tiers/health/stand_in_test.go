package health

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/fediops/fediops/internal/testenv"
)

// webStandIn serves Mastodon's web and streaming health endpoints (both
// "OK") for the test's length and returns its URL.
func webStandIn(t testing.TB) string {
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("OK")) }
	mux.HandleFunc("GET /health", ok)
	mux.HandleFunc("GET /api/v1/streaming/health", ok)
	web := httptest.NewServer(mux)
	t.Cleanup(web.Close)
	return web.URL
}

// pooledEnv is Mastodon's DB_* for b's pool as provision leaves them (the
// direct database named, the cluster's CA in caVar: NODE_EXTRA_CA_CERTS or
// FEDIOPS_DB_CA_FILE).
func pooledEnv(b *testenv.PgBouncer, caVar string) map[string]string {
	return map[string]string{
		"DB_HOST": b.Host, "DB_PORT": strconv.Itoa(b.Port), "DB_NAME": b.Database,
		"DB_USER": b.User, "DB_PASS": b.Password, "DB_SSLMODE": "require",
		"PREPARED_STATEMENTS": "false", caVar: b.CAFile,
		"FEDIOPS_DB_POOLED": "true", "FEDIOPS_DB_DIRECT_NAME": b.Backend.Database,
		"FEDIOPS_DB_DIRECT_PORT": strconv.Itoa(b.Backend.Port),
	}
}
