package backup

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/slack-go/slack"
)

// Notifier tells people how a run went: SlackNotifier (incoming webhook),
// LogNotifier (slog).
type Notifier interface {
	Notify(ctx context.Context, r Report) error
}

// SlackNotifier posts one message per run to a Slack incoming webhook
// (SLACK_WEBHOOK_URL): a line per source with size, duration and result;
// a failed run is red and mentions Mention.
type SlackNotifier struct {
	WebhookURL string       // secret: never logged
	Mention    string       // prefixed on failure; "" = "<!channel>", "-" = none
	Username   string       // optional display name
	HTTPClient *http.Client // nil = a client with a 20 s timeout
}

// Notify posts the report.
func (s *SlackNotifier) Notify(ctx context.Context, r Report) error {
	return s.post(ctx, "Backup", r.Host, r.Failed(), Summary(r), Details(r))
}

// post sends one run's message: green, or red with Mention when it failed.
func (s *SlackNotifier) post(ctx context.Context, what, host string, failed bool, summary, details string) error {
	if s.WebhookURL == "" {
		return fmt.Errorf("backup: slack: SLACK_WEBHOOK_URL is empty")
	}
	client := s.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 20 * time.Second}
	}
	msg := &slack.WebhookMessage{Username: s.Username, Text: summary}
	color, title := "good", fmt.Sprintf("%s OK on %s", what, host)
	if failed {
		color, title = "danger", fmt.Sprintf(":rotating_light: %s FAILED on %s", strings.ToUpper(what), host)
		mention := s.Mention
		if mention == "" {
			mention = "<!channel>"
		}
		if mention != "-" {
			msg.Text = mention + " " + msg.Text
		}
	}
	msg.Attachments = []slack.Attachment{{Color: color, Title: title, Text: details, MarkdownIn: []string{"text"}}}
	if err := slack.PostWebhookCustomHTTPContext(ctx, s.WebhookURL, client, msg); err != nil {
		// The webhook URL is the secret; slack-go's errors carry only the status.
		return fmt.Errorf("backup: slack webhook: %s", redactURL(err.Error(), s.WebhookURL))
	}
	return nil
}

func redactURL(msg, secret string) string {
	if secret == "" {
		return msg
	}
	return strings.ReplaceAll(msg, secret, "[webhook]")
}

// Summary is the one-line outcome of a run.
func Summary(r Report) string {
	failed := 0
	for _, x := range r.Results {
		if x.Err != nil {
			failed++
		}
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
		if x.Err != nil {
			fmt.Fprintf(&b, ":x: *%s* FAILED after %s: %s\n", x.Source, x.Duration.Round(time.Millisecond), x.Err)
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
	for _, x := range r.Results {
		if x.Err != nil {
			lg.ErrorContext(ctx, "backup source failed", "source", x.Source, "duration", x.Duration, "err", x.Err)
			continue
		}
		lg.InfoContext(ctx, "backup source ok", "source", x.Source, "object", x.Object, "stored_bytes", x.StoredBytes,
			"dump_bytes", x.DumpBytes, "duration", x.Duration, "pruned", x.Pruned)
	}
	return nil
}
