package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/agezstd"
	"github.com/fediops/fediops/backup/b2store"
	"github.com/fediops/fediops/backup/mysqldump"
	"github.com/fediops/fediops/backup/pgdump"
	"github.com/fediops/fediops/backup/rdb"
	"github.com/fediops/fediops/command"
)

var restoreHelp = command.Help{
	Usage: `backup restore -source postgres|mysql -to-database NAME -identity KEYFILE [flags]
       backup restore -source redis -to-file FILE -identity KEYFILE [flags]`,
	About: `Restores one backup (-id, default the latest of -source): downloads it,
checks its SHA-256 against the manifest, decrypts it with the age private key
of -identity (keep it off the backup host), decompresses it and feeds it to
pg_restore (into an existing database), the mariadb client, or an RDB file.
The database settings are run's (PostgreSQL's direct connection). On a
terminal it shows the bytes downloaded of the total, their rate and the time
left; without one it prints one line when it succeeds.`,
	Env: vars(envPostgres, envMySQL, envB2),
	Exit: [3]string{
		"restored, the SHA-256 matching the manifest",
		"B2, the database or the checksum failed (a failed restore to a file leaves no file)",
		"a usage or configuration error (a bad flag, -env, -identity, the target), found before any network call",
	},
}

// pick are the flags that choose a backup.
type pick struct {
	prefix, source, id, identity string
	stopGrace                    time.Duration
}

func (k *pick) register(fs *flag.FlagSet) {
	fs.StringVar(&k.prefix, "prefix", "db/", "object name `prefix` in the bucket")
	fs.StringVar(&k.source, "source", "postgres", "which source's backup: postgres, redis or mysql")
	fs.StringVar(&k.id, "id", "latest", "backup `ID` (see list)")
	fs.StringVar(&k.identity, "identity", "", "age identity (private key) `file` (required)")
	fs.DurationVar(&k.stopGrace, "stop-grace", defaultStopGrace, "after SIGINT or SIGTERM: clean up and exit 1 within this time")
}

// open checks the flags that pick a backup, reads -env and the identity
// file: what restore and verify do before anything else. cmd names the
// command in the message for a missing -identity.
func (k *pick) open(p *command.Program, c *common, cmd string) (kind string, s *session, u *agezstd.Unsealer, err error) {
	if kind, err = kindOf(k.source); err != nil {
		return "", nil, nil, command.Usage(err)
	}
	if err = checkStopGrace(k.stopGrace); err != nil {
		return "", nil, nil, err
	}
	if s, err = c.open(p); err != nil {
		return "", nil, nil, err
	}
	if u, err = unsealer(k.identity, cmd); err != nil {
		return "", nil, nil, command.Usage(err)
	}
	return kind, s, u, nil
}

// find opens the bucket and reads the manifest of the backup picked.
func (k *pick) find(ctx context.Context, cfg b2store.Config) (backup.Store, backup.Manifest, error) {
	store, err := openStore(ctx, cfg)
	if err != nil {
		return nil, backup.Manifest{}, err
	}
	cat, err := backup.Scan(ctx, store, k.prefix)
	if err != nil {
		return nil, backup.Manifest{}, fmt.Errorf("list %s: %w", k.prefix, err)
	}
	e, err := cat.Find(k.source, k.id)
	if err != nil {
		return nil, backup.Manifest{}, err
	}
	m, err := backup.ReadManifest(ctx, store, e)
	return store, m, err
}

func runRestore(ctx context.Context, p *command.Program, args []string) error {
	fs := flag.NewFlagSet("backup restore", flag.ContinueOnError)
	var c common
	var db dbFlags
	var k pick
	c.register(fs, true)
	db.register(fs)
	k.register(fs)
	toDatabase := fs.String("to-database", "", "PostgreSQL or MySQL `database` to restore into (it must exist)")
	toFile := fs.String("to-file", "", "`file` to write a Redis RDB to")
	if err := p.Parse(fs, args, restoreHelp); err != nil {
		return err
	}
	kind, s, u, err := k.open(p, &c, "restore")
	if err != nil {
		return err
	}
	var dst backup.Target
	switch {
	case kind == "redis" && *toFile != "":
		dst = &rdb.FileTarget{Path: *toFile}
	case kind == "redis":
		return command.Usagef("restoring a redis backup needs -to-file")
	case *toDatabase == "":
		return command.Usagef("restoring a %s backup needs -to-database", kind)
	case kind == "postgres":
		conn, err := postgres(s.lookup, s.log)
		if err != nil {
			return command.Usage(err)
		}
		conn.Database = *toDatabase
		dst = &pgdump.Target{Conn: conn}
	default:
		m, err := db.mysql(s.lookup)
		if err != nil {
			return command.Usage(err)
		}
		m.Database = *toDatabase
		dst = &mysqldump.Target{Conn: m.Conn}
	}
	cfg, err := s.b2Config(nil)
	if err != nil {
		return err
	}
	ctx, disarm := withStopGrace(ctx, k.stopGrace, s.log)
	defer disarm()
	store, m, err := k.find(ctx, cfg)
	if err != nil {
		return err
	}
	bar := s.con.start(m.StoredBytes, "restore "+m.Object)
	st, err := backup.Restore(ctx, meteredStore{store, bar}, m, u, dst)
	bar.finish()
	if err != nil {
		return err
	}
	fmt.Fprintf(p.Stdout, "restored %s: %s, sha256 %s OK\n", m.Object, backup.HumanBytes(st.DumpBytes), st.SHA256)
	return nil
}
