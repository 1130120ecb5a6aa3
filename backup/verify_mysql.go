package backup

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

	"filippo.io/age"
)

// MySQLVerify is the MySQL/MariaDB restore drill: restore a mysqldump
// backup into a new scratch database on the same server, compare the row
// counts of the source's largest tables, drop the scratch database (also
// when the drill fails).
type MySQLVerify struct {
	// Source is the database the backup came from (its counts are the
	// reference). Admin, when set, creates, fills and drops the scratch
	// database; otherwise Source's user does, which then needs CREATE and
	// DROP on the scratch name (GRANT ALL ON `db\_verify\_%`.* TO ...).
	Source MySQLSource
	Admin  *MySQLSource
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
// database and compares row counts. It returns ErrVerify (wrapped) on a
// mismatch.
func (v *MySQLVerify) Run(ctx context.Context, store Store, m Manifest, identities []age.Identity) (VerifyReport, error) {
	t0 := time.Now()
	rep := VerifyReport{Scratch: v.Scratch}
	if rep.Scratch == "" {
		rep.Scratch = strings.ToLower(v.Source.Database + "_verify_" + m.ID)
	}
	if !identRE.MatchString(rep.Scratch) || len(rep.Scratch) > 64 {
		return rep, fmt.Errorf("backup: verify: scratch database name %q is not a plain identifier", rep.Scratch)
	}
	if v.Source.Database == "" || v.Source.Host == "" || v.Source.User == "" {
		return rep, errors.New("backup: verify: mysql: Host, User and Database must be set")
	}
	if m.Kind != "mysql" {
		return rep, fmt.Errorf("backup: verify: %s is a %s backup, not mysql", m.Object, m.Kind)
	}
	admin := v.Source
	if v.Admin != nil {
		admin = *v.Admin
	}
	// Reference counts first: the drill compares with the source as it is.
	tables, err := v.largestTables(ctx)
	if err != nil {
		return rep, err
	}
	if _, err := v.query(ctx, &admin, "", "CREATE DATABASE "+quoteMySQL(rep.Scratch)); err != nil {
		return rep, fmt.Errorf("backup: verify: create scratch database %s: %w", rep.Scratch, err)
	}
	if !v.Keep {
		defer func() {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			_, _ = v.query(dctx, &admin, "", "DROP DATABASE IF EXISTS "+quoteMySQL(rep.Scratch))
		}()
	}
	rep.Restore, err = Restore(ctx, store, m, identities, &MySQLTarget{Host: admin.Host, Port: admin.Port,
		User: admin.User, Password: admin.Password, Database: rep.Scratch, Client: v.Client})
	if err != nil {
		return rep, err
	}
	err = compareCounts(&rep, tables, v.Tolerance, func(table string) (int64, error) {
		return v.count(ctx, &admin, rep.Scratch, table)
	})
	rep.Duration = time.Since(t0)
	return rep, err
}

// largestTables counts the rows of the source's largest base tables.
func (v *MySQLVerify) largestTables(ctx context.Context) ([]TableCount, error) {
	db := v.Source.Database
	// HEX keeps any byte of a name out of the tab-separated output's way.
	lines, err := v.query(ctx, &v.Source, db, fmt.Sprintf(`SELECT HEX(TABLE_NAME) FROM information_schema.TABLES
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'
		ORDER BY DATA_LENGTH + INDEX_LENGTH DESC, TABLE_NAME LIMIT %d`, cmp.Or(max(v.Tables, 0), 10)))
	if err != nil {
		return nil, fmt.Errorf("backup: verify: list tables of %s: %w", db, err)
	}
	var out []TableCount
	for _, l := range lines {
		name, err := hex.DecodeString(l)
		if err != nil {
			return nil, fmt.Errorf("backup: verify: list tables of %s: bad line %q", db, l)
		}
		n, err := v.count(ctx, &v.Source, db, string(name))
		if err != nil {
			return nil, err
		}
		out = append(out, TableCount{Table: string(name), Source: n})
	}
	return out, nil
}

func (v *MySQLVerify) count(ctx context.Context, c *MySQLSource, db, table string) (int64, error) {
	lines, err := v.query(ctx, c, db, "SELECT COUNT(*) FROM "+quoteMySQL(table))
	if err == nil && len(lines) != 1 {
		err = fmt.Errorf("%d lines of output", len(lines))
	}
	var n int64
	if err == nil {
		n, err = strconv.ParseInt(lines[0], 10, 64)
	}
	if err != nil {
		return 0, fmt.Errorf("backup: verify: count %s.%s: %w", db, table, err)
	}
	return n, nil
}

// query runs sql with the client as c's user (password in MYSQL_PWD) in
// database db ("" = none) and returns the output's lines.
func (v *MySQLVerify) query(ctx context.Context, c *MySQLSource, db, sql string) ([]string, error) {
	bin, err := lookTool(v.Client, "mariadb")
	if err != nil {
		return nil, err
	}
	args := append(mysqlConn(c.Host, c.Port, c.User), "--batch", "--skip-column-names", "-e", sql)
	if db != "" {
		args = append(args, db)
	}
	var out bytes.Buffer
	if err := (tool{bin: bin, args: args, env: []string{"MYSQL_PWD=" + c.Password}}).run(ctx, nil, &out); err != nil {
		return nil, err
	}
	return strings.Fields(out.String()), nil
}

// quoteMySQL quotes an identifier with backticks.
func quoteMySQL(name string) string { return "`" + strings.ReplaceAll(name, "`", "``") + "`" }
