package droplets_test

import (
	"fmt"
	"time"

	"github.com/fediops/fediops/tiers/droplets"
)

// The names the package gives: droplets of a scale-out and snapshots of a
// refresh. DigitalOcean refuses "_" in a droplet name, so a tier named
// sidekiq_push gets droplets named sidekiq-push-NN.
func ExampleHostname() {
	fmt.Println(droplets.Hostname("sidekiq_push") + "-01")
	fmt.Println(droplets.CheckDropletName("sidekiq_push-01"))
	fmt.Println(droplets.SnapshotName("web", time.Date(2026, 11, 26, 3, 7, 0, 0, time.UTC)))
	// Output:
	// sidekiq-push-01
	// droplet name "sidekiq_push-01": not a valid droplet name: use letters, digits, '.' and '-', ending with a letter or digit, at most 255
	// web-20261126-0307
}
