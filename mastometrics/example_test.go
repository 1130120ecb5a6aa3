package mastometrics_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/mastometrics"
)

// A Sidekiq droplet's .env.production gets the exporter settings; the
// other lines stay as they are.
func Example() {
	dir, _ := os.MkdirTemp("", "mastometrics")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, ".env.production")
	os.WriteFile(path, []byte("LOCAL_DOMAIN=example.social\nMASTODON_PROMETHEUS_EXPORTER_ENABLED=false\n"), 0o600)

	env, err := fediops.ReadEnv(path, fediops.WithEnviron(nil))
	if err != nil {
		fmt.Println(err)
		return
	}
	settings, err := mastometrics.Settings(mastometrics.Sidekiq)
	if err != nil {
		fmt.Println(err)
		return
	}
	changes, err := env.Set(settings...)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range changes {
		fmt.Println(c)
	}
	if err := env.Save(); err != nil {
		fmt.Println(err)
		return
	}
	b, _ := os.ReadFile(path)
	fmt.Print(string(b))
	// Output:
	// set MASTODON_PROMETHEUS_EXPORTER_ENABLED=true (was "false")
	// set MASTODON_PROMETHEUS_EXPORTER_LOCAL=false (was unset)
	// set MASTODON_PROMETHEUS_EXPORTER_SIDEKIQ_DETAILED_METRICS=true (was unset)
	// LOCAL_DOMAIN=example.social
	// MASTODON_PROMETHEUS_EXPORTER_ENABLED='true'
	// MASTODON_PROMETHEUS_EXPORTER_LOCAL='false'
	// MASTODON_PROMETHEUS_EXPORTER_SIDEKIQ_DETAILED_METRICS='true'
}
