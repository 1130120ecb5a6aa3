package health_test

import (
	"context"
	"fmt"
	"time"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/tiers/health"
)

// Two checks run concurrently, each under a timeout; the report says
// which failed. Checks from .env.production come from ChecksFromEnv.
func ExampleRun() {
	checks := []health.Check{
		health.CheckFunc("web kirk", func(context.Context) (string, error) { return "200 OK", nil }),
		health.ErrCheck("redis", func(context.Context) error { return fmt.Errorf("dial 127.0.0.1:6379: connection refused") }),
	}
	rep := health.Run(context.Background(), 5*time.Second, checks...)
	fmt.Println(rep.Summary(), rep.OK())
	for _, r := range rep.Results {
		fmt.Println(r.Name, r.Status, r.Detail+r.Error)
	}
	// Output:
	// fail: redis false
	// web kirk ok 200 OK
	// redis fail dial 127.0.0.1:6379: connection refused
}

// The seed's settings on a web node: what health -prometheus -db-size 4
// exports about the database's connection budget. Nothing is dialed until
// Run or a scrape.
func ExampleNewExporter() {
	env := map[string]string{
		"DB_HOST": "majel.db.ondigitalocean.test", "DB_PORT": "25061", "DB_NAME": "the_mastodon_connection_pool",
		"DB_USER": "the_mastodon_user", "DB_PASS": "Ourpassw0rd!sNoneofyourbu", "DB_SSLMODE": "require",
		"PREPARED_STATEMENTS": "false", "WEB_CONCURRENCY": "3", "MAX_THREADS": "9",
		"REDIS_HOST": "127.0.0.1", "REDIS_PORT": "6379",
	}
	e, err := health.NewExporter(context.Background(), fediops.MapLookup(env), health.ExportOptions{
		Serve: true, DBSizeGiB: 4, Cluster: "majel",
		Options: health.Options{Web: []string{}, Streaming: []string{}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close()
	fmt.Print(e.Budget)
	for _, c := range e.Checks {
		fmt.Println("check:", c.Name())
	}
	// Output:
	// limit 97: pools 27 + direct 0 = 27, headroom 70
	// pool the_mastodon_connection_pool: size 27, clients 27
	// check: database
	// check: redis
	// check: sidekiq
}
