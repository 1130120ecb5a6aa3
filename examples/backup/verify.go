package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/mysqldump"
	"github.com/fediops/fediops/backup/pgdump"
	"github.com/fediops/fediops/backup/rdb"
	"github.com/fediops/fediops/command"
)

// The settings of the role that creates the drill's scratch database
// when Mastodon's own may not.
const (
	envAdminUser     = "FEDIOPS_VERIFY_ADMIN_USER"
	envAdminPassword = "FEDIOPS_VERIFY_ADMIN_PASSWORD"
)

var verifyHelp = command.Help{
	Usage: "backup verify -identity KEYFILE [-source postgres|mysql|redis] [-id ID] [-tolerance 0.02] [flags]",
	About: `A restore drill: restores one backup (-id, default the latest of -source) into a
scratch copy and compares it with the live source, within -tolerance (the
source keeps changing after the dump). PostgreSQL and MySQL: a scratch
database <db>_verify_<id> on the source's server, dropped afterwards, the
largest tables' row counts compared; Redis: a scratch RDB in $TMPDIR checked
by redis-check-rdb, its key count compared with the server's.

Privileges, checked before anything is downloaded: PostgreSQL needs a role
that may create databases, Mastodon's (ALTER ROLE mastodon CREATEDB) or
another (on DigitalOcean, doadmin) in FEDIOPS_VERIFY_ADMIN_USER and
FEDIOPS_VERIFY_ADMIN_PASSWORD; MySQL needs CREATE and DROP on the scratch
names (GRANT ALL ON ` + "`<db>\\_verify\\_%`" + `.* TO the user), or the same two
settings. On a terminal it shows the bytes downloaded, their rate and the
time left.`,
	Env: vars(envPostgres, envRedis, envMySQL,
		command.Var{Name: envAdminUser + ", " + envAdminPassword, About: "the role (user) that creates and drops the scratch database, when Mastodon's may not (never printed: the password)"},
		envB2),
	Exit: [3]string{
		"the restored copy matches the source within -tolerance",
		"the counts differ, or B2, the database or the restore failed",
		"a usage or configuration error (a bad flag, -env, -identity, a role that may not create the scratch database), found before anything is downloaded",
	},
}

func runVerify(ctx context.Context, p *command.Program, args []string) error {
	fs := flag.NewFlagSet("backup verify", flag.ContinueOnError)
	var c common
	var db dbFlags
	var k pick
	c.register(fs, true)
	db.register(fs)
	k.register(fs)
	tolerance := fs.Float64("tolerance", 0.02, "allowed relative difference of each table's row count, or of Redis's key count")
	if err := p.Parse(fs, args, verifyHelp); err != nil {
		return err
	}
	if *tolerance < 0 {
		return command.Usagef("-tolerance %g: want 0 or more", *tolerance)
	}
	kind, s, u, err := k.open(p, &c, "verify")
	if err != nil {
		return err
	}
	adminUser, adminPass := s.get(envAdminUser), s.get(envAdminPassword)
	var v backup.Verifier
	var check func(context.Context) error
	switch kind {
	case "postgres":
		conn, err := postgres(s.lookup, s.log)
		if err != nil {
			return command.Usage(err)
		}
		d := &pgdump.Drill{Source: conn, Tolerance: *tolerance}
		if adminUser != "" {
			admin := conn
			admin.User, admin.Password = adminUser, adminPass
			d.Admin = &admin
		}
		v, check = d, d.Check
	case "mysql":
		m, err := db.mysql(s.lookup)
		if err != nil {
			return command.Usage(err)
		}
		d := &mysqldump.Drill{Source: m.Conn, Tolerance: *tolerance}
		if adminUser != "" {
			admin := m.Conn
			admin.User, admin.Password = adminUser, adminPass
			d.Admin = &admin
		}
		v, check = d, d.Check
	default:
		r, err := db.redis(s.lookup)
		if err != nil {
			return command.Usage(err)
		}
		v = &rdb.Drill{Source: *r, Tolerance: *tolerance}
	}
	cfg, err := s.b2Config(nil)
	if err != nil {
		return err
	}
	ctx, disarm := withStopGrace(ctx, k.stopGrace, s.log)
	defer disarm()
	// The privileges, before anything is downloaded.
	if check != nil {
		if err := check(ctx); err != nil {
			if ctx.Err() == nil && (errors.Is(err, pgdump.ErrNoCreateDB) || errors.Is(err, mysqldump.ErrNoCreate)) {
				return command.Usage(fmt.Errorf("%w (or set %s and %s)", err, envAdminUser, envAdminPassword))
			}
			return err
		}
	}
	store, m, err := k.find(ctx, cfg)
	if err != nil {
		return err
	}
	bar := s.con.start(m.StoredBytes, "verify "+m.Object)
	rep, err := v.Run(ctx, meteredStore{store, bar}, m, u)
	bar.finish()
	for _, t := range rep.Tables {
		fmt.Fprintf(p.Stdout, "%-40s source %10d  restored %10d\n", t.Table, t.Source, t.Restored)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(p.Stdout, "verify OK: %s restored into %s in %s\n", m.Object, rep.Scratch, rep.Duration.Round(time.Second))
	return nil
}
