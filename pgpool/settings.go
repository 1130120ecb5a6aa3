package pgpool

import (
	"strconv"

	"github.com/fediops/fediops"
)

// PooledSettings returns the .env.production settings that point Mastodon
// at a DO connection pool, for (*fediops.Env).Set: DB_HOST host,
// DB_PORT 25061, DB_NAME pool, DB_USER user, PREPARED_STATEMENTS=false
// (transaction mode), DB_SSLMODE sslmode ("" means "require", as in DO's
// URIs); then NODE_EXTRA_CA_CERTS and FEDIOPS_DB_CA_FILE caFile, so that the
// streaming server and FromEnv verify the server with the cluster's CA
// (FetchCA writes it; give an absolute path, as the file is read from other
// working directories); and FEDIOPS_DB_DIRECT_NAME db, the database behind
// the pool, for ToDirect and the direct endpoint. An empty caFile or db
// leaves its lines out. DB_PASS is not among them: it stays as it is.
func PooledSettings(host, pool, user, db, caFile, sslmode string) []fediops.Setting {
	if sslmode == "" {
		sslmode = "require"
	}
	s := []fediops.Setting{{Key: "DB_HOST", Value: host}, {Key: "DB_PORT", Value: strconv.Itoa(PoolPort)},
		{Key: "DB_NAME", Value: pool}, {Key: "DB_USER", Value: user},
		{Key: "PREPARED_STATEMENTS", Value: "false"}, {Key: "DB_SSLMODE", Value: sslmode}}
	if caFile != "" {
		s = append(s, fediops.Setting{Key: "NODE_EXTRA_CA_CERTS", Value: caFile}, fediops.Setting{Key: EnvCAFile, Value: caFile})
	}
	if db != "" {
		s = append(s, fediops.Setting{Key: EnvDirectName, Value: db})
	}
	return s
}
