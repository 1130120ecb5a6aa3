package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/agezstd"
	"github.com/fediops/fediops/backup/mysqldump"
	"github.com/fediops/fediops/backup/pgdump"
	"github.com/fediops/fediops/backup/rdb"
	"github.com/fediops/fediops/pgpool"
)

// dbFlags say how to reach the databases beyond Mastodon's settings.
type dbFlags struct {
	redisCAFile   string
	mysqlHost     string
	mysqlPort     int
	mysqlUser     string
	mysqlDatabase string
}

func (d *dbFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.redisCAFile, "redis-cacert", "", "CA `file` for Redis TLS (default FEDIOPS_REDIS_CA_FILE, else the system roots)")
	fs.StringVar(&d.mysqlHost, "mysql-host", "", "MySQL `host` (default MYSQL_HOST); the password comes from MYSQL_PASSWORD")
	fs.IntVar(&d.mysqlPort, "mysql-port", 0, "MySQL `port` (default MYSQL_PORT, else 3306)")
	fs.StringVar(&d.mysqlUser, "mysql-user", "", "MySQL `user` (default MYSQL_USER)")
	fs.StringVar(&d.mysqlDatabase, "mysql-database", "", "MySQL `database` (default MYSQL_DATABASE)")
}

// listFlag collects a repeatable flag.
type listFlag struct{ p *[]string }

func (l listFlag) String() string {
	if l.p == nil {
		return ""
	}
	return strings.Join(*l.p, ",")
}
func (l listFlag) Set(v string) error { *l.p = append(*l.p, v); return nil }

// postgres is the direct connection pgpool reads from Mastodon's settings
// (refused when only the pool is known).
func postgres(env fediops.Lookup, log *slog.Logger) (pgpool.Libpq, error) {
	s, err := pgdump.SourceFromEnv(env, pgpool.Options{Logger: log})
	if err != nil {
		return pgpool.Libpq{}, err
	}
	return s.Conn, nil
}

func (d *dbFlags) redis(env fediops.Lookup) (*rdb.Source, error) {
	r, err := rdb.SourceFromEnv(env)
	if err != nil {
		return nil, err
	}
	if d.redisCAFile != "" {
		r.CAFile = d.redisCAFile
	}
	return r, r.Check()
}

// mysql is MYSQL_* with the -mysql-* flags winning.
func (d *dbFlags) mysql(env fediops.Lookup) (*mysqldump.Source, error) {
	m, err := mysqldump.SourceFromEnv(env)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		flag string
		dst  *string
	}{{d.mysqlHost, &m.Host}, {d.mysqlUser, &m.User}, {d.mysqlDatabase, &m.Database}} {
		if f.flag != "" {
			*f.dst = f.flag
		}
	}
	if d.mysqlPort != 0 {
		m.Port = d.mysqlPort
	}
	return m, nil
}

// sourceNames is -sources, checked.
func sourceNames(list string) ([]string, error) {
	var out []string
	for _, name := range splitList(list) {
		switch name {
		case "postgres", "redis", "mysql":
			out = append(out, name)
		default:
			return nil, fmt.Errorf("-sources: unknown source %q (want postgres, redis, mysql)", name)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("-sources names no source")
	}
	return out, nil
}

// buildSources makes the sources named.
func (d *dbFlags) buildSources(names []string, env fediops.Lookup, log *slog.Logger) ([]backup.Source, error) {
	var out []backup.Source
	for _, name := range names {
		switch name {
		case "postgres":
			conn, err := postgres(env, log)
			if err != nil {
				return nil, err
			}
			out = append(out, &pgdump.Source{Conn: conn})
		case "redis":
			r, err := d.redis(env)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		case "mysql":
			m, err := d.mysql(env)
			if err != nil {
				return nil, err
			}
			out = append(out, m)
		}
	}
	return out, nil
}

// sealer is zstd, then age to -recipient, -recipient-file and
// BACKUP_AGE_RECIPIENTS.
func sealer(recipients, files []string, level string, workers int, env fediops.Lookup) (*agezstd.Sealer, error) {
	keys := append([]string(nil), recipients...)
	if v, ok := env("BACKUP_AGE_RECIPIENTS"); ok {
		keys = append(keys, splitList(v)...)
	}
	recips, err := agezstd.ParseRecipients(keys, files)
	if err != nil {
		return nil, err
	}
	lv, err := agezstd.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("-zstd-level: %w", err)
	}
	if workers < 1 {
		return nil, fmt.Errorf("-zstd-workers %d: want 1 or more", workers)
	}
	return &agezstd.Sealer{Recipients: recips, Level: lv, Workers: workers}, nil
}

// unsealer holds the private keys of -identity.
func unsealer(identity, cmd string) (*agezstd.Unsealer, error) {
	if identity == "" {
		return nil, fmt.Errorf("-identity (the age private key file) is required to %s", cmd)
	}
	ids, err := agezstd.ParseIdentities(identity)
	if err != nil {
		return nil, err
	}
	return &agezstd.Unsealer{Identities: ids}, nil
}

// kindOf is the kind of the backups of source name: the sources run
// backs up are named by their kind.
func kindOf(name string) (string, error) {
	switch name {
	case "postgres", "redis", "mysql":
		return name, nil
	}
	return "", fmt.Errorf("-source %q: want postgres, redis or mysql", name)
}
