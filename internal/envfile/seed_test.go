package envfile

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fediops/fediops/internal/testenv"
)

// The .env.production snippets of the infrastructure document, verbatim:
// seedFile is all four as one .env.production (testenv.SeedEnv), the others
// are its parts.
var (
	seedFile                                               = testenv.SeedEnv()
	seedPuma, seedStreaming, seedPostgres, seedObjectStore = seedSnippets(seedFile)
)

// seedSnippets splits the seed file at its blank lines, each part ending in
// a newline.
func seedSnippets(file string) (puma, streaming, postgres, objectStore string) {
	p := strings.Split(file, "\n\n")
	if len(p) != 4 {
		panic(fmt.Sprintf("testenv.SeedEnv has %d snippets, want 4", len(p)))
	}
	return p[0] + "\n", p[1] + "\n", p[2] + "\n", p[3]
}

// noEnv is an empty environment, so that tests do not depend on the
// process environment.
var noEnv = WithLookup(nil)

func TestSeedSnippets(t *testing.T) {
	type kv struct{ key, ruby, node string }
	same := func(key, value string) kv { return kv{key, value, value} }
	tests := []struct {
		name string
		text string
		want []kv
	}{
		{"puma", seedPuma, []kv{
			same("WEB_CONCURRENCY", "3"),
			same("MAX_THREADS", "9"),
		}},
		{"streaming", seedStreaming, []kv{
			same("STREAMING_API_BASE_URL", "wss://streaming.vmst.io"),
			same("DB_SSLMODE", "require"),
			same("NODE_EXTRA_CA_CERTS", "/path/to/certs/do-internal.crt"),
		}},
		{"postgres", seedPostgres, []kv{
			same("DB_HOST", "path-to-postgres-database.ondigitalocean.com"),
			same("DB_PORT", "25061"),
			same("DB_NAME", "the_mastodon_connection_pool"),
			same("DB_USER", "the_mastodon_user"),
			{"DB_PASS", "Ourpassw0rd!sNoneofyourbu", "Ourpassw0rd!sNoneofyourbu$iness"},
			same("PREPARED_STATEMENTS", "false"),
		}},
		{"object store", seedObjectStore, []kv{
			same("S3_ENABLED", "true"),
			same("S3_PROTOCOL", "https"),
			same("S3_BUCKET", "ourbucketname"),
			same("S3_REGION", "nyc3"),
			same("S3_HOSTNAME", "nyc3.digitaloceanspaces.com"),
			same("S3_ENDPOINT", "https://nyc3.digitaloceanspaces.com"),
			same("AWS_ACCESS_KEY_ID", "NOTINAMILLI0NYEARS"),
			same("AWS_SECRET_ACCESS_KEY", "hahahahahahahahahahahahaha"),
			same("S3_ALIAS_HOST", "cdn.vmst.io"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse(".env.production", []byte(tt.text), noEnv)
			if err != nil {
				t.Fatal(err)
			}
			entries := f.Entries()
			if len(entries) != len(tt.want) {
				t.Fatalf("got %d entries, want %d", len(entries), len(tt.want))
			}
			for i, w := range tt.want {
				e := entries[i]
				if e.Key != w.key || e.Value != w.ruby || e.NodeValue != w.node {
					t.Errorf("entry %d = %s Ruby %q node %q, want %s Ruby %q node %q",
						i, e.Key, e.Value, e.NodeValue, w.key, w.ruby, w.node)
				}
				if got, _ := f.Get(w.key); got != w.ruby {
					t.Errorf("Get(%s) = %q, want %q", w.key, got, w.ruby)
				}
			}
			if got := f.Bytes(); string(got) != tt.text {
				t.Errorf("Bytes() changed the file")
			}
		})
	}
}

func TestSeedLint(t *testing.T) {
	f, err := Parse(".env.production", []byte(seedFile), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	got := Lint(f)
	if len(got) != 1 {
		t.Fatalf("Lint found %d problems, want 1 (DB_PASS): %v", len(got), got)
	}
	fd := got[0]
	e, _ := f.Lookup("DB_PASS")
	if fd.Key != "DB_PASS" || fd.Line != e.Line || fd.File != ".env.production" {
		t.Errorf("finding at %s:%d for %s, want .env.production:%d for DB_PASS", fd.File, fd.Line, fd.Key, e.Line)
	}
	s := fd.String()
	for _, want := range []string{
		".env.production:14: DB_PASS: ",
		"Rails/Sidekiq (Ruby dotenv) read only the first 25 of the 31 characters that the streaming server (node dotenv) reads",
		"Ruby dotenv expands the $ and the name after it to '', since no such variable is set",
		"only single quotes read the same in both",
		"write DB_PASS='…' (value not shown: secret; envfile's Set writes it)",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("finding %q\ndoes not say %q", s, want)
		}
	}
	for _, secret := range []string{"Ourpassw0rd", "iness", "Noneofyourbu"} {
		if strings.Contains(s, secret) {
			t.Errorf("finding %q shows part of the password (%q)", s, secret)
		}
	}
}
