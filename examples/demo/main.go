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
// Exit status: 0 when every step passed (with -serve: and the stack was
// stopped by Ctrl-C or SIGTERM), 1 when a step failed or the run was
// interrupted, 2 on bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/devstack"
	"github.com/fediops/fediops/spaces"
)

const usage = `usage: demo [-serve] [flags]

Starts a local stand-in of a DigitalOcean-hosted Mastodon's services (real
PostgreSQL 15, pgBouncer 1.18, Redis 7 and MariaDB from the Debian packages;
stand-ins for Spaces, B2, the DigitalOcean API, web and streaming, all on
127.0.0.1), writes its .env.production, seeds it and runs fediops against
it: plan, health, backup, restore drill, media mirror. Takes a few seconds
once built. Ctrl-C stops every server.

With -serve the stack stays up after the run: the demo prints the
.env.production it wrote and commands to try every program on it
(provision against the DigitalOcean stand-in, health, tunnel, backup,
plan), and stops everything on Ctrl-C or SIGTERM. The servers die with
the demo even when it is killed.

No environment variable is read. The stack's files (.env.production,
stack.env, certificates, logs) are in a new temporary directory, removed
at the end unless -keep is given or a step failed.

Exit status: 0 every step passed (with -serve: then stopped by Ctrl-C or
SIGTERM), 1 a step failed or the run was interrupted, 2 bad usage.

Flags:
`

// usageError is a command-line mistake: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	context.AfterFunc(ctx, stop) // the first signal cancels ctx; a second one ends the process
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	serve, keep, mysql, verbose bool
	media, statuses             int
}

func parse(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage); fs.PrintDefaults() }
	fs.BoolVar(&o.serve, "serve", false, "keep the stack up after the run, print commands to try on it, stop on Ctrl-C")
	fs.BoolVar(&o.keep, "keep", false, "keep the stack's directory (data, certificates, logs, .env.production) after it stops")
	fs.BoolVar(&o.mysql, "mysql", true, "also start MariaDB and back up a WriteFreely-like database with mysqldump")
	fs.BoolVar(&o.verbose, "v", false, "log the packages' info and debug messages to stderr")
	fs.IntVar(&o.media, "media", 300, "media objects to put into the Space (at least 1)")
	fs.IntVar(&o.statuses, "statuses", 4000, "statuses rows to seed (at least 1)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, usageError{fmt.Sprintf("unexpected argument %q: demo takes flags only", fs.Arg(0))}
	case o.media < 1:
		return o, usageError{"-media must be at least 1"}
	case o.statuses < 1:
		return o, usageError{"-statuses must be at least 1"}
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(stderr, "demo:", err)
		}
		return 2
	}
	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

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
		serve(ctx, st, stdout)
		if err := st.Close(o.keep); err != nil {
			fmt.Fprintln(stderr, "demo:", err)
		}
		fmt.Fprintf(stdout, "\nevery server stopped%s\n", kept(o.keep, st))
		return 0
	}
	keep := o.keep || (failed && ctx.Err() == nil)
	if st != nil {
		t0 := time.Now()
		if err := st.Close(keep); err != nil {
			fmt.Fprintln(stderr, "demo:", err)
		}
		fmt.Fprintf(stdout, "\nservers stopped in %s%s\n", time.Since(t0).Round(time.Millisecond), kept(keep, st))
	}
	switch {
	case ctx.Err() != nil:
		fmt.Fprintln(stderr, "demo: interrupted; every server stopped")
		return 1
	case failed:
		if err := rep.Err(); err != nil {
			fmt.Fprintln(stderr, "demo:", oneLine(err.Error()))
		}
		return 1
	}
	return 0
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
