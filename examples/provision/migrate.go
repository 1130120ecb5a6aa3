package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/pgpool"
)

// migrateEnv is `provision migrate-env`: pgpool's reversible migration mode.
func migrateEnv(path, to, db string, force bool, extra []string, stdout io.Writer, say func(int, error) int) int {
	if len(extra) > 0 {
		return say(2, fmt.Errorf("migrate-env: unexpected arguments %q", extra))
	}
	var err error
	var ep pgpool.Endpoint
	switch to {
	case "direct":
		if ep, err = pgpool.ToDirect(path, pgpool.Options{DirectDatabase: db}); err == nil {
			fmt.Fprintf(stdout, "%s now points at %s (no pool): run the migration, then migrate-env --to pooled\n", path, ep)
		}
	case "pooled":
		if err = pgpool.ToPooled(path, force); err == nil {
			fmt.Fprintf(stdout, "%s holds its pooled original again\n", path)
		}
	default:
		return say(2, errors.New("migrate-env: --to must be direct or pooled"))
	}
	var pe *fediops.ParseError
	if errors.As(err, &pe) || errors.Is(err, pgpool.ErrInvalid) || errors.Is(err, pgpool.ErrNoDirect) || errors.Is(err, os.ErrNotExist) {
		return say(2, err)
	} else if err != nil {
		return say(1, err)
	}
	return 0
}
