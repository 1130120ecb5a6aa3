package pgpool_test

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/pgpool"
)

// The seed's .env.production: the pooled config for the app, the direct
// one for migrations. Without a CA, DB_SSLMODE=require connects unverified
// and says so; set FEDIOPS_DB_CA_FILE (FetchCA writes it) to verify.
func Example() {
	const file = `DB_HOST=path-to-postgres-database.ondigitalocean.com
DB_PORT=25061
DB_NAME=the_mastodon_connection_pool
DB_USER=the_mastodon_user
DB_PASS='Ourpassw0rd!sNoneofyourbu$iness'
PREPARED_STATEMENTS=false
DB_SSLMODE=require
FEDIOPS_DB_DIRECT_NAME=mastodon_production
`
	env, err := fediops.ParseEnv(".env.production", []byte(file), fediops.WithEnviron(nil))
	if err != nil {
		fmt.Println(err)
		return
	}
	noTime := func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}
	log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: noTime}))

	cfg, err := pgpool.ConfigFromEnv(env.Lookup, pgpool.Options{Logger: log})
	if err != nil {
		fmt.Println(err)
		return
	}
	p, d := cfg.Pooled.ConnConfig, cfg.Direct.ConnConfig
	fmt.Printf("pooled: port %d, database %s, %v mode, statement cache %d\n", p.Port, p.Database, p.DefaultQueryExecMode, p.StatementCacheCapacity)
	fmt.Printf("direct: port %d, database %s, %v mode\n", d.Port, d.Database, d.DefaultQueryExecMode)

	// Prepared statements through the pool are refused, naming the
	// variable; here a systemd Environment= line sets it and wins.
	unit := fediops.MapLookup(map[string]string{"PREPARED_STATEMENTS": "true"})
	env2, _ := fediops.ParseEnv(".env.production", []byte(file), fediops.WithEnviron(unit))
	_, err = pgpool.ConfigFromEnv(env2.Lookup, pgpool.Options{Logger: slog.New(slog.DiscardHandler)})
	fmt.Println(errors.Is(err, pgpool.ErrPreparedStatements), err)
	// Output:
	// level=WARN msg="DB_SSLMODE=require and no CA: TLS without verifying the host; set FEDIOPS_DB_CA_FILE to DO's CA (FetchCA) to verify it" host=path-to-postgres-database.ondigitalocean.com sslmode=require
	// pooled: port 25061, database the_mastodon_connection_pool, exec mode, statement cache 0
	// direct: port 25060, database mastodon_production, cache statement mode
	// true PREPARED_STATEMENTS is "true" (true for Rails) on pool port 25061: prepared statements through a transaction pool: set PREPARED_STATEMENTS=false
}

// The seed's 4 GiB cluster with one pool of 90 and a migration's direct
// connections: the headroom, and who waits on the pool.
func ExampleBudget() {
	const pool = "the_mastodon_connection_pool"
	b := pgpool.NewBudget(4).WithPool(pool, 90).Add(
		pgpool.Web("kirk", 3, 9).Via(pool),
		pgpool.Web("spock", 3, 9).Via(pool),
		pgpool.Sidekiq("scotty", 1, 25).Via(pool),
		pgpool.Sidekiq("decker", 1, 25).Via(pool),
		pgpool.Streaming("spock", 1, 10).Via(pool),
		pgpool.Direct("migration", 5),
	)
	r := b.Report()
	fmt.Print(r)
	fmt.Println("fits:", r.Err() == nil)

	r = b.Add(pgpool.Direct("pg_dump", 3)).Report()
	fmt.Println(r.Err())
	// Output:
	// limit 97: pools 90 + direct 5 = 95, headroom 2
	// pool the_mastodon_connection_pool: size 90, clients 114
	// problem: pool the_mastodon_connection_pool: 114 clients (web kirk WEB_CONCURRENCY×DB_POOL=27 + web spock WEB_CONCURRENCY×DB_POOL=27 + sidekiq scotty DB_POOL=25 + sidekiq decker DB_POOL=25 + streaming spock DB_POOL=10) share 90 server connections: up to 24 wait in transaction mode; the limit leaves room to grow the pool by 2, else lower those variables
	// fits: true
	// over the cluster's connection limit: 98 server connections (pool the_mastodon_connection_pool size=90 + migration direct connections=5 + pg_dump direct connections=3) are 1 over the limit of 97; lower one of them by 1
}

// The lines that point Mastodon at a DO pool; (*fediops.Env).Set writes
// them into .env.production and says what changed.
func ExamplePooledSettings() {
	for _, s := range pgpool.PooledSettings("majel-do-user-1-0.b.db.ondigitalocean.com", "the_mastodon_connection_pool",
		"the_mastodon_user", "mastodon_production", "/home/mastodon/live/do-ca.crt", "") {
		fmt.Printf("%s=%s\n", s.Key, s.Value)
	}
	// Output:
	// DB_HOST=majel-do-user-1-0.b.db.ondigitalocean.com
	// DB_PORT=25061
	// DB_NAME=the_mastodon_connection_pool
	// DB_USER=the_mastodon_user
	// PREPARED_STATEMENTS=false
	// DB_SSLMODE=require
	// NODE_EXTRA_CA_CERTS=/home/mastodon/live/do-ca.crt
	// FEDIOPS_DB_CA_FILE=/home/mastodon/live/do-ca.crt
	// FEDIOPS_DB_DIRECT_NAME=mastodon_production
}
