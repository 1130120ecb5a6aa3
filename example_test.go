package fediops_test

import (
	"fmt"
	"log/slog"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/pgpool"
	"github.com/fediops/fediops/spaces"
	"github.com/fediops/fediops/tiers"
)

// The seed instance's .env.production, read the way Rails reads it and
// turned into the configurations fediops's packages use.
func Example() {
	env, err := fediops.ParseEnv(".env.production", []byte(`# PostgreSQL
DB_HOST=path-to-postgres-database.ondigitalocean.com
DB_PORT=25061
DB_NAME=the_mastodon_connection_pool
DB_USER=the_mastodon_user
DB_PASS=Ourpassw0rd!sNoneofyourbu$iness
PREPARED_STATEMENTS=false
DB_SSLMODE=require
FEDIOPS_DB_DIRECT_NAME=mastodon_production
# Object Store
S3_ENABLED=true
S3_PROTOCOL=https
S3_BUCKET=ourbucketname
S3_REGION=nyc3
S3_HOSTNAME=nyc3.digitaloceanspaces.com
S3_ENDPOINT=https://nyc3.digitaloceanspaces.com
AWS_ACCESS_KEY_ID=NOTINAMILLI0NYEARS
AWS_SECRET_ACCESS_KEY=hahahahahahahahahahahahaha
S3_ALIAS_HOST=cdn.vmst.io
WEB_CONCURRENCY=3
MAX_THREADS=9
`), fediops.WithEnviron(nil)) // the file alone; ReadEnv lets the process environment win
	if err != nil {
		panic(err)
	}
	for _, f := range env.Lint() {
		fmt.Println("lint:", f.Key, "reads differently in Rails and in the streaming server")
	}

	// Without DO's CA (provision fetches it) pgpool logs that the host is
	// not verified; this example keeps the log quiet.
	db, err := pgpool.ConfigFromEnv(env.Lookup, pgpool.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	fmt.Println("pool:", db.Pool)
	fmt.Println("migrations and backups:", db.DirectEndpoint)

	s3, err := spaces.ConfigFromEnv(env.Lookup)
	if err != nil {
		panic(err)
	}
	fmt.Println("media:", s3.PublicURL("media_attachments/files/1/original/a.png"))

	web, err := tiers.PumaSizing{VCPU: 2, Nodes: 2, DBLimit: 97}.Plan()
	if err != nil {
		panic(err)
	}
	fmt.Printf("puma: WEB_CONCURRENCY=%d MAX_THREADS=%d, %d of 97 connections\n",
		web.WebConcurrency, web.MaxThreads, web.ConnectionsPerTier)
	// Output:
	// lint: DB_PASS reads differently in Rails and in the streaming server
	// pool: path-to-postgres-database.ondigitalocean.com:25061/the_mastodon_connection_pool
	// migrations and backups: path-to-postgres-database.ondigitalocean.com:25060/mastodon_production
	// media: https://cdn.vmst.io/media_attachments/files/1/original/a.png
	// puma: WEB_CONCURRENCY=3 MAX_THREADS=9, 54 of 97 connections
}
