// Command demo runs fediops end to end on a local stand-in of a
// DigitalOcean-hosted Mastodon and prints a report: PostgreSQL behind
// pgBouncer (transaction mode, TLS with a private CA), TLS-only Redis behind
// an in-process redistls tunnel, s3fake as Spaces, b2fake as Backblaze B2,
// and MariaDB. It writes the stack's .env.production, seeds it, then runs
// plan, health, backup, a restore drill and a media mirror (internal/demo).
// Ctrl-C stops every server; nothing is left running.
//
// Exit status: 0 when every step passed, 1 when one failed, 2 on bad usage.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fediops/fediops/internal/demo"
	"github.com/fediops/fediops/internal/testenv"
)

const usage = `usage: demo [flags]

Starts a local stand-in of a DigitalOcean-hosted Mastodon's services (real
PostgreSQL 15, pgBouncer 1.18, Redis 7 and MariaDB from the Debian packages;
in-process S3 and B2 fakes), writes its .env.production, seeds it and runs
fediops against it: plan, health, backup, restore drill, media mirror. Takes
a few seconds once built. Ctrl-C stops everything; -keep leaves the stack's directory
(data, certificates, logs, .env.production) for inspection.

Exit status: 0 all steps passed, 1 a step failed, 2 bad usage.

`

func main() {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage); fs.PrintDefaults() }
	keep := fs.Bool("keep", false, "keep the stack's directory after the run")
	mysql := fs.Bool("mysql", true, "also start MariaDB and back up a WriteFreely-like database with mysqldump")
	verbose := fs.Bool("v", false, "log the packages' info messages to stderr")
	media := fs.Int("media", 300, "media objects to put into the Space")
	statuses := fs.Int("statuses", 4000, "statuses rows to seed")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if err == flag.ErrHelp {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if fs.NArg() > 0 || *media < 1 || *statuses < 1 {
		fmt.Fprintln(os.Stderr, "demo: takes no arguments, and -media and -statuses must be at least 1")
		fs.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop) // the first signal cancels ctx; a second one ends the process
	os.Exit(run(ctx, *keep, *mysql, *verbose, *media, *statuses))
}

func run(ctx context.Context, keep, mysql, verbose bool, media, statuses int) int {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	stack, err := testenv.NewStack("")
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	fmt.Printf("fediops demo: local stand-ins in %s\n\n", stack.Dir)
	rep, err := demo.Run(ctx, demo.Config{Stack: stack, MySQL: mysql, MediaObjects: media, Statuses: statuses,
		Out: os.Stdout, Logger: log})
	failed := err != nil || rep == nil || !rep.OK()
	t0 := time.Now()
	keepDir := keep || (failed && ctx.Err() == nil)
	if cerr := stack.Close(keepDir); cerr != nil {
		fmt.Fprintln(os.Stderr, "demo: close:", cerr)
	}
	if rep != nil {
		fmt.Println()
		rep.WriteTable(os.Stdout)
	}
	fmt.Printf("\nservers stopped in %s", time.Since(t0).Round(time.Millisecond))
	if keepDir {
		fmt.Printf("; kept %s (logs: %s/*/*.log)", stack.Dir, stack.Dir)
	}
	fmt.Println()
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "demo: interrupted; every server stopped")
		return 1
	}
	if failed {
		if rep == nil {
			fmt.Fprintln(os.Stderr, "demo:", err)
		}
		return 1
	}
	return 0
}
