// Command demo runs fediops end to end on a local stand-in of a
// DigitalOcean-hosted Mastodon (package devstack) and prints a report:
// PostgreSQL behind pgBouncer (transaction mode, TLS with a private CA),
// TLS-only Redis behind a redistls tunnel, MariaDB, and stand-ins for
// Spaces, Backblaze B2, the DigitalOcean API and Mastodon's web and
// streaming health endpoints. It reads the stack's .env.production back,
// seeds it, then runs plan, health, backup, a restore drill and a media
// mirror. With -serve the stack then stays up for the other programs to be
// tried on, until Ctrl-C.
//
// `demo -h` lists the flags. Exit status: 0 when every step passed (with
// -serve: and the stack was stopped by Ctrl-C, SIGTERM or SIGHUP), 1 when
// a step failed or the run was interrupted, 2 on bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os/signal"
	"syscall"
	"time"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/command"
	"github.com/fediops/fediops/devstack"
	"github.com/fediops/fediops/spaces"
)

func main() { command.Main("demo", run) }

var help = command.Help{
	Usage: "demo [-serve] [-keep] [flags]",
	About: `Starts a local stand-in of a DigitalOcean-hosted Mastodon's services (real
PostgreSQL 15, pgBouncer 1.18, Redis 7 and MariaDB from the Debian packages;
stand-ins for Spaces, B2, the DigitalOcean API, web and streaming, all on
127.0.0.1), writes its .env.production, seeds it and runs fediops against
it: plan, health, backup, restore drill, media mirror. Takes a few seconds
once built. Ctrl-C stops every server.

With -serve the stack stays up after the run: the demo prints the
.env.production it wrote and commands to try every program on it
(provision against the DigitalOcean stand-in, health, tunnel, backup,
plan), and stops everything on Ctrl-C, SIGTERM or SIGHUP. The servers die
with the demo even when it is killed.

The stack's files (.env.production, stack.env, certificates, logs) are in a
new temporary directory, removed at the end unless -keep is given or a step
failed. Logs: the packages' warnings; info lines too on a terminal, debug
lines with -v.`,
	Exit: [3]string{
		"every step passed (with -serve: then stopped by Ctrl-C, SIGTERM or SIGHUP)",
		"a step failed, or the run was interrupted before it ended",
		"a usage error: a bad flag or argument",
	},
}

type options struct {
	serve, keep, mysql, verbose bool
	media, statuses             int
}

func parse(p *command.Program, args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.BoolVar(&o.serve, "serve", false, "keep the stack up after the run, print commands to try on it, stop on Ctrl-C")
	fs.BoolVar(&o.keep, "keep", false, "keep the stack's directory (data, certificates, logs, .env.production) after it stops")
	fs.BoolVar(&o.mysql, "mysql", true, "also start MariaDB and back up a WriteFreely-like database with mysqldump")
	fs.BoolVar(&o.verbose, "v", false, "log the packages' debug messages too")
	fs.IntVar(&o.media, "media", 300, "media objects to put into the Space (at least 1)")
	fs.IntVar(&o.statuses, "statuses", 4000, "statuses rows to seed (at least 1)")
	if err := p.Parse(fs, args, help); err != nil {
		return o, err
	}
	switch {
	case o.media < 1:
		return o, command.Usagef("-media must be at least 1")
	case o.statuses < 1:
		return o, command.Usagef("-statuses must be at least 1")
	}
	return o, nil
}

func run(ctx context.Context, p *command.Program, args []string) error {
	o, err := parse(p, args)
	if err != nil {
		return err
	}
	log := p.Logger(o.verbose)
	stdout := p.Stdout

	fmt.Fprintf(stdout, "fediops demo: a local stand-in of a DigitalOcean-hosted Mastodon\n\n")
	st, rep := runJob(ctx, jobConfig{
		Stack: devstack.Config{MySQL: o.mysql, Logger: log},
		Seed:  devstack.SeedConfig{MediaObjects: o.media, Statuses: o.statuses},
		Out:   stdout, Log: log,
	})
	failed := !rep.OK()
	fmt.Fprintln(stdout)
	rep.WriteTable(stdout)
	if st != nil && !failed && o.serve && ctx.Err() == nil {
		// A closed terminal (SIGHUP) stops the stack as Ctrl-C does.
		sctx, stop := signal.NotifyContext(ctx, syscall.SIGHUP)
		serve(sctx, st, stdout)
		stop()
		err := st.Close(o.keep)
		fmt.Fprintf(stdout, "\nevery server stopped%s\n", kept(o.keep, st))
		return err
	}
	keep := o.keep || (failed && ctx.Err() == nil)
	if st != nil {
		t0 := time.Now()
		if err := st.Close(keep); err != nil {
			log.Warn("close", "err", err)
		}
		fmt.Fprintf(stdout, "\nservers stopped in %s%s\n", time.Since(t0).Round(time.Millisecond), kept(keep, st))
	}
	switch {
	case ctx.Err() != nil:
		return errors.New("interrupted; every server stopped")
	case failed:
		if err := rep.Err(); err != nil {
			return errors.New(oneLine(err.Error()))
		}
		return errors.New("a step did not pass")
	}
	return nil
}

func kept(keep bool, st *devstack.Stack) string {
	if !keep {
		return ""
	}
	return fmt.Sprintf("; kept %s (logs: %s/*/*.log)", st.Dir, st.Dir)
}

// spacesClient is the Spaces client Mastodon's S3_* settings describe.
func spacesClient(env *fediops.Env) (*spaces.Client, error) {
	cfg, err := spaces.ConfigFromEnv(env.Lookup)
	if err != nil {
		return nil, err
	}
	return spaces.New(cfg)
}
