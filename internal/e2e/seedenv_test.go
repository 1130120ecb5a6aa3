package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops/internal/testenv"
)

// TestSeedEnvWarns: every program that reads -env, given the seed's
// .env.production (unquoted DB_PASS=Ourpassw0rd!sNoneofyourbu$iness),
// prints a warning naming DB_PASS at its line, as "<program>: warning:",
// and no secret of the file anywhere in its output. The process
// environment points the database and Redis at closed loopback ports (it
// wins over the file, as in Rails) and provision at the DO stand-in, so
// no program leaves this machine.
func TestSeedEnvWarns(t *testing.T) {
	dir := t.TempDir()
	seed := filepath.Join(dir, ".env.production")
	if err := os.WriteFile(seed, []byte(testenv.SeedEnv()), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := writeFile(t, dir, "redis.conf", "[redis]\nclient = yes\naccept = 127.0.0.1:6390\nconnect = localhost:25061\n")
	f := newFakeDO(t)
	local := Env("DB_HOST=127.0.0.1", "DB_PORT=1", "REDIS_HOST=127.0.0.1", "REDIS_PORT=1", "S3_ENABLED=false")
	for _, c := range []struct {
		prog string
		env  []string
		args []string
		code int
	}{
		{"provision", Env("DIGITALOCEAN_TOKEN="+doToken, "DIGITALOCEAN_API_URL="+f.url), []string{"-env", seed, "-cluster", clusterID, "-cdn-cert-id", certID}, 0},
		{"provision", Env(), []string{"migrate-env", "-env", seed, "--to", "pooled"}, 2},
		// The seed's NODE_EXTRA_CA_CERTS names a file this machine lacks: a
		// configuration error, reported before any check runs.
		{"health", local, []string{"-env", seed, "-web", "http://" + freeAddr(t), "-streaming", "http://" + freeAddr(t), "-timeout", "2s"}, 2},
		{"tunnel", Env(), []string{"-check", "-config", conf, "-env", seed}, 0},
		{"plan", Env(), []string{"sidekiq", "-budget", "50", "-env", seed}, 0},
	} {
		start := time.Now()
		r := Run(t, c.prog, c.env, c.args...)
		warning := c.prog + ": warning: " + seed + ":14: DB_PASS: "
		if r.Code != c.code || strings.Count(r.Stderr, warning) != 1 {
			t.Errorf("want exit %d and one line %q on stderr; %s", c.code, warning, r)
		}
		NoSecret(t, r.Output(), SeedSecrets...)
		t.Logf("%s: exit %d in %s", strings.Join(r.Args, " "), r.Code, time.Since(start).Round(time.Millisecond))
	}
}
