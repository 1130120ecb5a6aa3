package backup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Notifier tells people how a run went: LogNotifier (slog),
// backup/slacknotify (a Slack incoming webhook), backup/metricsnotify
// (Prometheus).
type Notifier interface {
	Notify(ctx context.Context, r Report) error
}

// Summary is the one-line outcome of a run.
func Summary(r Report) string {
	failed := 0
	for _, x := range r.Results {
		if x.Err != nil {
			failed++
		}
	}
	if r.Failure != nil {
		return fmt.Sprintf("*Backup FAILED* on %s: %v", r.Host, r.Failure)
	}
	if failed > 0 {
		return fmt.Sprintf("*Backup FAILED* on %s: %d of %d sources failed", r.Host, failed, len(r.Results))
	}
	return fmt.Sprintf("Backup OK on %s: %d sources in %s", r.Host, len(r.Results), r.Finished.Sub(r.Started).Round(time.Second))
}

// Details is one line per source: result, size, duration.
func Details(r Report) string {
	var b strings.Builder
	for _, x := range r.Results {
		if errors.Is(x.Err, ErrNotRun) {
			fmt.Fprintf(&b, ":x: *%s* not backed up\n", x.Source)
			continue
		}
		if x.Err != nil {
			fmt.Fprintf(&b, ":x: *%s* FAILED after %s", x.Source, x.Duration.Round(time.Millisecond))
			if x.DumpBytes > 0 || x.StoredBytes > 0 {
				fmt.Fprintf(&b, " (%s dumped, %s sent)", HumanBytes(x.DumpBytes), HumanBytes(x.StoredBytes))
			}
			fmt.Fprintf(&b, ": %s\n", x.Err)
			continue
		}
		fmt.Fprintf(&b, ":white_check_mark: *%s* %s (dump %s) in %s", x.Source, HumanBytes(x.StoredBytes),
			HumanBytes(x.DumpBytes), x.Duration.Round(time.Millisecond))
		if x.Pruned > 0 {
			fmt.Fprintf(&b, ", pruned %d old", x.Pruned)
		}
		b.WriteString("\n")
	}
	return strings.TrimSpace(b.String())
}

// HumanBytes formats a size in binary units (e.g. "79.9 MiB").
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// LogNotifier writes the report to a slog.Logger: one record per source,
// errors at level Error.
type LogNotifier struct {
	Logger *slog.Logger // nil = slog.Default()
}

// Notify logs the report.
func (l LogNotifier) Notify(ctx context.Context, r Report) error {
	lg := l.Logger
	if lg == nil {
		lg = slog.Default()
	}
	if r.Failure != nil {
		lg.ErrorContext(ctx, "backup run failed", "err", r.Failure)
	}
	for _, x := range r.Results {
		if errors.Is(x.Err, ErrNotRun) {
			continue
		}
		if x.Err != nil {
			lg.ErrorContext(ctx, "backup source failed", "source", x.Source, "duration", x.Duration, "err", x.Err)
			continue
		}
		lg.InfoContext(ctx, "backup source ok", "source", x.Source, "object", x.Object, "stored_bytes", x.StoredBytes,
			"dump_bytes", x.DumpBytes, "duration", x.Duration, "pruned", x.Pruned)
	}
	return nil
}
