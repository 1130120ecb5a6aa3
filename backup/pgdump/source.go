// Package pgdump backs up PostgreSQL with pg_dump and restores it with
// pg_restore: SourceFromEnv reads the direct connection from Mastodon's
// settings through pgpool (DO's port 25060, verify-full against the
// cluster's CA), and the Source goes into backup.Runner; Target and Drill
// restore a backup and run a restore drill.
//
// The connection is pgpool's decision, never its own reading of DB_*:
// pgpool.ConfigFromEnv's direct endpoint (FEDIOPS_DB_DIRECT_NAME,
// FEDIOPS_DB_DIRECT_PORT and FEDIOPS_DB_DIRECT_HOST when DB_* point at the
// pool) and its TLS mode and CA file (FEDIOPS_DB_CA_FILE,
// NODE_EXTRA_CA_CERTS ...). pg_dump and pg_restore get it in PG* variables,
// the password in PGPASSWORD, never on their command line; a transaction
// pool, which cannot give pg_dump one consistent snapshot, is refused.
package pgdump

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/internal/tool"
	"github.com/fediops/fediops/pgpool"
)

// ErrPoolConnection means the connection is DigitalOcean's pgBouncer pool
// (or only the pool is known): pg_dump needs the database itself.
var ErrPoolConnection = errors.New("pg_dump needs the direct connection (DO's port 25060), not the connection pool")

// DefaultLockWait is Source's default pg_dump --lock-wait-timeout.
const DefaultLockWait = 10 * time.Minute

// appName is what PostgreSQL's pg_stat_activity and logs show for the
// tools' connections.
const appName = "fediops-backup"

// Source dumps one database with `pg_dump -Fc -Z0` (compression is the
// sealer's zstd) over the direct connection.
type Source struct {
	Label     string       // Name(); "" = "postgres"
	Conn      pgpool.Libpq // the direct connection: SourceFromEnv, or pgpool's (*Config).DirectLibpq
	PgDump    string       // pg_dump path; "" = from PATH
	ExtraArgs []string     // more pg_dump arguments (e.g. --exclude-table-data)

	// LockWait bounds how long pg_dump waits for its table locks
	// (--lock-wait-timeout): a migration holding an exclusive lock fails
	// the backup loudly instead of hanging the 4-hourly run. 0 means
	// DefaultLockWait; negative means wait as long as it takes.
	LockWait time.Duration
}

var (
	_ backup.Source   = (*Source)(nil)
	_ backup.Target   = (*Target)(nil)
	_ backup.Verifier = (*Drill)(nil)
)

// SourceFromEnv is the Source for the database Mastodon's settings
// describe, as pgpool.LibpqFromEnv(env, opt) reads them: its direct
// endpoint and TLS decision. Settings that name only the pool are an
// ErrPoolConnection wrapping pgpool's error, which says which setting to
// add. Its Conn serves Target and Drill too.
func SourceFromEnv(env fediops.Lookup, opt pgpool.Options) (*Source, error) {
	conn, err := pgpool.LibpqFromEnv(env, opt)
	if errors.Is(err, pgpool.ErrNoDirect) {
		return nil, fmt.Errorf("%w: %w", ErrPoolConnection, err)
	}
	if err != nil {
		return nil, err
	}
	return &Source{Conn: conn}, nil
}

// Name is Label or "postgres".
func (s *Source) Name() string { return cmp.Or(s.Label, "postgres") }

// Kind is "postgres".
func (s *Source) Kind() string { return "postgres" }

// Validate names a missing field and refuses DO's pool port.
func (s *Source) Validate() error { return validate(s.Conn) }

func validate(c pgpool.Libpq) error {
	switch {
	case c.Host == "":
		return errors.New("postgres connection: Host is empty")
	case c.Database == "":
		return errors.New("postgres connection: Database is empty")
	case c.User == "":
		return errors.New("postgres connection: User is empty")
	case c.Port == pgpool.PoolPort:
		return fmt.Errorf("%w: port %d is DO's pool port", ErrPoolConnection, c.Port)
	}
	return nil
}

// env is the tools' environment: the connection (password included) and
// the application name.
func env(c pgpool.Libpq) []string { return append(c.Env(), "PGAPPNAME="+appName) }

// Version runs pg_dump --version.
func (s *Source) Version(ctx context.Context) (string, error) {
	return tool.Version(ctx, s.PgDump, "pg_dump")
}

// Dump streams pg_dump's custom-format archive, uncompressed, into w.
func (s *Source) Dump(ctx context.Context, w io.Writer) error {
	if err := s.Validate(); err != nil {
		return err
	}
	bin, err := tool.Find(s.PgDump, "pg_dump")
	if err != nil {
		return err
	}
	args := []string{"-Fc", "-Z0", "--no-password"}
	if wait := cmp.Or(s.LockWait, DefaultLockWait); wait > 0 {
		args = append(args, fmt.Sprintf("--lock-wait-timeout=%dms", wait.Milliseconds()))
	}
	args = append(args, s.ExtraArgs...)
	return explain(tool.Cmd{Bin: bin, Args: args, Env: env(s.Conn)}.Run(ctx, nil, w), s.Conn)
}

// explain names the CA file when libpq could not verify the server with
// it: libpq's own message does not.
func explain(err error, c pgpool.Libpq) error {
	if err != nil && c.SSLRootCert != "" && strings.Contains(err.Error(), "certificate verify failed") {
		from := ""
		if c.CASource != "" {
			from = " named by " + c.CASource
		}
		return fmt.Errorf("%w (the server's certificate does not verify against the CA file %s%s)", err, c.SSLRootCert, from)
	}
	return err
}

// Target restores a custom-format archive with pg_restore into an existing
// database (--no-owner --no-privileges --exit-on-error).
type Target struct {
	Conn      pgpool.Libpq // Conn.Database is the database restored into
	PgRestore string       // path; "" = from PATH
	Clean     bool         // --clean --if-exists: replace objects that exist
	ExtraArgs []string
}

// Restore pipes r into pg_restore.
func (t *Target) Restore(ctx context.Context, r io.Reader) error {
	if err := validate(t.Conn); err != nil {
		return err
	}
	bin, err := tool.Find(t.PgRestore, "pg_restore")
	if err != nil {
		return err
	}
	args := []string{"--no-owner", "--no-privileges", "--exit-on-error", "--no-password"}
	if t.Clean {
		args = append(args, "--clean", "--if-exists")
	}
	// -d is what makes pg_restore restore rather than print SQL: a
	// conninfo naming only the database (no secret), the rest from PG*.
	args = append(append(args, t.ExtraArgs...), "--dbname=dbname="+quoteConninfo(t.Conn.Database))
	return explain(tool.Cmd{Bin: bin, Args: args, Env: env(t.Conn)}.Run(ctx, r, nil), t.Conn)
}

// quoteConninfo quotes a value for a libpq conninfo string.
func quoteConninfo(v string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), `'`, `\'`) + "'"
}
