package backup

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/jackc/pgx/v5"
)

// ErrVerify means a restore drill restored a database whose row counts
// differ from the source's.
var ErrVerify = errors.New("backup: verify: restored row counts differ from the source")

// Verifier is a restore drill: PostgresVerify, MySQLVerify, RedisVerify.
type Verifier interface {
	// Run restores the backup described by m somewhere scratch, compares
	// it with its live source and removes the scratch copy.
	Run(ctx context.Context, store Store, m Manifest, identities []age.Identity) (VerifyReport, error)
}

var (
	_ Verifier = (*PostgresVerify)(nil)
	_ Verifier = (*MySQLVerify)(nil)
	_ Verifier = (*RedisVerify)(nil)
)

// PostgresVerify is a restore drill: restore a backup into a new scratch
// database on the same server, compare the row counts of the source's
// largest tables, drop the scratch database.
type PostgresVerify struct {
	// Source is the database the backup came from (its counts are the
	// reference). Admin, when set, is used to create and drop the scratch
	// database (it needs CREATEDB); otherwise Source's user is.
	Source PostgresSource
	Admin  *PostgresSource
	// Scratch names the scratch database; "" = "<db>_verify_<backup id>".
	Scratch string
	// Tables is how many of the largest tables to compare; 0 = 10.
	Tables int
	// Tolerance is the allowed relative difference per table (0.02 = 2%):
	// the live source keeps changing after the dump. 0 = exact.
	Tolerance float64
	// Keep leaves the scratch database in place (for inspection).
	Keep      bool
	PgRestore string
}

// TableCount is one compared table.
type TableCount struct {
	Table    string
	Source   int64
	Restored int64
}

// VerifyReport is the drill's outcome.
type VerifyReport struct {
	Scratch  string
	Tables   []TableCount
	Restore  RestoreStats
	Duration time.Duration
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*$`)

func pgConnect(ctx context.Context, s PostgresSource, db string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig("")
	if err != nil {
		return nil, err
	}
	// Build from fields: the password never passes through a URL or log.
	kv := fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=%s connect_timeout=15",
		quoteKV(s.Host), s.port(), quoteKV(s.User), quoteKV(db), quoteKV(cmp.Or(s.SSLMode, "require")))
	if s.SSLRootCert != "" {
		kv += " sslrootcert=" + quoteKV(s.SSLRootCert)
	}
	if cfg, err = pgx.ParseConfig(kv); err != nil {
		return nil, fmt.Errorf("backup: verify: connection settings: %w", err)
	}
	cfg.Password = s.Password
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("backup: verify: connect to %s as %s: %w", db, s.User, err)
	}
	return c, nil
}

func quoteKV(v string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), `'`, `\'`) + "'"
}

// Run restores the backup described by m into the scratch database and
// compares row counts. It returns ErrVerify (wrapped) on a mismatch.
func (v *PostgresVerify) Run(ctx context.Context, store Store, m Manifest, identities []age.Identity) (VerifyReport, error) {
	t0 := time.Now()
	rep := VerifyReport{Scratch: v.Scratch}
	if rep.Scratch == "" {
		rep.Scratch = strings.ToLower(v.Source.Database + "_verify_" + m.ID)
	}
	if !identRE.MatchString(rep.Scratch) || len(rep.Scratch) > 63 {
		return rep, fmt.Errorf("backup: verify: scratch database name %q is not a plain identifier", rep.Scratch)
	}
	admin := v.Source
	if v.Admin != nil {
		admin = *v.Admin
	}
	// Reference counts first: the drill compares with the source as it is.
	tables, err := largestTables(ctx, v.Source, max(v.Tables, 0))
	if err != nil {
		return rep, err
	}
	ac, err := pgConnect(ctx, admin, v.Source.Database)
	if err != nil {
		return rep, err
	}
	defer ac.Close(context.WithoutCancel(ctx))
	if _, err := ac.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{rep.Scratch}.Sanitize()); err != nil {
		return rep, fmt.Errorf("backup: verify: create scratch database %s: %w", rep.Scratch, err)
	}
	if !v.Keep {
		defer func() {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			_, _ = ac.Exec(dctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{rep.Scratch}.Sanitize()+" WITH (FORCE)")
		}()
	}
	target := admin // the scratch database belongs to whoever created it
	target.Database = rep.Scratch
	rep.Restore, err = Restore(ctx, store, m, identities, &PostgresTarget{Conn: target, PgRestore: v.PgRestore})
	if err != nil {
		return rep, err
	}
	sc, err := pgConnect(ctx, target, rep.Scratch)
	if err != nil {
		return rep, err
	}
	defer sc.Close(context.WithoutCancel(ctx))
	err = compareCounts(&rep, tables, v.Tolerance, func(table string) (int64, error) {
		var n int64
		err := sc.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n)
		return n, err
	})
	rep.Duration = time.Since(t0)
	return rep, err
}

// compareCounts counts each table's restored rows with count, adds them to
// rep.Tables (-1 when counting failed) and returns ErrVerify (wrapped,
// naming every table that failed or differs by more than tolerance).
func compareCounts(rep *VerifyReport, tables []TableCount, tolerance float64, count func(table string) (int64, error)) error {
	var bad []string
	for _, t := range tables {
		n, err := count(t.Table)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", t.Table, err))
			n = -1
		}
		t.Restored = n
		rep.Tables = append(rep.Tables, t)
		if n >= 0 && math.Abs(float64(n-t.Source)) > tolerance*float64(t.Source) {
			bad = append(bad, fmt.Sprintf("%s: source %d rows, restored %d", t.Table, t.Source, n))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s", ErrVerify, strings.Join(bad, "; "))
	}
	return nil
}

func largestTables(ctx context.Context, s PostgresSource, n int) ([]TableCount, error) {
	if n == 0 {
		n = 10
	}
	c, err := pgConnect(ctx, s, s.Database)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.WithoutCancel(ctx))
	rows, err := c.Query(ctx, `SELECT quote_ident(schemaname) || '.' || quote_ident(relname)
		FROM pg_stat_user_tables ORDER BY pg_total_relation_size(relid) DESC, relname LIMIT $1`, n)
	if err != nil {
		return nil, fmt.Errorf("backup: verify: list tables: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("backup: verify: list tables: %w", err)
	}
	var out []TableCount
	for _, t := range names {
		var cnt int64
		if err := c.QueryRow(ctx, "SELECT count(*) FROM "+t).Scan(&cnt); err != nil {
			return nil, fmt.Errorf("backup: verify: count %s: %w", t, err)
		}
		out = append(out, TableCount{Table: t, Source: cnt})
	}
	return out, nil
}
