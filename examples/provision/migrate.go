package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/command"
	"github.com/fediops/fediops/pgpool"
)

var migrateHelp = command.Help{
	Usage: "provision migrate-env --to direct|pooled [-env FILE] [-db NAME] [-force]",
	About: `Switches .env.production for a schema migration: --to direct points DB_* at the
database behind the pool (DO's port 25060; FEDIOPS_DB_DIRECT_NAME or -db names it)
after keeping the file's bytes beside it; --to pooled writes those exact bytes back.
Both rewrite the file atomically (temp file and rename, mode kept).`,
	Env: []command.Var{
		{Name: "DB_*, DATABASE_URL", About: "the pooled settings the file holds (read from -env)"},
		{Name: "FEDIOPS_DB_DIRECT_NAME", About: "the database behind the pool (default: -db, else the pool's)"},
		{Name: "FEDIOPS_DB_DIRECT_PORT", About: "the direct port when not 25060"},
	},
	Exit: [3]string{
		0: "the file was switched",
		2: "a usage or configuration error: a bad flag, a missing or malformed file, --to direct when the file is already direct, --to pooled when it is not, a file edited while direct (without -force)",
	},
}

// runMigrateEnv is `provision migrate-env`: pgpool's reversible migration mode.
func runMigrateEnv(_ context.Context, p *command.Program, args []string) error {
	fs := flag.NewFlagSet("provision migrate-env", flag.ContinueOnError)
	envPath := fs.String("env", ".env.production", "Mastodon's settings `file`")
	to := fs.String("to", "", "`direct` (bypass the pool) or pooled (the original bytes back); required")
	db := fs.String("db", "", "--to direct: the `database` behind the pool (default FEDIOPS_DB_DIRECT_NAME)")
	force := fs.Bool("force", false, "--to pooled: restore although the file was edited meanwhile")
	if err := p.Parse(fs, args, migrateHelp); err != nil {
		return err
	}
	if *to != "direct" && *to != "pooled" {
		return command.Usagef("migrate-env: --to must be direct or pooled")
	}
	if _, _, err := p.ReadEnv(*envPath, fediops.WithEnviron(nil)); err != nil { // the file as it is: its lint findings
		return err
	}
	var err error
	if *to == "direct" {
		var ep pgpool.Endpoint
		if ep, err = pgpool.ToDirect(*envPath, pgpool.Options{DirectDatabase: *db}); err == nil {
			fmt.Fprintf(p.Stdout, "%s now points at %s (no pool): run the migration, then migrate-env --to pooled\n", *envPath, ep)
		}
	} else if err = pgpool.ToPooled(*envPath, *force); err == nil {
		fmt.Fprintf(p.Stdout, "%s holds its pooled original again\n", *envPath)
	}
	var pe *fediops.ParseError
	if errors.As(err, &pe) || errors.Is(err, os.ErrNotExist) {
		return command.Usage(err)
	}
	for _, usage := range []error{pgpool.ErrInvalid, pgpool.ErrNoDirect, pgpool.ErrAlreadyDirect, pgpool.ErrNotDirect, pgpool.ErrEnvChanged} {
		if errors.Is(err, usage) {
			return command.Usage(err)
		}
	}
	return err
}
