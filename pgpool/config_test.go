package pgpool_test

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/internal/testenv"
	"github.com/fediops/fediops/pgpool"
)

const secret = "Ourpassw0rd!sNoneofyourbu$iness"

// seed is the seed's PostgreSQL block plus the CA the streaming server uses
// and the fediops variable naming the database behind the pool.
func seed(ca string) map[string]string {
	return map[string]string{
		"DB_HOST": "path-to-postgres-database.ondigitalocean.com", "DB_PORT": "25061",
		"DB_NAME": "the_mastodon_connection_pool", "DB_USER": "the_mastodon_user",
		"DB_PASS": secret, "PREPARED_STATEMENTS": "false", "DB_SSLMODE": "require",
		"NODE_EXTRA_CA_CERTS": ca, pgpool.EnvDirectName: "mastodon_production",
	}
}

func with(m map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "<unset>" {
			delete(out, kv[i])
		} else {
			out[kv[i]] = kv[i+1]
		}
	}
	return out
}

func caFile(t *testing.T) string { return testenv.Shared(t).DBCA.File }

func TestFromEnvSeed(t *testing.T) {
	var logs bytes.Buffer
	cfg, err := pgpool.ConfigFromEnv(fediops.MapLookup(seed(caFile(t))), pgpool.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.IsPooled || cfg.App() != cfg.Pooled {
		t.Fatal("the seed's settings are pooled")
	}
	p := cfg.Pooled.ConnConfig
	if p.Port != 25061 || p.Database != "the_mastodon_connection_pool" || p.User != "the_mastodon_user" || p.Password != secret {
		t.Fatalf("pooled %s:%d/%s as %s", p.Host, p.Port, p.Database, p.User)
	}
	if p.DefaultQueryExecMode != pgx.QueryExecModeExec || p.StatementCacheCapacity != 0 || p.DescriptionCacheCapacity != 0 || len(p.RuntimeParams) != 0 {
		t.Fatalf("pooled mode %v, caches %d/%d, params %v", p.DefaultQueryExecMode, p.StatementCacheCapacity, p.DescriptionCacheCapacity, p.RuntimeParams)
	}
	if p.TLSConfig == nil || p.TLSConfig.InsecureSkipVerify || p.TLSConfig.RootCAs == nil || p.TLSConfig.ServerName != "path-to-postgres-database.ondigitalocean.com" {
		t.Fatal("pooled TLS is not verify-full against the CA")
	}
	d := cfg.Direct.ConnConfig
	if d.Port != 25060 || d.Database != "mastodon_production" || d.Host != p.Host || d.DefaultQueryExecMode != pgx.QueryExecModeCacheStatement {
		t.Fatalf("direct %s:%d/%s mode %v", d.Host, d.Port, d.Database, d.DefaultQueryExecMode)
	}
	if cfg.TLS != pgpool.TLSVerifyFull || logs.Len() != 0 {
		t.Fatalf("TLS %s, logs %q: a CA with DB_SSLMODE=require verifies without a warning", cfg.TLS, logs.String())
	}
}

func TestFromEnvDefaultsAndURL(t *testing.T) {
	ca := caFile(t)
	// Nothing pooled: Mastodon's defaults, direct only.
	cfg, err := pgpool.ConfigFromEnv(fediops.MapLookup(map[string]string{pgpool.EnvCAFile: ca}), pgpool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Direct.ConnConfig
	if cfg.IsPooled || cfg.Pooled != nil || d.Host != "localhost" || d.Port != 5432 || d.Database != "mastodon_production" || d.User != "mastodon" || !cfg.PreparedStmts {
		t.Fatalf("defaults: %+v", cfg)
	}

	// DATABASE_URL wins where it says something; DB_* fill the rest.
	env := map[string]string{
		"DATABASE_URL": "postgres://u:" + strings.ReplaceAll(secret, "$", "%24") + "@db.example:25061/pool1?prepared_statements=false",
		"DB_HOST":      "ignored", "DB_PORT": "1", "DB_USER": "ignored", "DB_SSLMODE": "require",
		pgpool.EnvCAFile: ca, pgpool.EnvDirectName: "realdb",
	}
	cfg, err = pgpool.ConfigFromEnv(fediops.MapLookup(env), pgpool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Pooled.ConnConfig
	if p.Host != "db.example" || p.Port != 25061 || p.Database != "pool1" || p.User != "u" || p.Password != secret {
		t.Fatalf("URL: %s:%d/%s %s", p.Host, p.Port, p.Database, p.User)
	}
	if cfg.Direct.ConnConfig.Port != 25060 || cfg.Direct.ConnConfig.Database != "realdb" {
		t.Fatal("direct from URL")
	}

	// Pooled without the direct database: usable, Direct explains itself.
	cfg, err = pgpool.ConfigFromEnv(fediops.MapLookup(with(seed(ca), pgpool.EnvDirectName, "<unset>")), pgpool.Options{})
	if err != nil || cfg.Direct != nil || !errors.Is(cfg.DirectErr, pgpool.ErrNoDirect) || !strings.Contains(cfg.DirectErr.Error(), pgpool.EnvDirectName) {
		t.Fatalf("no direct name: %v / %v", err, cfg.DirectErr)
	}
	// ... and the option wins over the variable.
	cfg, err = pgpool.ConfigFromEnv(fediops.MapLookup(seed(ca)), pgpool.Options{DirectDatabase: "other", DirectPort: 6543})
	if err != nil || cfg.Direct.ConnConfig.Database != "other" || cfg.Direct.ConnConfig.Port != 6543 {
		t.Fatalf("options: %v", err)
	}

	// The process environment wins over the file, as for Rails.
	file := []byte("DB_HOST=h\nDB_PORT=25061\nDB_NAME=pool\nDB_PASS='" + secret + "'\nPREPARED_STATEMENTS=false\nDB_SSLMODE=require\nFEDIOPS_DB_CA_FILE=" + ca + "\n")
	layered, err := fediops.ParseEnv(".env.production", file, fediops.WithEnviron(fediops.MapLookup(map[string]string{"DB_PORT": "25060"})))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err = pgpool.ConfigFromEnv(layered.Lookup, pgpool.Options{})
	if err != nil || cfg.IsPooled || cfg.Direct.ConnConfig.Port != 25060 {
		t.Fatalf("layered: %v", err)
	}

	// The parsed .env.production plugs in.
	f, err := fediops.ParseEnv(".env.production", file, fediops.WithEnviron(nil))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err = pgpool.ConfigFromEnv(f.Lookup, pgpool.Options{})
	if err != nil || cfg.Pooled.ConnConfig.Password != secret || cfg.CASource != pgpool.EnvCAFile {
		t.Fatalf("envfile: %v", err)
	}
}

func TestFromEnvBadInput(t *testing.T) {
	ca := caFile(t)
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(notPEM, []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.crt")
	if err := os.WriteFile(empty, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		env  map[string]string
		opt  pgpool.Options
		want error
		say  string // the variable the message names
	}{
		{"prepared true", with(seed(ca), "PREPARED_STATEMENTS", "true"), pgpool.Options{}, pgpool.ErrPreparedStatements, "PREPARED_STATEMENTS"},
		{"prepared unset", with(seed(ca), "PREPARED_STATEMENTS", "<unset>"), pgpool.Options{}, pgpool.ErrPreparedStatements, "Mastodon's default is true"},
		{"prepared 0 is true for Rails", with(seed(ca), "PREPARED_STATEMENTS", "0"), pgpool.Options{}, pgpool.ErrPreparedStatements, `"0" (true for Rails)`},
		{"prepared in URL", with(seed(ca), "DATABASE_URL", "postgres://u:"+strings.ReplaceAll(secret, "$", "%24")+"@h:25061/pool?prepared_statements=true"), pgpool.Options{}, pgpool.ErrPreparedStatements, "DATABASE_URL prepared_statements"},
		{"DB_NAME unset on pool port", with(seed(ca), "DB_NAME", "<unset>"), pgpool.Options{}, pgpool.ErrNotPoolName, "DB_NAME unset"},
		{"DB_NAME is the database", with(seed(ca), "DB_NAME", "mastodon_production"), pgpool.Options{}, pgpool.ErrNotPoolName, pgpool.EnvDirectName},
		{"DB_NAME not a known pool", seed(ca), pgpool.Options{KnownPools: []string{"other_pool"}}, pgpool.ErrNotPoolName, "other_pool"},
		{"CA file missing", with(seed(ca), "NODE_EXTRA_CA_CERTS", filepath.Join(dir, "nope.crt")), pgpool.Options{}, pgpool.ErrBadCA, "NODE_EXTRA_CA_CERTS=" + filepath.Join(dir, "nope.crt") + ": bad CA: no such file"},
		{"CA file not a certificate", with(seed(ca), pgpool.EnvCAFile, notPEM), pgpool.Options{}, pgpool.ErrBadCA, pgpool.EnvCAFile},
		{"CA file without PEM", seed(ca), pgpool.Options{CAFile: empty}, pgpool.ErrBadCA, "Options.CAFile"},
		{"CA bytes invalid", seed(ca), pgpool.Options{CAPEM: []byte("junk")}, pgpool.ErrBadCA, "Options.CAPEM"},
		{"prefer without CA", with(seed(ca), "NODE_EXTRA_CA_CERTS", "<unset>", "DB_SSLMODE", "<unset>"), pgpool.Options{}, pgpool.ErrNoCA, "DB_SSLMODE=prefer"},
		{"bad sslmode", with(seed(ca), "DB_SSLMODE", "sure"), pgpool.Options{}, pgpool.ErrInvalid, "DB_SSLMODE"},
		{"bad port", with(seed(ca), "DB_PORT", "25o61"), pgpool.Options{}, pgpool.ErrInvalid, "DB_PORT"},
		{"bad pooled flag", with(seed(ca), pgpool.EnvPooled, "sometimes"), pgpool.Options{}, pgpool.ErrInvalid, pgpool.EnvPooled},
		{"bad URL", with(seed(ca), "DATABASE_URL", "postgres://u:"+secret+"%zz@h:25061/pool"), pgpool.Options{}, pgpool.ErrInvalid, "DATABASE_URL"},
		{"bad URL scheme", with(seed(ca), "DATABASE_URL", "mysql://u:"+secret+"@h/db"), pgpool.Options{}, pgpool.ErrInvalid, "DATABASE_URL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var logs bytes.Buffer
			c.opt.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			_, err := pgpool.ConfigFromEnv(fediops.MapLookup(c.env), c.opt)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.say) {
				t.Fatalf("%q does not say %q", err, c.say)
			}
			for _, s := range []string{err.Error(), logs.String()} {
				if strings.Contains(s, secret) || strings.Contains(s, "Ourpassw0rd") {
					t.Fatalf("the password is in %q", s)
				}
			}
		})
	}

	// Two problems at once are both reported.
	_, err := pgpool.ConfigFromEnv(fediops.MapLookup(with(seed(ca), "PREPARED_STATEMENTS", "true", "DB_NAME", "<unset>")), pgpool.Options{})
	if !errors.Is(err, pgpool.ErrPreparedStatements) || !errors.Is(err, pgpool.ErrNotPoolName) {
		t.Fatalf("joined: %v", err)
	}
}

func TestRequireWithoutCAWarns(t *testing.T) {
	var logs bytes.Buffer
	cfg, err := pgpool.ConfigFromEnv(fediops.MapLookup(with(seed(""), "NODE_EXTRA_CA_CERTS", "<unset>")),
		pgpool.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLS != pgpool.TLSRequire || !cfg.Pooled.ConnConfig.TLSConfig.InsecureSkipVerify || len(cfg.Warnings) != 1 {
		t.Fatalf("TLS %s warnings %v", cfg.TLS, cfg.Warnings)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "without verifying the host") || strings.Contains(logs.String(), "Ourpassw0rd") {
		t.Fatalf("log %q", logs.String())
	}
}

func TestSessionStatement(t *testing.T) {
	for sql, want := range map[string]string{
		"SET statement_timeout = '5s'":                 "SET",
		"set search_path TO public":                    "SET",
		"SET SESSION work_mem = '64MB'":                "SET",
		"SET TIME ZONE 'UTC'":                          "SET",
		"SET ROLE admin":                               "SET",
		"SET LOCAL statement_timeout = '5s'":           "",
		"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE": "",
		"RESET ALL":                                       "RESET",
		"LISTEN timeline":                                 "LISTEN",
		"PREPARE s1 AS SELECT 1":                          "PREPARE",
		"CREATE TEMP TABLE x (a int)":                     "CREATE",
		"DECLARE c CURSOR WITH HOLD FOR SELECT 1":         "DECLARE",
		"DECLARE c CURSOR FOR SELECT 1":                   "",
		"SELECT pg_advisory_lock(42)":                     "pg_advisory_lock",
		"SELECT pg_advisory_xact_lock(42)":                "",
		"SELECT set_config('a.b', 'c', false)":            "set_config",
		"SELECT set_config('a.b', 'c', true)":             "",
		"SELECT * FROM settings WHERE name = 'SET x = 1'": "",
		"UPDATE accounts SET note = 'x' WHERE id = $1":    "",
	} {
		if got := pgpool.SessionStatement(sql); got != want {
			t.Errorf("%q: %q, want %q", sql, got, want)
		}
	}
}
