// Package slacknotify posts how backup runs and media mirror runs went to
// a Slack incoming webhook: add a *Notifier (WebhookURL from
// SLACK_WEBHOOK_URL) to backup.Runner's Notifiers and mirror.Config's.
//
// One message per run: green with a line per source (size, duration) when
// it went well, red and mentioning Mention (the channel by default) when
// anything failed. The webhook URL is the secret: no error holds it.
package slacknotify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/mirror"
)

// Notifier posts to a Slack incoming webhook.
type Notifier struct {
	WebhookURL string       // SLACK_WEBHOOK_URL; secret: never logged
	Mention    string       // prefixed on failure; "" = "<!channel>", "-" = none
	Username   string       // optional display name
	HTTPClient *http.Client // nil = a client with a 20 s timeout
}

var (
	_ backup.Notifier = (*Notifier)(nil)
	_ mirror.Notifier = (*Notifier)(nil)
)

// Notify posts a backup run's report.
func (n *Notifier) Notify(ctx context.Context, r backup.Report) error {
	return n.Post(ctx, Message{What: "Backup", Host: r.Host, Failed: r.Failed(), Summary: backup.Summary(r), Details: backup.Details(r)})
}

// NotifyMirror posts a media mirror run's report.
func (n *Notifier) NotifyMirror(ctx context.Context, r mirror.Report) error {
	return n.Post(ctx, Message{What: "Media mirror", Host: r.Host, Failed: r.Failed(), Summary: mirror.Summary(r), Details: mirror.Details(r)})
}

// Message is one run's message.
type Message struct {
	What    string // "Backup", "Media mirror"
	Host    string
	Failed  bool
	Summary string // the text
	Details string // the attachment's body (Slack markdown)
}

// Post sends one message: green, or red with Mention when it failed.
func (n *Notifier) Post(ctx context.Context, m Message) error {
	if n.WebhookURL == "" {
		return errors.New("SLACK_WEBHOOK_URL is empty")
	}
	client := n.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 20 * time.Second}
	}
	msg := &slack.WebhookMessage{Username: n.Username, Text: m.Summary}
	color, title := "good", fmt.Sprintf("%s OK on %s", m.What, m.Host)
	if m.Failed {
		color, title = "danger", fmt.Sprintf(":rotating_light: %s FAILED on %s", strings.ToUpper(m.What), m.Host)
		mention := n.Mention
		if mention == "" {
			mention = "<!channel>"
		}
		if mention != "-" {
			msg.Text = mention + " " + msg.Text
		}
	}
	msg.Attachments = []slack.Attachment{{Color: color, Title: title, Text: m.Details, MarkdownIn: []string{"text"}}}
	if err := slack.PostWebhookCustomHTTPContext(ctx, n.WebhookURL, client, msg); err != nil {
		// The webhook URL is the secret; slack-go's errors carry only the
		// status, and a transport error the URL, which is cut out.
		return fmt.Errorf("post to the Slack webhook: %s", strings.ReplaceAll(err.Error(), n.WebhookURL, "[webhook]"))
	}
	return nil
}
