package mirror

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/fediops/fediops/backup"
)

// Report is one Mirror run.
type Report struct {
	Host, Source, Target string
	Started, Finished    time.Time
	DryRun               bool // counts are what would have been done
	Verified             bool // B2 was listed in full (first run, -verify, after an unclean run)
	Interrupted          bool // ctx was cancelled; the state was saved for the next run

	Listed        int // source objects listed
	ListedBytes   int64
	Unchanged     int // skipped: the state says B2 has them
	Copied        int // new and changed objects copied
	CopiedBytes   int64
	Deleted       int // objects gone from the source, removed from B2
	DeletedBytes  int64
	StaleVersions int // old B2 versions removed (overwritten, or found by a full listing)
	Refused       int // deletions refused by the shrink guard or a failed listing
	B2Versions    int // versions seen by a full B2 listing
	Cancelled     int // unfinished large files (of killed runs) cancelled
	Retries       int // object transfers tried again
	StateSaves    int

	Errors       int      // objects that failed
	ErrorSamples []string // the first few failures
	Err          error    // what Run returned before notifying
}

// Failed reports whether the run did not do everything it should have.
func (r Report) Failed() bool { return r.Err != nil || r.Errors > 0 }

func (r *Report) objectErr() error {
	if r.Errors == 0 {
		return nil
	}
	return fmt.Errorf("%d objects failed, first: %s", r.Errors, strings.Join(r.ErrorSamples[:min(1, len(r.ErrorSamples))], ""))
}

// Summary is the one-line outcome of a mirror run.
func Summary(r Report) string {
	d := r.Finished.Sub(r.Started).Round(time.Second)
	verb := "copied"
	if r.DryRun {
		verb = "would copy"
	}
	line := fmt.Sprintf("%s → %s on %s: %s %d objects (%s), deleted %d (%s), %d errors, %d unchanged, in %s",
		r.Source, r.Target, r.Host, verb, r.Copied, backup.HumanBytes(r.CopiedBytes), r.Deleted, backup.HumanBytes(r.DeletedBytes),
		r.Errors, r.Unchanged, d)
	switch {
	case r.Err != nil || r.Errors > 0:
		return "*Media mirror FAILED* " + line
	case r.DryRun:
		return "Media mirror dry run " + line
	}
	return "Media mirror OK " + line
}

// Details is the body of the message: what else happened, and why it
// failed.
func Details(r Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listed %d objects (%s)", r.Listed, backup.HumanBytes(r.ListedBytes))
	if r.StaleVersions > 0 {
		fmt.Fprintf(&b, ", removed %d old versions", r.StaleVersions)
	}
	if r.Verified {
		fmt.Fprintf(&b, ", full B2 listing (%d versions)", r.B2Versions)
	}
	if r.Retries > 0 {
		fmt.Fprintf(&b, ", %d retries", r.Retries)
	}
	if r.Interrupted {
		b.WriteString(", interrupted (the next run resumes)")
	}
	b.WriteString("\n")
	if r.Refused > 0 {
		fmt.Fprintf(&b, ":warning: %d deletions refused\n", r.Refused)
	}
	if r.Err != nil {
		fmt.Fprintf(&b, ":x: %v\n", r.Err)
	}
	for _, s := range r.ErrorSamples {
		fmt.Fprintf(&b, "• %s\n", s)
	}
	return strings.TrimSpace(b.String())
}

// Notifier tells people how a mirror run went: LogNotifier,
// backup/slacknotify and backup/metricsnotify are Notifiers; Via adapts
// any backup.Notifier.
type Notifier interface {
	NotifyMirror(ctx context.Context, r Report) error
}

// Via sends mirror reports through a backup.Notifier that only knows
// backup Reports, as one Result named "media mirror".
func Via(n backup.Notifier) Notifier { return via{n} }

type via struct{ n backup.Notifier }

func (v via) NotifyMirror(ctx context.Context, r Report) error {
	return v.n.Notify(ctx, r.BackupReport())
}

// BackupReport is r as a backup Report: one Result whose StoredBytes are
// the bytes copied and Pruned the objects deleted.
func (r Report) BackupReport() backup.Report {
	res := backup.Result{Source: "media mirror", Object: r.Target, StoredBytes: r.CopiedBytes, DumpBytes: r.ListedBytes,
		Duration: r.Finished.Sub(r.Started), Pruned: r.Deleted}
	if r.Failed() {
		res.Err = r.Err
		if res.Err == nil {
			res.Err = r.objectErr()
		}
	}
	return backup.Report{Host: r.Host, Started: r.Started, Finished: r.Finished, Results: []backup.Result{res}}
}

// LogNotifier logs a mirror run: one record, at level Error when it
// failed.
type LogNotifier struct {
	Logger *slog.Logger // nil = slog.Default()
}

// NotifyMirror logs the run.
func (l LogNotifier) NotifyMirror(ctx context.Context, r Report) error {
	lg := l.Logger
	if lg == nil {
		lg = slog.Default()
	}
	args := []any{"source", r.Source, "target", r.Target, "copied", r.Copied, "copied_bytes", r.CopiedBytes,
		"deleted", r.Deleted, "deleted_bytes", r.DeletedBytes, "old_versions", r.StaleVersions, "unchanged", r.Unchanged,
		"errors", r.Errors, "duration", r.Finished.Sub(r.Started), "dry_run", r.DryRun, "verified", r.Verified}
	if r.Failed() {
		lg.ErrorContext(ctx, "media mirror failed", append(args, "err", r.Err, "samples", r.ErrorSamples)...)
		return nil
	}
	lg.InfoContext(ctx, "media mirror ok", args...)
	return nil
}

// Units renders the systemd service and timer for the mirror: every 4
// hours, like the database backups, under its own name ("fediops-mirror")
// so that the two never block each other. command is the whole command,
// e.g. {"/usr/local/bin/backup", "mirror", "-env", "/home/mastodon/live/.env.production"};
// writable are the paths the run writes (its lock's directory, the
// metrics directory; none = /run/lock).
func Units(command []string, writable ...string) (service, timer string) {
	return backup.Units{Name: "fediops-mirror", Description: "fediops media mirror Spaces → B2 (fediops-mirror)",
		Command: command, OnCalendar: "01/4:30", ReadWritePaths: writable}.Systemd()
}
