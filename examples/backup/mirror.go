package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/mirror"
	"github.com/fediops/fediops/command"
	"github.com/fediops/fediops/spaces"
)

var mirrorHelp = command.Help{
	Usage: "backup mirror [-env FILE] [-b2-bucket NAME] [-b2-prefix media/] [-dry-run] [-units] [flags]",
	About: `Mirrors Mastodon's media from Spaces (S3_* in -env) to a B2 bucket, keeping
only the latest copy of each object: new and changed objects are copied
(-workers in parallel, SSE-B2 at rest), objects gone from Spaces and replaced
versions are deleted. A state file in B2 (.fediops-mirror/<b2-prefix>state.json.zst)
lets a run skip unchanged objects without listing B2; the first run (and
-verify) lists B2 in full. A run that would delete more than -max-delete of
the mirrored objects, or whose Spaces listing fails, deletes nothing.

Every run notifies Slack and the metrics, also when it fails before it
starts (a setting refused, the lock held, B2 unreachable) or is stopped by
SIGTERM (within -stop-grace, its state saved for the next run). On a
terminal it shows the bytes copied, their rate and the objects done. -units
prints the systemd service and timer (every 4 hours) for the flags given.`,
	Env: vars(command.Var{Name: "S3_*, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY", About: "the Space (S3_ENABLED=true, S3_BUCKET, S3_ENDPOINT, S3_REGION ...)"},
		command.Var{Name: "MIRROR_B2_BUCKET", About: "the target bucket (default B2_BUCKET; -b2-bucket wins)"},
		envB2, envNote),
	Exit: [3]string{
		"mirrored (or, with -dry-run, planned; with -units, printed)",
		"a runtime failure: objects that failed, deletions refused, Spaces or B2 unreachable, the lock held (notified)",
		"a usage or configuration error (a bad flag, -env, S3_*, the B2 settings), found before any network call (notified once the settings could be read)",
	},
	More: []string{"the mirror ran, but a notification (Slack, the metrics) failed"},
}

func runMirror(ctx context.Context, p *command.Program, args []string) error {
	fs := flag.NewFlagSet("backup mirror", flag.ContinueOnError)
	var c common
	c.register(fs, true)
	bucket := fs.String("b2-bucket", "", "target B2 `bucket` (default MIRROR_B2_BUCKET, else B2_BUCKET)")
	prefix := fs.String("b2-prefix", "media/", "name `prefix` in the bucket; the mirror lists and deletes only under it")
	workers := fs.Int("workers", mirror.DefaultWorkers, "transfers in flight")
	maxDelete := fs.Float64("max-delete", mirror.DefaultMaxDeleteFraction, "refuse a run deleting more than this share of the mirrored objects (-1 = no limit)")
	dryRun := fs.Bool("dry-run", false, "print what would be copied and deleted; change nothing")
	verify := fs.Bool("verify", false, "list B2 in full and reconcile it with the state")
	lock := fs.String("lock", "/run/lock/fediops-mirror.lock", "lock `file` that keeps runs from overlapping")
	stopGrace := fs.Duration("stop-grace", defaultStopGrace, "after SIGINT or SIGTERM: save the state, notify and exit 1 within this time")
	units := fs.Bool("units", false, "print the systemd service and timer (every 4 hours) for these flags, and exit")
	exe := fs.String("exe", "", "-units: the program's absolute `path` in ExecStart (default: this binary's)")
	if err := p.Parse(fs, args, mirrorHelp); err != nil {
		return err
	}
	s, envErr := c.open(p)
	lookup := func(k string) (string, bool) { // the B2 settings, with the flags winning
		if k == "B2_BUCKET" {
			return cmp.Or(*bucket, s.get("MIRROR_B2_BUCKET"), s.get("B2_BUCKET")), true
		}
		return s.lookup(k)
	}
	if *units {
		if envErr != nil {
			return envErr
		}
		path, err := executable(*exe)
		if err != nil {
			return err
		}
		cmd, err := unitCommand([]string{path, "mirror"}, fs, map[string]bool{"units": true, "dry-run": true, "exe": true})
		if err != nil {
			return command.Usage(err)
		}
		svc, timer := mirror.Units(cmd, writable(*lock, s.get("FEDIOPS_METRICS_DIR"))...)
		fmt.Fprintf(p.Stdout, "# /etc/systemd/system/fediops-mirror.service\n%s\n# /etc/systemd/system/fediops-mirror.timer\n%s", svc, timer)
		return nil
	}
	slack, metrics, hookErr := s.notifiers()
	notifiers := []mirror.Notifier{mirror.LogNotifier{Logger: s.log}, metrics}
	if slack != nil && !*dryRun {
		notifiers = append(notifiers, slack)
	}
	b2cfg, b2Err := s.b2Config(lookup)
	// abort reports a run that ends before it starts.
	abort := func(cause error) error {
		now := time.Now()
		rep := mirror.Report{Source: "spaces", Target: "b2://" + b2cfg.Bucket + "/" + *prefix, Started: now, Finished: now, Err: cause, DryRun: *dryRun}
		rep.Host, _ = os.Hostname()
		return abortErr(cause, backup.NotifyAll(ctx, notifiers, func(ctx context.Context, n mirror.Notifier) error { return n.NotifyMirror(ctx, rep) }))
	}

	// Every local setting, before the first network call.
	if err := firstErr(envErr, hookErr, b2Err, checkStopGrace(*stopGrace)); err != nil {
		return abort(command.Usage(err))
	}
	scfg, err := spaces.ConfigFromEnv(s.lookup)
	if err != nil {
		return abort(command.Usage(err))
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 2**workers + 4
	tr.ResponseHeaderTimeout = 2 * time.Minute
	scfg.HTTPClient = &http.Client{Transport: tr}
	src, err := spaces.New(scfg)
	if err != nil {
		return abort(command.Usage(err))
	}
	cfg := mirror.Config{Source: src, SourceName: "spaces:" + scfg.Bucket, B2: b2cfg, TargetPrefix: *prefix, Workers: *workers,
		MaxDeleteFraction: *maxDelete, DryRun: *dryRun, Verify: *verify, Logger: s.log, Notifiers: notifiers}
	if *dryRun {
		var mu sync.Mutex
		cfg.OnAction = func(a mirror.Action) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(p.Stdout, "would %s %s (%s)\n", a.Op, a.Key, backup.HumanBytes(a.Size))
		}
	}
	var bar *meter // on a terminal, once the run starts
	var copied, deleted atomic.Int64
	cfg.Progress = progressTo(&bar)
	cfg.OnDone = func(a mirror.Action) {
		if a.Op == "copy" || a.Op == "update" {
			copied.Add(1)
		} else {
			deleted.Add(1)
		}
		bar.describe("mirror: %d copied, %d deleted", copied.Load(), deleted.Load())
	}
	m, err := mirror.New(cfg)
	if err != nil {
		return abort(command.Usage(err))
	}
	if !*dryRun {
		release, err := backup.Lock(*lock)
		if err != nil {
			return abort(err)
		}
		defer release()
	}
	ctx, disarm := withStopGrace(ctx, *stopGrace, s.log)
	defer disarm()
	if !*dryRun {
		bar = s.con.start(-1, "mirror")
	}
	rep, err := m.Run(ctx)
	bar.finish()
	if s.con != nil || err != nil || *dryRun {
		fmt.Fprintf(p.Stderr, "%s\n%s\n", mirror.Summary(rep), mirror.Details(rep))
	}
	return outcome(rep.Failed(), err)
}

// progressTo counts into *bar once it is set (nil: nothing).
func progressTo(bar **meter) io.Writer {
	return writerFunc(func(p []byte) (int, error) { return (*bar).Write(p) })
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
