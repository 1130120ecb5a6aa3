package pgpool

import (
	"fmt"
	"log/slog"
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
