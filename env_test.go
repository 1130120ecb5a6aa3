package fediops_test

import (
	"strings"
	"testing"

	"github.com/fediops/fediops"
)

// WithDotenv picks the release's rules: a bare A after A=1 keeps 1 in
// dotenv 2.8 (Mastodon 4.2) and empties it in 3.x (Mastodon 4.3+).
func TestDotenvRelease(t *testing.T) {
	e, err := fediops.ParseEnv("x", []byte("A=1\nA\n"), fediops.WithEnviron(nil), fediops.WithDotenv("2.8"))
	if err != nil {
		t.Fatal(err)
	}
	if e.Dotenv() == "" || e.Get("A") != "1" {
		t.Fatalf("2.8 keeps A=1 after a bare A: got %q (%s)", e.Get("A"), e.Dotenv())
	}
	e, err = fediops.ParseEnv("x", []byte("A=1\nA\n"), fediops.WithEnviron(nil))
	if err != nil {
		t.Fatal(err)
	}
	if e.Get("A") != "" {
		t.Fatalf("3.x reads a bare A as empty: got %q (%s)", e.Get("A"), e.Dotenv())
	}
	if _, err := fediops.ParseEnv("x", nil, fediops.WithDotenv("three")); err == nil || !strings.Contains(err.Error(), `"three"`) {
		t.Fatalf("release three: %v", err)
	}
}

// A Slack webhook's URL is its credential: redacted like a password.
func TestSlackWebhookIsSecret(t *testing.T) {
	const hook = "https://hooks.slack.com/services/T000/B000/XXXXXXXX"
	if !fediops.IsSecret("SLACK_WEBHOOK_URL") || fediops.Redact("SLACK_WEBHOOK_URL", hook) != "[redacted]" {
		t.Errorf("SLACK_WEBHOOK_URL: IsSecret %t, Redact %q", fediops.IsSecret("SLACK_WEBHOOK_URL"), fediops.Redact("SLACK_WEBHOOK_URL", hook))
	}
}
