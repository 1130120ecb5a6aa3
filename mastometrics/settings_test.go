package mastometrics_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/mastometrics"
)

// The seed's droplets share one .env.production shape; each tier's
// settings are applied to a file on disk, saved, and read back the way
// Rails reads it: the exporter switches read "true" exactly (Mastodon
// compares with == 'true'), LOCAL reads "false", and nothing else moved.
func TestSettingsApplyToEnvFile(t *testing.T) {
	const seed = "LOCAL_DOMAIN=example.social\nDB_PASS='Ourpassw0rd!sNoneofyourbu$iness'\n# exporter\nMASTODON_PROMETHEUS_EXPORTER_LOCAL=true\n"
	for _, tc := range []struct {
		tiers    []mastometrics.Tier
		want     map[string]string
		notSet   []string
		nChanges int
	}{
		{[]mastometrics.Tier{mastometrics.Web}, map[string]string{mastometrics.EnvEnabled: "true", mastometrics.EnvLocal: "false", mastometrics.EnvWebDetailed: "true"},
			[]string{mastometrics.EnvSidekiqDetailed}, 3},
		{[]mastometrics.Tier{mastometrics.Sidekiq}, map[string]string{mastometrics.EnvEnabled: "true", mastometrics.EnvLocal: "false", mastometrics.EnvSidekiqDetailed: "true"},
			[]string{mastometrics.EnvWebDetailed}, 3},
		{[]mastometrics.Tier{mastometrics.Streaming}, map[string]string{mastometrics.EnvLocal: "true"},
			[]string{mastometrics.EnvEnabled, mastometrics.EnvWebDetailed, mastometrics.EnvSidekiqDetailed}, 0},
		{[]mastometrics.Tier{mastometrics.Web, mastometrics.Sidekiq, mastometrics.Streaming},
			map[string]string{mastometrics.EnvEnabled: "true", mastometrics.EnvLocal: "false", mastometrics.EnvWebDetailed: "true", mastometrics.EnvSidekiqDetailed: "true"}, nil, 4},
	} {
		path := filepath.Join(t.TempDir(), ".env.production")
		if err := os.WriteFile(path, []byte(seed), 0o600); err != nil {
			t.Fatal(err)
		}
		env, err := fediops.ReadEnv(path, fediops.WithEnviron(nil))
		if err != nil {
			t.Fatal(err)
		}
		var all []fediops.Setting
		for _, tier := range tc.tiers {
			s, err := mastometrics.Settings(tier)
			if err != nil {
				t.Fatalf("%s: %v", tier, err)
			}
			all = append(all, s...)
		}
		changes, err := env.Set(all...)
		if err != nil {
			t.Fatalf("%v: %v", tc.tiers, err)
		}
		if len(changes) != tc.nChanges {
			t.Errorf("%v: %d changes %v, want %d", tc.tiers, len(changes), changes, tc.nChanges)
		}
		if err := env.Save(); err != nil {
			t.Fatal(err)
		}
		again, err := fediops.ReadEnv(path, fediops.WithEnviron(nil))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range tc.want {
			if got, ok := again.Lookup(k); !ok || got != v {
				t.Errorf("%v: %s = %q (set %v), want %q", tc.tiers, k, got, ok, v)
			}
		}
		for _, k := range tc.notSet {
			if got, ok := again.Lookup(k); ok {
				t.Errorf("%v: %s set to %q", tc.tiers, k, got)
			}
		}
		if got := again.Get("DB_PASS"); got != "Ourpassw0rd!sNoneofyourbu$iness" {
			t.Errorf("%v: DB_PASS reads %q after the rewrite", tc.tiers, got)
		}
		if f := again.Lint(); len(f) != 0 {
			t.Errorf("%v: findings after the rewrite: %v", tc.tiers, f)
		}
		// Planned again, nothing is left to change.
		if changes, err := again.Set(all...); err != nil || len(changes) != 0 {
			t.Errorf("%v: second plan: %v %v", tc.tiers, changes, err)
		}
	}
}

func TestStatsDSettings(t *testing.T) {
	env, err := fediops.ParseEnv(".env.production", []byte("LOCAL_DOMAIN=example.social\n"), fediops.WithEnviron(nil))
	if err != nil {
		t.Fatal(err)
	}
	web, err := mastometrics.StatsDSettings(mastometrics.Web, "127.0.0.1:9125")
	if err != nil {
		t.Fatal(err)
	}
	sk, err := mastometrics.StatsDSettings(mastometrics.Sidekiq, "127.0.0.1:9125")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Set(append(web, sk...)...); err != nil {
		t.Fatal(err)
	}
	if env.Get("STATSD_ADDR") != "127.0.0.1:9125" || env.Get("STATSD_SIDEKIQ") != "true" {
		t.Errorf("STATSD_ADDR=%q STATSD_SIDEKIQ=%q", env.Get("STATSD_ADDR"), env.Get("STATSD_SIDEKIQ"))
	}
	for _, s := range web {
		if s.Key == "STATSD_SIDEKIQ" {
			t.Error("web droplets get STATSD_SIDEKIQ")
		}
	}
	if s, err := mastometrics.StatsDSettings(mastometrics.Streaming, "127.0.0.1:9125"); err != nil || len(s) != 0 {
		t.Errorf("streaming: %v %v", s, err)
	}
	if _, err := mastometrics.StatsDSettings(mastometrics.Web, "localhost"); err == nil {
		t.Error("an address without a port is accepted")
	}
}

func TestUnknownTier(t *testing.T) {
	_, err := mastometrics.Settings("opensearch")
	if !errors.Is(err, mastometrics.ErrUnknownTier) || err.Error() != `exporter settings for "opensearch": unknown tier (want web, sidekiq or streaming)` {
		t.Errorf("err = %v", err)
	}
	if _, err := mastometrics.StatsDSettings("db", "127.0.0.1:9125"); !errors.Is(err, mastometrics.ErrUnknownTier) {
		t.Errorf("err = %v", err)
	}
}
