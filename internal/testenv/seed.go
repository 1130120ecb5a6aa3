package testenv

// SeedEnv returns the .env.production snippets of the seed's infrastructure
// document (shared/seed/000_658d7f77d0744beb.txt) verbatim, in the
// document's order (Puma, Streaming, PostgreSQL, Object Store), one blank
// line apart. Its DB_PASS is unquoted with a '$', which Rails and the
// streaming server read differently.
func SeedEnv() string {
	return `WEB_CONCURRENCY=3
MAX_THREADS=9

# Streaming
STREAMING_API_BASE_URL=wss://streaming.vmst.io
DB_SSLMODE=require
NODE_EXTRA_CA_CERTS=/path/to/certs/do-internal.crt

# PostgreSQL
DB_HOST=path-to-postgres-database.ondigitalocean.com
DB_PORT=25061
DB_NAME=the_mastodon_connection_pool
DB_USER=the_mastodon_user
DB_PASS=Ourpassw0rd!sNoneofyourbu$iness
PREPARED_STATEMENTS=false

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
`
}
