package devstack_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/devstack"
	"github.com/fediops/fediops/tiers/health"
)

// Start a stack, seed it and run the instance's health checks on it, built
// from its .env.production as on a real instance. (Not run by go test: it
// starts servers.)
func Example() {
	ctx := context.Background()
	st, err := devstack.Start(ctx, devstack.Config{MySQL: true})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close(false)
	if _, err := st.Seed(ctx, devstack.SeedConfig{}); err != nil {
		log.Fatal(err)
	}
	env, err := fediops.ReadEnv(st.EnvFile)
	if err != nil {
		log.Fatal(err)
	}
	checks, closeAll := health.ChecksFromEnv(ctx, env.Lookup, health.Options{
		Web: []string{st.Web}, Streaming: []string{st.Streaming}, SpacesKey: st.MediaKeys[0]})
	defer closeAll()
	for _, r := range health.Run(ctx, 10*time.Second, checks...).Results {
		fmt.Println(r.Status, r.Name, r.Detail)
	}
	fmt.Println("try the programs with: .", st.ShellFile)
}
