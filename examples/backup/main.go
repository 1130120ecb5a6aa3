// Command backup takes encrypted database backups to Backblaze B2 and
// restores, verifies, lists and prunes them (package backup and its
// subpackages do the work).
//
//	backup run      dump every source → zstd → age → B2, prune, notify Slack
//	backup list     complete backups (and orphans) in the bucket
//	backup restore  -source postgres -to-database scratch -identity key.txt
//	backup verify   restore drill (scratch database or RDB file), row or key counts compared
//	backup prune    apply retention now (-dry-run to only report)
//	backup units    print the systemd service and timer (every 4 hours) for `run` with the flags given
//	backup mirror   Spaces media → B2, only the latest copy kept (backup mirror -h)
//
// Settings come from the environment and -env (.env.production, the
// environment winning); exit status 1 for a failure at run time, 2 for bad
// usage or settings.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/b2store"
	"github.com/fediops/fediops/backup/metricsnotify"
	"github.com/fediops/fediops/backup/slacknotify"
)

const help = `usage: backup run|list|restore|verify|prune|units [flags]
       backup mirror [flags]   (see backup mirror -h)

PostgreSQL: pg_dump and pg_restore take the direct connection (DO's port
25060, never the pgBouncer pool) and its TLS decision from Mastodon's
settings, as every fediops tool does: DB_HOST, DB_PORT, DB_NAME, DB_USER,
DB_PASS, DB_SSLMODE (or DATABASE_URL). When they name the pool
(DB_PORT=25061 or FEDIOPS_DB_POOLED=true) add FEDIOPS_DB_DIRECT_NAME, the
database behind it, and FEDIOPS_DB_DIRECT_PORT when the pool is not on
25061 (FEDIOPS_DB_DIRECT_HOST when the database has another host).
FEDIOPS_DB_CA_FILE (or NODE_EXTRA_CA_CERTS) names the cluster's CA: the
server is then verified (sslmode=verify-full). provision writes these.
Redis: REDIS_URL or REDIS_HOST, REDIS_PORT, REDIS_PASSWORD. MySQL: MYSQL_*.
B2: B2_APPLICATION_KEY_ID, B2_APPLICATION_KEY, B2_BUCKET (B2_API_BASE,
B2_RETRY_FOR). SLACK_WEBHOOK_URL, FEDIOPS_METRICS_DIR,
FEDIOPS_PUSHGATEWAY_URL, BACKUP_AGE_RECIPIENTS.

Exit status: 0 ok, 1 a failure at run time, 2 bad usage or settings.

`

func main() {
	if len(os.Args) > 1 && os.Args[1] == "mirror" { // Spaces media → B2: examples/backup/mirror.go
		os.Exit(mirrorMain(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(backupMain(os.Args[1:], os.Stdout, os.Stderr))
}

// backupMain runs one command and returns the exit status.
func backupMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var s settings
	s.register(fs)
	fs.Usage = func() { fmt.Fprint(fs.Output(), help); fs.PrintDefaults() }
	if len(args) < 1 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fs.Usage()
		return map[bool]int{true: 2, false: 0}[len(args) < 1]
	}
	cmd := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return map[bool]int{true: 0, false: 2}[errors.Is(err, flag.ErrHelp)]
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "backup: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	err := runCommand(cmd, &s, fs, stdout, stderr)
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, "backup:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "backup:", err)
		return 1
	}
}

func runCommand(cmd string, s *settings, fs *flag.FlagSet, stdout, stderr io.Writer) error {
	switch cmd {
	case "run", "list", "restore", "verify", "prune", "units":
	default:
		return usage(fmt.Errorf("unknown command %q (want run, list, restore, verify, prune, units or mirror)", cmd))
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(40 << 20) // keeps peak RSS near 50 MiB: the GC runs before the heap doubles
	}
	tty := false
	if f, ok := stderr.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	// quiet under cron and systemd: only problems; progress and info on a terminal
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: map[bool]slog.Level{true: slog.LevelInfo, false: slog.LevelWarn}[tty]}))
	env, err := fediops.ReadEnv(s.envFile) // the environment wins, as in Rails
	if err != nil {
		return usage(err)
	}
	for _, f := range env.Lint() {
		fmt.Fprintf(stderr, "backup: warning: %s\n", f)
	}
	lookup := s.lookup(env)

	// Every local setting is checked before the first network call.
	if cmd == "units" || cmd == "run" {
		sources, err := s.buildSources(lookup, log)
		if err != nil {
			return usage(err)
		}
		sealer, err := s.sealer(lookup)
		if err != nil {
			return usage(err)
		}
		if cmd == "units" {
			return printUnits(s, fs, stdout)
		}
		return runBackup(s, lookup, sources, sealer, log, tty, stderr)
	}
	b2cfg, err := b2store.ConfigFromEnv(lookup)
	if err != nil {
		return usage(err)
	}
	b2cfg.Logger = log
	ctx, stop := signalContext(s.stopGrace, log) // exits 1 if still running s.stopGrace after SIGTERM
	defer stop()
	store, err := b2store.Open(ctx, b2cfg)
	if err != nil {
		return err
	}
	switch cmd {
	case "list":
		cat, err := backup.Scan(ctx, store, s.prefix)
		if err != nil {
			return err
		}
		writeCatalog(stdout, cat)
		return nil
	case "prune":
		res, err := backup.Prune(ctx, store, s.prefix, "", s.retention(), time.Now(), s.dryRun)
		writePrune(stdout, res)
		return err
	}
	// restore, verify
	unsealer, err := s.unsealer(cmd)
	if err != nil {
		return usage(err)
	}
	cat, err := backup.Scan(ctx, store, s.prefix)
	if err != nil {
		return err
	}
	e, err := cat.Find(s.source, s.id)
	if err != nil {
		return err
	}
	m, err := backup.ReadManifest(ctx, store, e)
	if err != nil {
		return err
	}
	if cmd == "verify" {
		v, err := s.verifier(lookup, m.Kind, log)
		if err != nil {
			return usage(err)
		}
		rep, err := v.Run(ctx, store, m, unsealer)
		for _, t := range rep.Tables {
			fmt.Fprintf(stdout, "%-40s source %10d  restored %10d\n", t.Table, t.Source, t.Restored)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "verify OK: %s restored into %s in %s\n", m.Object, rep.Scratch, rep.Duration.Round(time.Second))
		return nil
	}
	dst, err := s.target(lookup, m.Kind, log)
	if err != nil {
		return usage(err)
	}
	st, err := backup.Restore(ctx, store, m, unsealer, dst)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %s: %s, sha256 %s OK\n", m.Object, backup.HumanBytes(st.DumpBytes), st.SHA256)
	return nil
}

// runBackup backs up every source, prunes and notifies.
func runBackup(s *settings, lookup fediops.Lookup, sources []backup.Source, sealer backup.Sealer, log *slog.Logger, tty bool, stderr io.Writer) error {
	b2cfg, err := b2store.ConfigFromEnv(lookup)
	if err != nil {
		return usage(err)
	}
	b2cfg.Logger = log
	release, err := backup.Lock(s.lockFile)
	if err != nil {
		return err
	}
	defer release()
	ctx, stop := signalContext(s.stopGrace, log) // exits 1 if still running s.stopGrace after SIGTERM
	defer stop()
	store, err := b2store.Open(ctx, b2cfg)
	if err != nil {
		return err
	}
	r := &backup.Runner{Pipeline: backup.Pipeline{Store: store, Prefix: s.prefix, Sealer: sealer, Logger: log},
		Sources: sources, Retention: s.retention(),
		Notifiers: []backup.Notifier{backup.LogNotifier{Logger: log}, metricsnotify.NotifierFromEnv(lookup)}}
	if hook, ok := lookup("SLACK_WEBHOOK_URL"); ok && hook != "" {
		r.Notifiers = append(r.Notifiers, &slacknotify.Notifier{WebhookURL: hook})
	}
	if tty {
		r.Progress = func(src string) io.Writer { return progressbar.DefaultBytes(-1, src) }
	}
	rep, err := r.Run(ctx)
	if tty || err != nil {
		fmt.Fprintf(stderr, "\n%s\n%s\n", backup.Summary(rep), backup.Details(rep))
	}
	return err
}

// printUnits prints the systemd service and timer that run `backup run` with
// the run flags given, the env file's path made absolute.
func printUnits(s *settings, fs *flag.FlagSet, stdout io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	command, err := unitCommand(exe, fs)
	if err != nil {
		return usage(err)
	}
	u := backup.Units{Command: command, EnvironmentFile: "-/etc/fediops/backup.env"}
	if s.envFile != "" {
		u.WorkingDir = filepath.Dir(command[3]) // the -env file's directory, as Mastodon's units have it
	}
	svc, timer := u.Systemd()
	fmt.Fprintf(stdout, "# /etc/systemd/system/fediops-backup.service\n%s\n# /etc/systemd/system/fediops-backup.timer\n%s", svc, timer)
	return nil
}
