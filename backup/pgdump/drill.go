package pgdump

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/pgpool"
)

// Drill is the PostgreSQL restore drill: restore a backup into a new
// scratch database on the same server, compare the row counts of the
// source's largest tables, drop the scratch database (also when the drill
// fails).
type Drill struct {
	// Source is the database the backup came from (its counts are the
	// reference). Admin, when set, creates and drops the scratch database
	// (it needs CREATEDB; on DO, doadmin); otherwise Source's user does.
	Source pgpool.Libpq
	Admin  *pgpool.Libpq
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

func connect(ctx context.Context, c pgpool.Libpq, db string) (*pgx.Conn, error) {
	c.Database = db
	cfg, err := c.ConnConfig()
	if err != nil {
		return nil, err
	}
	cfg.RuntimeParams["application_name"] = appName
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", c, err)
	}
	return conn, nil
}

// Run restores the backup described by m into the scratch database and
// compares row counts. It returns backup.ErrVerify (wrapped) on a
// mismatch; its errors read "verify <object>: ...".
func (d *Drill) Run(ctx context.Context, store backup.Store, m backup.Manifest, u backup.Unsealer) (backup.VerifyReport, error) {
	return backup.RunDrill(m, "postgres", func(rep *backup.VerifyReport) error { return d.run(ctx, store, m, u, rep) })
}

func (d *Drill) run(ctx context.Context, store backup.Store, m backup.Manifest, u backup.Unsealer, rep *backup.VerifyReport) error {
	var err error
	if rep.Scratch, err = backup.ScratchName(d.Scratch, d.Source.Database, m); err != nil {
		return err
	}
	if err := validate(d.Source); err != nil {
		return err
	}
	admin := d.Source
	if d.Admin != nil {
		admin = *d.Admin
	}
	// Reference counts first: the drill compares with the source as it is.
	tables, err := largestTables(ctx, d.Source, max(d.Tables, 0))
	if err != nil {
		return err
	}
	ac, err := connect(ctx, admin, d.Source.Database)
	if err != nil {
		return err
	}
	defer ac.Close(context.WithoutCancel(ctx))
	if _, err := ac.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{rep.Scratch}.Sanitize()); err != nil {
		return fmt.Errorf("create scratch database %s: %w", rep.Scratch, err)
	}
	if !d.Keep {
		defer func() {
			dctx, cancel := backup.CleanupContext(ctx, time.Minute)
			defer cancel()
			_, _ = ac.Exec(dctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{rep.Scratch}.Sanitize()+" WITH (FORCE)")
		}()
	}
	target := admin // the scratch database belongs to whoever created it
	target.Database = rep.Scratch
	rep.Restore, err = backup.Restore(ctx, store, m, u, &Target{Conn: target, PgRestore: d.PgRestore})
	if err != nil {
		return err
	}
	sc, err := connect(ctx, target, rep.Scratch)
	if err != nil {
		return err
	}
	defer sc.Close(context.WithoutCancel(ctx))
	return rep.Compare(tables, d.Tolerance, func(table string) (int64, error) {
		var n int64
		err := sc.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n)
		return n, err
	})
}

func largestTables(ctx context.Context, s pgpool.Libpq, n int) ([]backup.TableCount, error) {
	if n == 0 {
		n = 10
	}
	c, err := connect(ctx, s, s.Database)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.WithoutCancel(ctx))
	// Other sessions' temporary tables are neither dumped nor readable.
	rows, err := c.Query(ctx, `SELECT quote_ident(schemaname) || '.' || quote_ident(relname)
		FROM pg_stat_user_tables WHERE schemaname NOT LIKE 'pg\_temp\_%'
		ORDER BY pg_total_relation_size(relid) DESC, relname LIMIT $1`, n)
	if err != nil {
		return nil, fmt.Errorf("list tables of %s: %w", s.Database, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list tables of %s: %w", s.Database, err)
	}
	var out []backup.TableCount
	for _, t := range names {
		var cnt int64
		if err := c.QueryRow(ctx, "SELECT count(*) FROM "+t).Scan(&cnt); err != nil {
			return nil, fmt.Errorf("count %s: %w", t, err)
		}
		out = append(out, backup.TableCount{Table: t, Source: cnt})
	}
	return out, nil
}

// ErrNoCreateDB means the role that runs the drill may not create its
// scratch database.
var ErrNoCreateDB = errors.New("may not create databases, and the restore drill restores into a new scratch database")

// Check makes sure, before anything is downloaded, that the drill can
// run: the role that creates the scratch database (Admin, else Source's
// user) connects and has CREATEDB (or is a superuser). Otherwise it
// returns ErrNoCreateDB naming the role and the two fixes: ALTER ROLE ...
// CREATEDB, or Admin (on DigitalOcean, doadmin).
func (d *Drill) Check(ctx context.Context) error {
	if err := validate(d.Source); err != nil {
		return err
	}
	admin := d.Source
	if d.Admin != nil {
		admin = *d.Admin
	}
	c, err := connect(ctx, admin, d.Source.Database)
	if err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx))
	var may bool
	if err := c.QueryRow(ctx, "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&may); err != nil {
		return fmt.Errorf("read the privileges of role %s: %w", admin.User, err)
	}
	if !may {
		return fmt.Errorf("role %s %w: give it CREATEDB (ALTER ROLE %s CREATEDB) or run the drill as a role that has it (on DigitalOcean, doadmin)",
			admin.User, ErrNoCreateDB, pgx.Identifier{admin.User}.Sanitize())
	}
	return nil
}
