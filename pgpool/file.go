package pgpool

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/fediops/fediops/internal/envfile"
)

// FromFile reads .env.production at path as Rails does (envfile) and calls
// FromEnv with its values. Each envfile.Lint finding about a DB_*,
// DATABASE_URL or PREPARED_STATEMENTS line is logged as a warning, since
// there Rails and the streaming server would connect differently (the
// seed's unquoted DB_PASS with a '$' reaches Rails cut short). Values set
// in the process environment are not consulted; for Rails' precedence
// call FromEnv(Layered(os.LookupEnv, file.Get), opt) yourself.
func FromFile(path string, opt Options) (*Config, error) {
	f, err := envfile.Read(path)
	if err != nil {
		return nil, fmt.Errorf("pgpool: %w", err)
	}
	log := opt.Logger
	if log == nil {
		log = slog.Default()
	}
	for _, fd := range envfile.Lint(f) {
		if strings.HasPrefix(fd.Key, "DB_") || fd.Key == "DATABASE_URL" || fd.Key == "PREPARED_STATEMENTS" {
			log.Warn("pgpool: "+fd.String(), "file", fd.File, "line", fd.Line, "key", fd.Key)
		}
	}
	return FromEnv(f.Get, opt)
}

// Setting is one .env.production key and its value, as
// (*envfile.File).SetAll takes it.
type Setting = envfile.Setting

// PooledSettings returns the .env.production settings that point Mastodon
// at a DO connection pool, for (*envfile.File).SetAll: DB_HOST host,
// DB_PORT 25061, DB_NAME pool, DB_USER user, PREPARED_STATEMENTS=false
// (transaction mode), DB_SSLMODE sslmode ("" means "require", as in DO's
// URIs); then NODE_EXTRA_CA_CERTS and FEDIOPS_DB_CA_FILE caFile, so that the
// streaming server and FromEnv verify the server with the cluster's CA
// (FetchCA writes it; give an absolute path, as the file is read from other
// working directories); and FEDIOPS_DB_DIRECT_NAME db, the database behind
// the pool, for ToDirect and the direct endpoint. An empty caFile or db
// leaves its lines out. DB_PASS is not among them: it stays as it is.
func PooledSettings(host, pool, user, db, caFile, sslmode string) []Setting {
	if sslmode == "" {
		sslmode = "require"
	}
	s := []Setting{{Key: "DB_HOST", Value: host}, {Key: "DB_PORT", Value: strconv.Itoa(PoolPort)},
		{Key: "DB_NAME", Value: pool}, {Key: "DB_USER", Value: user},
		{Key: "PREPARED_STATEMENTS", Value: "false"}, {Key: "DB_SSLMODE", Value: sslmode}}
	if caFile != "" {
		s = append(s, Setting{Key: "NODE_EXTRA_CA_CERTS", Value: caFile}, Setting{Key: EnvCAFile, Value: caFile})
	}
	if db != "" {
		s = append(s, Setting{Key: EnvDirectName, Value: db})
	}
	return s
}
