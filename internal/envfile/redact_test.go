package envfile

import (
	"strings"
	"testing"
)

func TestIsSecret(t *testing.T) {
	for _, key := range []string{"DB_PASS", "REDIS_PASSWORD", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "OTP_SECRET",
		"VAPID_PRIVATE_KEY", "SECRET_KEY_BASE", "smtp_password", "DEEPL_API_KEY", "ACTIVE_RECORD_ENCRYPTION_KEY_DERIVATION_SALT",
		"GOOGLE_APPLICATION_CREDENTIALS", "HCAPTCHA_SECRET_KEY", "SOME_TOKEN", "SLACK_WEBHOOK_URL", "discord_webhook"} {
		if !IsSecret(key) {
			t.Errorf("IsSecret(%s) = false", key)
		}
	}
	for _, key := range []string{"DB_HOST", "DB_USER", "S3_BUCKET", "LOCAL_DOMAIN", "VAPID_PUBLIC", "DATABASE_URL"} {
		if IsSecret(key) {
			t.Errorf("IsSecret(%s) = true", key)
		}
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ key, value, want string }{
		{"DB_PASS", "hunter2", Redacted},
		{"DB_PASS", "", ""},
		{"DB_HOST", "db.example", "db.example"},
		{"DATABASE_URL", "postgres://mastodon:hunter2@db:25060/mastodon?sslmode=require",
			"postgres://mastodon:" + Redacted + "@db:25060/mastodon?sslmode=require"},
		{"REDIS_URL", "rediss://:hunter2@redis:25061/0", "rediss://:" + Redacted + "@redis:25061/0"},
		{"DATABASE_URL", "postgres://db/x?user=m&password=hunter2&sslmode=require",
			"postgres://db/x?user=m&password=" + Redacted + "&sslmode=require"},
		{"S3_ENDPOINT", "https://nyc3.digitaloceanspaces.com", "https://nyc3.digitaloceanspaces.com"},
		{"ES_HOST", "https://user@search:9200", "https://user@search:9200"},
	}
	for _, tt := range tests {
		if got := Redact(tt.key, tt.value); got != tt.want {
			t.Errorf("Redact(%s, %q) = %q, want %q", tt.key, tt.value, got, tt.want)
		}
	}
}

func TestFileRedacted(t *testing.T) {
	text := seedFile + "\n# DB_PASS=oldpassword\n#export OTP_SECRET: oldotp\n" +
		"DATABASE_URL=postgres://u:urlpass@db/x # note\r\n" +
		"VAPID_PRIVATE_KEY=\"-----BEGIN-----\nkeybody\n-----END-----\" # rotated\nLAST=1"
	f := mustParse(t, text)
	got := string(f.Redacted())
	for _, secret := range []string{"Ourpassw0rd", "iness", "NOTINAMILLI0NYEARS", "hahaha", "oldpassword", "oldotp", "urlpass", "keybody", "rotated"} {
		if strings.Contains(got, secret) {
			t.Errorf("Redacted() shows %q:\n%s", secret, got)
		}
	}
	for _, keep := range []string{
		"DB_PASS=" + Redacted + "\nPREPARED_STATEMENTS=false\n",
		"AWS_ACCESS_KEY_ID=" + Redacted + "\n",
		"S3_ENDPOINT=https://nyc3.digitaloceanspaces.com\n",
		"# DB_PASS=" + Redacted + "\n",
		"#export OTP_SECRET: " + Redacted + "\n",
		"DATABASE_URL=postgres://u:" + Redacted + "@db/x # note\r\n",
		"VAPID_PRIVATE_KEY=" + Redacted + "\nLAST=1",
		"# PostgreSQL\nDB_HOST=path-to-postgres-database.ondigitalocean.com\n",
	} {
		if !strings.Contains(got, keep) {
			t.Errorf("Redacted() lacks %q:\n%s", keep, got)
		}
	}
	if string(f.Bytes()) != text {
		t.Error("Redacted() changed the file")
	}
}

// TestRedactedSkippedLines: lines that Ruby dotenv skips are printed too,
// so a secret on them is hidden; so is the part of a secret that node
// dotenv reads over several lines where Ruby reads one.
func TestRedactedSkippedLines(t *testing.T) {
	text := "DB-PASS=dashpass\nSMTP_PASSWORD:colonpass\nDB_PASS spacepass\nmy password is plainpass\n" +
		"this line is fine\nOTP_SECRET=`tick1\ntickline\n`\nLOCAL_DOMAIN=example.com\n"
	f := mustParse(t, text)
	got := string(f.Redacted())
	for _, secret := range []string{"dashpass", "colonpass", "spacepass", "plainpass", "tick1", "tickline"} {
		if strings.Contains(got, secret) {
			t.Errorf("Redacted() shows %q:\n%s", secret, got)
		}
	}
	for _, keep := range []string{"DB-PASS=" + Redacted + "\n", "SMTP_PASSWORD:" + Redacted + "\n", "DB_PASS " + Redacted + "\n",
		"\nthis line is fine\nOTP_SECRET=" + Redacted + "\nLOCAL_DOMAIN=example.com\n"} {
		if !strings.Contains(got, keep) {
			t.Errorf("Redacted() lacks %q:\n%s", keep, got)
		}
	}
}
