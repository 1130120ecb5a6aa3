package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/b2store"
	"github.com/fediops/fediops/backup/metricsnotify"
	"github.com/fediops/fediops/backup/mirror"
	"github.com/fediops/fediops/backup/slacknotify"
	"github.com/fediops/fediops/spaces"
)

const mirrorHelp = `usage: backup mirror [flags]

Mirrors Mastodon's media from Spaces (S3_* in .env.production) to a B2
bucket, keeping only the latest copy of each object: new and changed objects
are copied, objects gone from Spaces and replaced versions are deleted. A
state file in B2 (.fediops-mirror/<b2-prefix>state.json.zst) lets a run skip unchanged
objects without listing B2; the first run (and -verify) lists B2 in full. A
run that would delete more than -max-delete of the mirrored objects, or
whose Spaces listing fails, deletes nothing. Uploads ask for SSE-B2.

B2_APPLICATION_KEY_ID, B2_APPLICATION_KEY and SLACK_WEBHOOK_URL come from
the environment (or the env file); the bucket from -b2-bucket, MIRROR_B2_BUCKET
or B2_BUCKET. Exit status: 0 ok, 1 a failure at run time (refused deletions
included), 2 bad usage or settings.

`

// mirrorMain is "backup mirror": flags -> spaces.Config + mirror.Config -> Run.
func mirrorMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("backup mirror", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, mirrorHelp); fs.PrintDefaults() }
	envFile := fs.String("env", ".env.production", "Mastodon's env file (S3_*); empty for none")
	bucket := fs.String("b2-bucket", "", "target B2 bucket (default MIRROR_B2_BUCKET, else B2_BUCKET)")
	prefix := fs.String("b2-prefix", "media/", "name prefix in the bucket; the mirror lists and deletes only under it")
	apiBase := fs.String("b2-api", "", "B2 API base URL (default B2_API_BASE, else Backblaze)")
	workers := fs.Int("workers", mirror.DefaultWorkers, "transfers in flight")
	maxDelete := fs.Float64("max-delete", mirror.DefaultMaxDeleteFraction, "refuse a run deleting more than this share of the mirrored objects (-1 = no limit)")
	dryRun := fs.Bool("dry-run", false, "print what would be copied and deleted; change nothing")
	verify := fs.Bool("verify", false, "list B2 in full and reconcile it with the state")
	lock := fs.String("lock", "/run/lock/fediops-mirror.lock", "lock file that keeps runs from overlapping")
	units := fs.Bool("units", false, "print the systemd service and timer (every 4 hours) and exit")
	if err := fs.Parse(args); err != nil {
		return map[bool]int{true: 0, false: 2}[err == flag.ErrHelp]
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "backup mirror: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	env, err := fediops.ReadEnv(*envFile) // the environment wins, as in Rails
	if err != nil {
		return mirrorErr(stderr, 2, err)
	}
	for _, f := range env.Lint() {
		fmt.Fprintf(stderr, "backup mirror: warning: %s\n", f)
	}
	get := func(k string) string { v, _ := env.Lookup(k); return v }
	lookup := func(k string) (string, bool) { // the B2 settings, with the flags winning
		switch k {
		case "B2_BUCKET":
			return first(*bucket, get("MIRROR_B2_BUCKET"), get("B2_BUCKET")), true
		case "B2_API_BASE":
			return first(*apiBase, get("B2_API_BASE")), true
		}
		return env.Lookup(k)
	}
	if *units {
		exe, err := os.Executable()
		if err != nil {
			return mirrorErr(stderr, 1, err)
		}
		command := []string{exe, "mirror"}
		if *envFile != "" {
			abs, err := filepath.Abs(*envFile)
			if err != nil {
				return mirrorErr(stderr, 2, err)
			}
			command = append(command, "-env", abs)
		}
		fs.Visit(func(f *flag.Flag) {
			if f.Name != "env" && f.Name != "units" && f.Name != "dry-run" {
				command = append(command, "-"+f.Name, f.Value.String())
			}
		})
		svc, timer := mirror.Units(command)
		fmt.Fprintf(stdout, "# /etc/systemd/system/fediops-mirror.service\n%s\n# /etc/systemd/system/fediops-mirror.timer\n%s", svc, timer)
		return 0
	}
	scfg, err := spaces.ConfigFromEnv(lookup)
	if err != nil {
		return mirrorErr(stderr, 2, err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 2**workers + 4
	tr.ResponseHeaderTimeout = 2 * time.Minute
	scfg.HTTPClient = &http.Client{Transport: tr}
	src, err := spaces.New(scfg)
	if err != nil {
		return mirrorErr(stderr, 2, err)
	}
	tty := term.IsTerminal(int(os.Stderr.Fd()))
	level := map[bool]slog.Level{true: slog.LevelInfo, false: slog.LevelWarn}[tty]
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	b2cfg, err := b2store.ConfigFromEnv(lookup)
	if err != nil {
		return mirrorErr(stderr, 2, err)
	}
	cfg := mirror.Config{Source: src, SourceName: "spaces:" + scfg.Bucket, B2: b2cfg, TargetPrefix: *prefix, Workers: *workers,
		MaxDeleteFraction: *maxDelete, DryRun: *dryRun, Verify: *verify, Logger: log,
		Notifiers: []mirror.Notifier{mirror.LogNotifier{Logger: log}, metricsnotify.NotifierFromEnv(lookup)}}
	if hook := get("SLACK_WEBHOOK_URL"); hook != "" && !*dryRun {
		cfg.Notifiers = append(cfg.Notifiers, &slacknotify.Notifier{WebhookURL: hook})
	}
	if *dryRun {
		var mu sync.Mutex
		cfg.OnAction = func(a mirror.Action) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(stdout, "would %s %s (%s)\n", a.Op, a.Key, backup.HumanBytes(a.Size))
		}
	}
	m, err := mirror.New(cfg)
	if err != nil {
		return mirrorErr(stderr, 2, err)
	}
	if !*dryRun {
		release, err := backup.Lock(*lock)
		if err != nil {
			return mirrorErr(stderr, 1, err)
		}
		defer release()
	}
	ctx, stop := signalContext(defaultStopGrace, log) // exits 1 if still running 30 s after SIGTERM
	defer stop()
	rep, err := m.Run(ctx)
	if tty || err != nil || *dryRun {
		fmt.Fprintf(stderr, "%s\n%s\n", mirror.Summary(rep), mirror.Details(rep))
	}
	if err != nil {
		return mirrorErr(stderr, 1, err)
	}
	return 0
}

func mirrorErr(w io.Writer, code int, err error) int {
	fmt.Fprintln(w, "backup mirror:", err)
	return code
}

func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
