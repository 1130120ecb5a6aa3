package pgpool_test

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/internal/envfile"
	"github.com/fediops/fediops/internal/testenv"
	"github.com/fediops/fediops/pgpool"
)

// seedEnv is the seed's .env.production (testenv.SeedEnv) as an admin has
// it after the lint: DB_PASS in single quotes, a comment after DB_NAME and
// FEDIOPS_DB_DIRECT_NAME naming the database behind the pool.
var seedEnv = strings.NewReplacer(
	"DB_PASS=Ourpassw0rd!sNoneofyourbu$iness\n", "DB_PASS='Ourpassw0rd!sNoneofyourbu$iness'\n",
	"DB_NAME=the_mastodon_connection_pool\n", "DB_NAME=the_mastodon_connection_pool   # the pool, not the database\n",
	"PREPARED_STATEMENTS=false\n", "PREPARED_STATEMENTS=false\nFEDIOPS_DB_DIRECT_NAME=mastodon_production\n",
).Replace(testenv.SeedEnv())

func TestMigrationModeRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ".env.production")
	if err := os.WriteFile(path, []byte(seedEnv), 0o640); err != nil {
		t.Fatal(err)
	}
	d, err := pgpool.ToDirect(path, pgpool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Port != 25060 || d.Database != "mastodon_production" {
		t.Fatalf("direct target %s", d)
	}
	f, err := envfile.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := f.Get("DB_PORT"); v != "25060" {
		t.Fatalf("DB_PORT %q", v)
	}
	if v, _ := f.Get("DB_NAME"); v != "mastodon_production" {
		t.Fatalf("DB_NAME %q", v)
	}
	if _, ok := f.Get("PREPARED_STATEMENTS"); ok {
		t.Fatal("PREPARED_STATEMENTS still set")
	}
	// Everything else is as it was, line for line.
	b := f.Bytes()
	for _, l := range strings.Split(seedEnv, "\n") {
		if strings.HasPrefix(l, "DB_PORT") || strings.HasPrefix(l, "DB_NAME") || strings.HasPrefix(l, "PREPARED") {
			continue
		}
		if !bytes.Contains(b, []byte(l+"\n")) && l != "" {
			t.Fatalf("line %q lost:\n%s", l, b)
		}
	}
	// FromEnv now sees a direct configuration with prepared statements on.
	cfg, err := pgpool.ConfigFromEnv(f.Get, pgpool.Options{CAPEM: mustRead(t, caFile(t))})
	if err != nil || cfg.IsPooled || cfg.Direct.ConnConfig.Port != 25060 || !cfg.PreparedStmts {
		t.Fatalf("after ToDirect: %v", err)
	}
	side, err := os.Stat(path + pgpool.SidecarSuffix)
	if err != nil || side.Mode().Perm() != 0o600 {
		t.Fatalf("sidecar %v %v", side, err)
	}
	if !pgpool.InDirectMode(path) {
		t.Fatal("InDirectMode")
	}
	if _, err := pgpool.ToDirect(path, pgpool.Options{}); !errors.Is(err, pgpool.ErrAlreadyDirect) {
		t.Fatalf("second ToDirect: %v", err)
	}

	if err := pgpool.ToPooled(path, false); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, []byte(seedEnv)) {
		t.Fatalf("not restored byte for byte:\n%q\nwant\n%q", got, seedEnv)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v", fi.Mode())
	}
	if pgpool.InDirectMode(path) {
		t.Fatal("sidecar left behind")
	}
	if err := pgpool.ToPooled(path, false); !errors.Is(err, pgpool.ErrNotDirect) {
		t.Fatalf("ToPooled twice: %v", err)
	}
}

// The seed's file as written: DB_PASS unquoted with a '$' (Rails cuts it).
func TestMigrationModeSeedAsWritten(t *testing.T) {
	env := strings.Replace(seedEnv, "DB_PASS='Ourpassw0rd!sNoneofyourbu$iness'", "DB_PASS=Ourpassw0rd!sNoneofyourbu$iness", 1)
	path := filepath.Join(t.TempDir(), ".env.production")
	if err := os.WriteFile(path, []byte(env), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := pgpool.ToDirect(path, pgpool.Options{}); err != nil {
		t.Fatal(err)
	}
	if b := mustRead(t, path); !bytes.Contains(b, []byte("\nDB_PASS=Ourpassw0rd!sNoneofyourbu$iness\n")) {
		t.Fatalf("DB_PASS line changed:\n%s", b)
	}
	if err := pgpool.ToPooled(path, false); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, path); string(got) != env {
		t.Fatal("not restored byte for byte")
	}
}

func TestMigrationModeEditedMeanwhile(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".env.production")
	if err := os.WriteFile(path, []byte(seedEnv), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := pgpool.ToDirect(path, pgpool.Options{}); err != nil {
		t.Fatal(err)
	}
	f, _ := envfile.Read(path)
	if err := f.Set("SINGLE_USER_MODE", "true"); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	err := pgpool.ToPooled(path, false)
	if !errors.Is(err, pgpool.ErrEnvChanged) || strings.Contains(err.Error(), "Ourpassw0rd") {
		t.Fatalf("edited file: %v", err)
	}
	if err := pgpool.ToPooled(path, true); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != seedEnv {
		t.Fatal("force did not restore the original")
	}
}

func TestMigrationModeDatabaseURL(t *testing.T) {
	const env = "DATABASE_URL=postgres://u:p%40ss@db.example:25061/pool1?prepared_statements=false&sslmode=require\nFEDIOPS_DB_DIRECT_NAME=realdb\n"
	path := filepath.Join(t.TempDir(), ".env.production")
	if err := os.WriteFile(path, []byte(env), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := pgpool.ToDirect(path, pgpool.Options{}); err != nil {
		t.Fatal(err)
	}
	f, _ := envfile.Read(path)
	u, _ := f.Get("DATABASE_URL")
	if u != "postgres://u:p%40ss@db.example:25060/realdb?sslmode=require" {
		t.Fatalf("DATABASE_URL %q", u)
	}
	if err := pgpool.ToPooled(path, false); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != env {
		t.Fatalf("restored %q", got)
	}
}

func TestMigrationModeRefuses(t *testing.T) {
	dir := t.TempDir()
	for name, env := range map[string]string{
		"not pooled":     "DB_PORT=25060\nDB_NAME=mastodon_production\n",
		"no direct name": "DB_PORT=25061\nDB_NAME=pool\nPREPARED_STATEMENTS=false\n",
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		if err := os.WriteFile(path, []byte(env), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := pgpool.ToDirect(path, pgpool.Options{}); err == nil {
			t.Fatalf("%s: ToDirect succeeded", name)
		}
		if got, _ := os.ReadFile(path); string(got) != env || pgpool.InDirectMode(path) {
			t.Fatalf("%s: file touched", name)
		}
	}
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestUnquotedDollarReadAsRailsDoes(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".env.production")
	env := strings.Replace(seedEnv, "DB_PASS='Ourpassw0rd!sNoneofyourbu$iness'", "DB_PASS=Ourpassw0rd!sNoneofyourbu$iness", 1)
	env = strings.Replace(env, "/path/to/certs/do-internal.crt", caFile(t), 1)
	if err := os.WriteFile(path, []byte(env), 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := fediops.ReadEnv(path, fediops.WithEnviron(nil))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := pgpool.ConfigFromEnv(e.Lookup, pgpool.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	// Rails' reading: cut at the '$'. Lint says so, without the value.
	if cfg.Pooled.ConnConfig.Password != "Ourpassw0rd!sNoneofyourbu" {
		t.Fatalf("password as Rails reads it: wrong")
	}
	var found []string
	for _, f := range e.Lint() {
		found = append(found, f.String())
	}
	all := strings.Join(found, "\n")
	if !strings.Contains(all, ".env.production:14: DB_PASS:") || strings.Contains(all, "Ourpassw0rd") {
		t.Fatalf("lint: %s", all)
	}
}

// The sidecar holds DB_PASS: it is 0600 even when an interrupted earlier
// run left its temporary file behind with a wider mode.
func TestSidecarModeDespiteStaleTemp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ".env.production")
	if err := os.WriteFile(path, []byte(seedEnv), 0o640); err != nil {
		t.Fatal(err)
	}
	stale := path + pgpool.SidecarSuffix + ".tmp"
	if err := os.WriteFile(stale, []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := pgpool.ToDirect(path, pgpool.Options{}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path + pgpool.SidecarSuffix)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("sidecar mode %v, want 0600: it holds DB_PASS", st.Mode().Perm())
	}
}
