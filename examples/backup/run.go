package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"

	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/command"
)

// runFlags are `run`'s flags; `units` takes the same and carries the ones
// given into the unit's command line.
type runFlags struct {
	common
	db             dbFlags
	sources        string
	prefix         string
	recipients     []string
	recipientFiles []string
	keepFor        time.Duration
	keepLast       int
	lock           string
	stopGrace      time.Duration
	zstdLevel      string
	zstdWorkers    int
}

// pathFlags of run hold file names, which units makes absolute.
var pathFlags = map[string]bool{"env": true, "redis-cacert": true, "recipient-file": true, "lock": true}

func (f *runFlags) register(fs *flag.FlagSet) {
	f.common.register(fs, true)
	f.db.register(fs)
	fs.StringVar(&f.sources, "sources", "postgres,redis", "what to back up, comma-separated: postgres, redis, mysql")
	fs.StringVar(&f.prefix, "prefix", "db/", "object name `prefix` in the bucket")
	fs.Var(listFlag{&f.recipients}, "recipient", "age public `key` (age1...) to encrypt to (repeatable; also BACKUP_AGE_RECIPIENTS)")
	fs.Var(listFlag{&f.recipientFiles}, "recipient-file", "`file` of age public keys, one a line (repeatable)")
	fs.DurationVar(&f.keepFor, "keep", backup.DefaultKeepFor, "keep backups this long")
	fs.IntVar(&f.keepLast, "keep-last", backup.DefaultKeepLast, "never keep fewer than this many newest backups per source")
	fs.StringVar(&f.lock, "lock", "/run/lock/fediops-backup.lock", "lock `file` that keeps runs from overlapping (cron and the systemd unit must share it)")
	fs.DurationVar(&f.stopGrace, "stop-grace", defaultStopGrace, "after SIGINT or SIGTERM: cancel the unfinished upload, notify, and exit 1 within this time")
	fs.StringVar(&f.zstdLevel, "zstd-level", "default", "zstd `level`: fastest, default, better, best")
	fs.IntVar(&f.zstdWorkers, "zstd-workers", 1, "goroutines compressing 2 MiB segments in parallel (1: one streaming encoder)")
}

var runHelp = command.Help{
	Usage: "backup run [-env FILE] [-sources postgres,redis,mysql] [-recipient age1...] [flags]",
	About: `Backs up every source in -sources: pg_dump -Fc over PostgreSQL's direct
connection (never the pgBouncer pool), redis-cli --rdb over TLS, mysqldump
--single-transaction; each streams through zstd, then age to the public keys
(-recipient, -recipient-file, BACKUP_AGE_RECIPIENTS), into B2, with no
temporary file. A backup is listed only once its manifest is stored; a failed
one leaves nothing listed and cancels its unfinished upload. After each
source's backup the retention prunes its old ones (-keep, -keep-last).

Every run that gets past its flags notifies: one Slack message
(SLACK_WEBHOOK_URL) and the metrics (FEDIOPS_METRICS_DIR,
FEDIOPS_PUSHGATEWAY_URL), also when it fails before its first dump (a setting
refused, the lock held, B2 unreachable or its key refused) or is stopped by
SIGTERM, which it reports within -stop-grace. Every local setting is checked
before any network call. On a terminal it shows the bytes dumped, their rate
and the sources done, and logs each B2 retry; without one it prints nothing
when it succeeds.`,
	Env: vars(envPostgres, envRedis, envMySQL, envAge, envB2, envNote),
	Exit: [3]string{
		"every source was backed up, and every notifier told",
		"a source, B2, the retention or the lock failed (the failure was notified)",
		"a usage or configuration error (a bad flag, -env, a CA file, a recipient), found before any network call (notified once the settings could be read)",
	},
	More: []string{"the backups were stored, but a notification (Slack, the metrics) failed"},
}

func runRun(ctx context.Context, p *command.Program, args []string) error {
	fs := flag.NewFlagSet("backup run", flag.ContinueOnError)
	var f runFlags
	f.register(fs)
	if err := p.Parse(fs, args, runHelp); err != nil {
		return err
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(40 << 20) // keeps peak RSS near 50 MiB: the GC runs before the heap doubles
	}
	s, envErr := f.open(p)
	slack, metrics, hookErr := s.notifiers()
	r := &backup.Runner{Pipeline: backup.Pipeline{Prefix: f.prefix, Logger: s.log},
		Retention: backup.Retention{KeepFor: f.keepFor, KeepLast: f.keepLast},
		Notifiers: []backup.Notifier{backup.LogNotifier{Logger: s.log}, metrics}}
	if slack != nil {
		r.Notifiers = append(r.Notifiers, slack)
	}
	names, namesErr := sourceNames(f.sources)
	// abort reports a run that ends before its first dump.
	abort := func(cause error) error {
		_, nerr := r.Abort(ctx, names, cause)
		return abortErr(cause, nerr)
	}

	// Every local setting, before the first network call.
	if err := firstErr(envErr, hookErr, command.Usage(namesErr), checkStopGrace(f.stopGrace)); err != nil {
		return abort(command.Usage(err))
	}
	var err error
	if r.Sources, err = f.db.buildSources(names, s.lookup, s.log); err != nil {
		return abort(command.Usage(err))
	}
	if r.Sealer, err = sealer(f.recipients, f.recipientFiles, f.zstdLevel, f.zstdWorkers, s.lookup); err != nil {
		return abort(command.Usage(err))
	}
	b2cfg, err := s.b2Config(nil)
	if err != nil {
		return abort(err)
	}
	if f.keepLast < 1 || f.keepFor <= 0 {
		return abort(command.Usagef("-keep %s -keep-last %d: want a positive duration and at least 1", f.keepFor, f.keepLast))
	}

	release, err := backup.Lock(f.lock)
	if err != nil {
		return abort(err)
	}
	defer release()
	ctx, disarm := withStopGrace(ctx, f.stopGrace, s.log)
	defer disarm()
	store, err := openStore(ctx, b2cfg)
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("interrupted: %w", context.Cause(ctx))
		}
		return abort(err)
	}
	r.Store = store
	var m *meter
	done := 0
	r.Progress = func(src string) io.Writer {
		if s.con == nil {
			return nil
		}
		m.finish()
		done++
		m = s.con.start(-1, fmt.Sprintf("%s (%d of %d)", src, done, len(r.Sources)))
		return m
	}
	rep, err := r.Run(ctx)
	m.finish()
	if s.con != nil || rep.Failed() {
		fmt.Fprintf(p.Stderr, "%s\n%s\n", backup.Summary(rep), backup.Details(rep))
	}
	return outcome(rep.Failed(), err)
}

// firstErr is the first of errs that is not nil.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
