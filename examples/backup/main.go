// Command backup takes encrypted database backups to Backblaze B2 and
// restores, verifies, lists and prunes them (package backup does the work).
//
//	backup run      dump every source → zstd → age → B2, prune, notify Slack
//	backup list     complete backups (and orphans) in the bucket
//	backup restore  -source postgres -to-database scratch -identity key.txt
//	backup verify   restore drill (scratch database or RDB file), row or key counts compared
//	backup prune    apply retention now (-dry-run to only report)
//	backup units    print the systemd service and timer (every 4 hours)
//	backup mirror   Spaces media → B2, only the latest copy kept (backup mirror -h)
//
// B2_*, SLACK_WEBHOOK_URL from the environment, DB_*/REDIS_* from .env.production; exit 1 run-time, 2 usage.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/b2store"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "mirror" { // Spaces media → B2: examples/backup/mirror.go
		os.Exit(mirrorMain(os.Args[2:], os.Stdout, os.Stderr))
	}
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	var s backup.Settings
	s.RegisterFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: backup run|list|restore|verify|prune|units [flags]\n       backup mirror [flags]   (see backup mirror -h)\n\n")
		fs.PrintDefaults()
	}
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		fs.Usage()
		os.Exit(map[bool]int{true: 2, false: 0}[len(os.Args) < 2])
	}
	cmd := os.Args[1]
	if err := fs.Parse(os.Args[2:]); err != nil {
		os.Exit(map[bool]int{true: 0, false: 2}[errors.Is(err, flag.ErrHelp)])
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(40 << 20) // keeps peak RSS near 50 MiB: the GC runs before the heap doubles
	}
	tty := term.IsTerminal(int(os.Stderr.Fd()))
	// quiet under cron and systemd: only problems; progress and info on a terminal
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: map[bool]slog.Level{true: slog.LevelInfo, false: slog.LevelWarn}[tty]}))
	if cmd == "units" {
		exe, _ := os.Executable()
		svc, timer := backup.Units{ExecStart: exe + " run"}.Systemd()
		fmt.Printf("# /etc/systemd/system/fediops-backup.service\n%s\n# /etc/systemd/system/fediops-backup.timer\n%s", svc, timer)
		return
	}
	lookup, err := s.Lookup()
	usage(err)
	b2cfg, err := b2store.ConfigFromEnv(lookup)
	usage(err)
	b2cfg.Logger = log
	ctx, stop := backup.SignalContext(s.StopGrace, log) // exits 1 if still running s.StopGrace after SIGTERM
	defer stop()
	store, err := b2store.Open(ctx, b2cfg)
	fail(err)
	switch cmd {
	case "run":
		release, err := backup.Lock(s.LockFile)
		fail(err)
		defer release()
		sources, err := s.BuildSources(lookup)
		usage(err)
		p, err := s.Pipeline(lookup, store, log)
		usage(err)
		r := &backup.Runner{Pipeline: p, Sources: sources, Retention: s.Retention(),
			Notifiers: []backup.Notifier{backup.LogNotifier{Logger: log}, backup.MetricsNotifierFromEnv(lookup)}}
		if hook, ok := lookup("SLACK_WEBHOOK_URL"); ok && hook != "" {
			r.Notifiers = append(r.Notifiers, &backup.SlackNotifier{WebhookURL: hook})
		}
		if tty {
			r.Progress = func(src string) io.Writer { return progressbar.DefaultBytes(-1, src) }
		}
		rep, err := r.Run(ctx)
		if tty || err != nil {
			fmt.Fprintf(os.Stderr, "\n%s\n%s\n", backup.Summary(rep), backup.Details(rep))
		}
		fail(err)
	case "list":
		cat, err := backup.Scan(ctx, store, s.Prefix)
		fail(err)
		backup.WriteCatalog(os.Stdout, cat)
	case "restore", "verify":
		if s.Identity == "" {
			usage(errors.New("-identity (the age private key file) is required to " + cmd))
		}
		ids, err := backup.ParseIdentities(s.Identity)
		usage(err)
		cat, err := backup.Scan(ctx, store, s.Prefix)
		fail(err)
		e, err := cat.Find(s.Source, s.ID)
		fail(err)
		m, err := backup.ReadManifest(ctx, store, e)
		fail(err)
		if cmd == "verify" {
			v, err := s.Verifier(lookup, m.Kind)
			usage(err)
			rep, err := v.Run(ctx, store, m, ids)
			for _, t := range rep.Tables {
				fmt.Printf("%-40s source %10d  restored %10d\n", t.Table, t.Source, t.Restored)
			}
			fail(err)
			fmt.Printf("verify OK: %s restored into %s in %s\n", m.Object, rep.Scratch, rep.Duration.Round(time.Second))
			return
		}
		dst, err := s.Target(lookup, m.Kind)
		usage(err)
		st, err := backup.Restore(ctx, store, m, ids, dst)
		fail(err)
		fmt.Printf("restored %s: %s, sha256 %s OK\n", m.Object, backup.HumanBytes(st.DumpBytes), st.SHA256)
	case "prune":
		res, err := backup.Prune(ctx, store, s.Prefix, "", s.Retention(), time.Now(), s.DryRun)
		backup.WritePrune(os.Stdout, res)
		fail(err)
	default:
		usage(fmt.Errorf("unknown command %q", cmd))
	}
}

func usage(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "backup:", err)
		os.Exit(2)
	}
}

func fail(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "backup:", err)
		os.Exit(1)
	}
}
