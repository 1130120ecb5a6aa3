package mysqldump

import (
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/internal/tool"
)

// Drill is the MySQL/MariaDB restore drill: restore a mysqldump
// backup into a new scratch database on the same server, compare the row
// counts of the source's largest tables, drop the scratch database (also
// when the drill fails).
type Drill struct {
	// Source is the database the backup came from (its counts are the
	// reference). Admin, when set, creates, fills and drops the scratch
	// database; otherwise Source's user does, which then needs CREATE and
	// DROP on the scratch name (GRANT ALL ON `db\_verify\_%`.* TO ...).
	Source Conn
	Admin  *Conn
	// Scratch names the scratch database; "" = "<db>_verify_<backup id>".
	Scratch string
	// Tables is how many of the largest tables to compare; 0 = 10.
	Tables int
	// Tolerance is the allowed relative difference per table (0.02 = 2%):
	// the live source keeps changing after the dump. 0 = exact.
	Tolerance float64
	// Keep leaves the scratch database in place (for inspection).
	Keep   bool
	Client string // mariadb (or mysql) client path; "" = mariadb from PATH
}

// Run restores the mysqldump backup described by m into the scratch
// database and compares row counts. It returns backup.ErrVerify (wrapped)
// on a mismatch; its errors read "verify <object>: ...".
func (v *Drill) Run(ctx context.Context, store backup.Store, m backup.Manifest, u backup.Unsealer) (backup.VerifyReport, error) {
	return backup.RunDrill(m, "mysql", func(rep *backup.VerifyReport) error { return v.run(ctx, store, m, u, rep) })
}

func (v *Drill) run(ctx context.Context, store backup.Store, m backup.Manifest, u backup.Unsealer, rep *backup.VerifyReport) error {
	var err error
	if rep.Scratch, err = backup.ScratchName(v.Scratch, v.Source.Database, m); err != nil {
		return err
	}
	if err := v.Source.validate(); err != nil {
		return err
	}
	admin := v.Source
	if v.Admin != nil {
		admin = *v.Admin
	}
	// Reference counts first: the drill compares with the source as it is.
	tables, err := v.largestTables(ctx)
	if err != nil {
		return err
	}
	if _, err := v.query(ctx, &admin, "", "CREATE DATABASE "+quoteMySQL(rep.Scratch)); err != nil {
		return fmt.Errorf("create scratch database %s: %w", rep.Scratch, err)
	}
	if !v.Keep {
		defer func() {
			dctx, cancel := backup.CleanupContext(ctx, time.Minute)
			defer cancel()
			_, _ = v.query(dctx, &admin, "", "DROP DATABASE IF EXISTS "+quoteMySQL(rep.Scratch))
		}()
	}
	scratch := admin
	scratch.Database = rep.Scratch
	rep.Restore, err = backup.Restore(ctx, store, m, u, &Target{Conn: scratch, Client: v.Client})
	if err != nil {
		return err
	}
	return rep.Compare(tables, v.Tolerance, func(table string) (int64, error) {
		return v.count(ctx, &admin, rep.Scratch, table)
	})
}

// largestTables counts the rows of the source's largest base tables.
func (v *Drill) largestTables(ctx context.Context) ([]backup.TableCount, error) {
	db := v.Source.Database
	// HEX keeps any byte of a name out of the tab-separated output's way.
	lines, err := v.query(ctx, &v.Source, db, fmt.Sprintf(`SELECT HEX(TABLE_NAME) FROM information_schema.TABLES
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'
		ORDER BY DATA_LENGTH + INDEX_LENGTH DESC, TABLE_NAME LIMIT %d`, cmp.Or(max(v.Tables, 0), 10)))
	if err != nil {
		return nil, fmt.Errorf("list tables of %s: %w", db, err)
	}
	var out []backup.TableCount
	for _, l := range lines {
		name, err := hex.DecodeString(l)
		if err != nil {
			return nil, fmt.Errorf("list tables of %s: bad line %q", db, l)
		}
		n, err := v.count(ctx, &v.Source, db, string(name))
		if err != nil {
			return nil, err
		}
		out = append(out, backup.TableCount{Table: string(name), Source: n})
	}
	return out, nil
}

func (v *Drill) count(ctx context.Context, c *Conn, db, table string) (int64, error) {
	lines, err := v.query(ctx, c, db, "SELECT COUNT(*) FROM "+quoteMySQL(table))
	if err == nil && len(lines) != 1 {
		err = fmt.Errorf("%d lines of output", len(lines))
	}
	var n int64
	if err == nil {
		n, err = strconv.ParseInt(lines[0], 10, 64)
	}
	if err != nil {
		return 0, fmt.Errorf("count %s.%s: %w", db, table, err)
	}
	return n, nil
}

// query runs sql with the client as c's user (password in MYSQL_PWD) in
// database db ("" = none) and returns the output's lines.
func (v *Drill) query(ctx context.Context, c *Conn, db, sql string) ([]string, error) {
	bin, err := tool.Find(v.Client, "mariadb")
	if err != nil {
		return nil, err
	}
	args := append(c.args(), "--batch", "--skip-column-names", "-e", sql)
	if db != "" {
		args = append(args, db)
	}
	var out bytes.Buffer
	if err := (tool.Cmd{Bin: bin, Args: args, Env: c.env()}).Run(ctx, nil, &out); err != nil {
		return nil, err
	}
	return strings.Fields(out.String()), nil
}

// quoteMySQL quotes an identifier with backticks.
func quoteMySQL(name string) string { return "`" + strings.ReplaceAll(name, "`", "``") + "`" }

// ErrNoCreate means the user that runs the drill may not create (or drop)
// its scratch database.
var ErrNoCreate = errors.New("may not create the drill's scratch databases")

// Check makes sure, before anything is downloaded, that the drill can
// run: the user that creates the scratch database (Admin, else Source's)
// creates and drops a probe database named as the scratch databases are
// (<db>_verify_check). Its error names the user and the grant it needs.
func (v *Drill) Check(ctx context.Context) error {
	if err := v.Source.validate(); err != nil {
		return err
	}
	admin := v.Source
	if v.Admin != nil {
		admin = *v.Admin
	}
	probe := v.Source.Database + "_verify_check"
	if _, err := v.query(ctx, &admin, "", "CREATE DATABASE IF NOT EXISTS "+quoteMySQL(probe)); err != nil {
		return fmt.Errorf("user %s %w (GRANT ALL ON `%s\\_verify\\_%%`.* TO %s, or run the drill as a user that may): %w",
			admin.User, ErrNoCreate, strings.ReplaceAll(v.Source.Database, "_", "\\_"), admin.User, err)
	}
	if _, err := v.query(ctx, &admin, "", "DROP DATABASE IF EXISTS "+quoteMySQL(probe)); err != nil {
		return fmt.Errorf("user %s may not drop the drill's scratch databases: %w", admin.User, err)
	}
	return nil
}
