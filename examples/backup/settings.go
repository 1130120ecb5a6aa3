package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/agezstd"
	"github.com/fediops/fediops/backup/mysqldump"
	"github.com/fediops/fediops/backup/pgdump"
	"github.com/fediops/fediops/backup/rdb"
	"github.com/fediops/fediops/pgpool"
)

// settings are the flags of backup's commands.
type settings struct {
	envFile        string
	sources        string
	prefix         string
	redisCAFile    string
	mysqlHost      string
	mysqlPort      int
	mysqlUser      string
	mysqlDatabase  string
	recipients     []string
	recipientFiles []string
	identity       string
	keepFor        time.Duration
	keepLast       int
	lockFile       string
	stopGrace      time.Duration
	b2APIBase      string
	zstdLevel      string
	zstdWorkers    int

	source     string
	id         string
	toDatabase string
	toFile     string
	tolerance  float64
	dryRun     bool
}

// usageError is a bad flag or setting: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usage(err error) error {
	if err == nil {
		return nil
	}
	return usageError{err}
}

type listFlag struct{ p *[]string }

func (l listFlag) String() string {
	if l.p == nil {
		return ""
	}
	return strings.Join(*l.p, ",")
}
func (l listFlag) Set(v string) error { *l.p = append(*l.p, v); return nil }

// runFlags are the flags that change what `run` does: `units` puts the
// ones given to it into the unit's command line.
var runFlags = map[string]bool{"env": true, "sources": true, "prefix": true, "redis-cacert": true, "mysql-host": true,
	"mysql-port": true, "mysql-user": true, "mysql-database": true, "recipient": true, "recipient-file": true,
	"keep": true, "keep-last": true, "lock": true, "stop-grace": true, "b2-api": true, "zstd-level": true, "zstd-workers": true}

// pathFlags hold file names, which `units` makes absolute.
var pathFlags = map[string]bool{"env": true, "redis-cacert": true, "recipient-file": true, "lock": true}

func (s *settings) register(fs *flag.FlagSet) {
	fs.StringVar(&s.envFile, "env", ".env.production", "Mastodon's env file (DB_*, REDIS_*, the FEDIOPS_DB_* settings above); empty for the environment alone")
	fs.StringVar(&s.sources, "sources", "postgres,redis", "what to back up: postgres, redis, mysql (comma-separated)")
	fs.StringVar(&s.prefix, "prefix", "db/", "object name prefix in the bucket")
	fs.StringVar(&s.redisCAFile, "redis-cacert", "", "CA file for Redis TLS (default: system roots)")
	fs.StringVar(&s.mysqlHost, "mysql-host", "", "MySQL host (default MYSQL_HOST); password from MYSQL_PASSWORD")
	fs.IntVar(&s.mysqlPort, "mysql-port", 0, "MySQL port (default MYSQL_PORT or 3306)")
	fs.StringVar(&s.mysqlUser, "mysql-user", "", "MySQL user (default MYSQL_USER)")
	fs.StringVar(&s.mysqlDatabase, "mysql-database", "", "MySQL database (default MYSQL_DATABASE)")
	fs.Var(listFlag{&s.recipients}, "recipient", "age public key to encrypt to (repeatable; also BACKUP_AGE_RECIPIENTS)")
	fs.Var(listFlag{&s.recipientFiles}, "recipient-file", "file of age public keys (repeatable)")
	fs.StringVar(&s.identity, "identity", "", "age identity (private key) file, for restore and verify")
	fs.DurationVar(&s.keepFor, "keep", backup.DefaultKeepFor, "keep backups this long")
	fs.IntVar(&s.keepLast, "keep-last", backup.DefaultKeepLast, "never keep fewer than this many newest backups per source")
	fs.StringVar(&s.lockFile, "lock", "/run/lock/fediops-backup.lock", "lock file that keeps runs from overlapping (cron and the systemd unit must share it)")
	fs.DurationVar(&s.stopGrace, "stop-grace", defaultStopGrace, "after SIGTERM/SIGINT, exit 1 if the run has not finished cleaning up within this time")
	fs.StringVar(&s.b2APIBase, "b2-api", "", "B2 API base URL (default B2_API_BASE, else Backblaze)")
	fs.StringVar(&s.zstdLevel, "zstd-level", "default", "zstd level: fastest, default, better, best")
	fs.IntVar(&s.zstdWorkers, "zstd-workers", 1, "goroutines compressing 2 MiB segments in parallel (1: one streaming encoder)")
	fs.StringVar(&s.source, "source", "postgres", "restore/verify: which source")
	fs.StringVar(&s.id, "id", "latest", "restore/verify: backup ID (see list)")
	fs.StringVar(&s.toDatabase, "to-database", "", "restore: PostgreSQL or MySQL database to restore into (must exist)")
	fs.StringVar(&s.toFile, "to-file", "", "restore: file to write a Redis RDB to")
	fs.Float64Var(&s.tolerance, "tolerance", 0.02, "verify: allowed relative difference of each table's row count, or of Redis's key count (the source keeps changing)")
	fs.BoolVar(&s.dryRun, "dry-run", false, "prune: only report what would be deleted")
}

// lookup is env's Lookup with -b2-api in place of B2_API_BASE.
func (s *settings) lookup(env *fediops.Env) fediops.Lookup {
	return func(k string) (string, bool) {
		if k == "B2_API_BASE" && s.b2APIBase != "" {
			return s.b2APIBase, true
		}
		return env.Lookup(k)
	}
}

// sealer is zstd (-zstd-level, -zstd-workers), then age to -recipient,
// -recipient-file and BACKUP_AGE_RECIPIENTS.
func (s *settings) sealer(env fediops.Lookup) (*agezstd.Sealer, error) {
	keys := append([]string(nil), s.recipients...)
	if v, ok := env("BACKUP_AGE_RECIPIENTS"); ok {
		keys = append(keys, strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })...)
	}
	recips, err := agezstd.ParseRecipients(keys, s.recipientFiles)
	if err != nil {
		return nil, err
	}
	level, err := agezstd.ParseLevel(s.zstdLevel)
	if err != nil {
		return nil, fmt.Errorf("-zstd-level: %w", err)
	}
	return &agezstd.Sealer{Recipients: recips, Level: level, Workers: s.zstdWorkers}, nil
}

// unsealer holds the private keys of -identity.
func (s *settings) unsealer(cmd string) (*agezstd.Unsealer, error) {
	if s.identity == "" {
		return nil, fmt.Errorf("-identity (the age private key file) is required to %s", cmd)
	}
	ids, err := agezstd.ParseIdentities(s.identity)
	if err != nil {
		return nil, err
	}
	return &agezstd.Unsealer{Identities: ids}, nil
}

func (s *settings) retention() backup.Retention {
	return backup.Retention{KeepFor: s.keepFor, KeepLast: s.keepLast}
}

// postgres is the direct connection pgpool reads from Mastodon's settings
// (refused when only the pool is known).
func postgres(env fediops.Lookup, log *slog.Logger) (pgpool.Libpq, error) {
	s, err := pgdump.SourceFromEnv(env, pgpool.Options{Logger: log})
	if err != nil {
		return pgpool.Libpq{}, err
	}
	return s.Conn, nil
}

func (s *settings) redis(env fediops.Lookup) (*rdb.Source, error) {
	r, err := rdb.SourceFromEnv(env)
	if err != nil {
		return nil, err
	}
	r.CAFile = s.redisCAFile
	return r, nil
}

// mysql is MYSQL_* with the -mysql-* flags winning.
func (s *settings) mysql(env fediops.Lookup) (*mysqldump.Source, error) {
	m, err := mysqldump.SourceFromEnv(env)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		flag string
		dst  *string
	}{{s.mysqlHost, &m.Host}, {s.mysqlUser, &m.User}, {s.mysqlDatabase, &m.Database}} {
		if f.flag != "" {
			*f.dst = f.flag
		}
	}
	if s.mysqlPort != 0 {
		m.Port = s.mysqlPort
	}
	return m, nil
}

// buildSources makes the sources named in -sources.
func (s *settings) buildSources(env fediops.Lookup, log *slog.Logger) ([]backup.Source, error) {
	var out []backup.Source
	for _, name := range strings.Split(s.sources, ",") {
		switch strings.TrimSpace(name) {
		case "postgres":
			conn, err := postgres(env, log)
			if err != nil {
				return nil, err
			}
			out = append(out, &pgdump.Source{Conn: conn})
		case "redis":
			r, err := s.redis(env)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		case "mysql":
			m, err := s.mysql(env)
			if err != nil {
				return nil, err
			}
			out = append(out, m)
		case "":
		default:
			return nil, fmt.Errorf("-sources: unknown source %q (want postgres, redis, mysql)", name)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("-sources names no source")
	}
	return out, nil
}

// target is the restore destination for a backup of kind, from
// -to-database / -to-file and the connection settings.
func (s *settings) target(env fediops.Lookup, kind string, log *slog.Logger) (backup.Target, error) {
	switch {
	case kind == "redis" && s.toFile != "":
		return &rdb.FileTarget{Path: s.toFile}, nil
	case kind == "postgres" && s.toDatabase != "":
		conn, err := postgres(env, log)
		if err != nil {
			return nil, err
		}
		conn.Database = s.toDatabase
		return &pgdump.Target{Conn: conn}, nil
	case kind == "mysql" && s.toDatabase != "":
		m, err := s.mysql(env)
		if err != nil {
			return nil, err
		}
		m.Database = s.toDatabase
		return &mysqldump.Target{Conn: m.Conn}, nil
	case kind == "redis":
		return nil, errors.New("restoring a redis backup needs -to-file")
	}
	return nil, fmt.Errorf("restoring a %s backup needs -to-database", kind)
}

// verifier is the restore drill for a backup of kind, against the source
// it came from (the same settings as run's), with -tolerance.
func (s *settings) verifier(env fediops.Lookup, kind string, log *slog.Logger) (backup.Verifier, error) {
	switch kind {
	case "postgres":
		conn, err := postgres(env, log)
		if err != nil {
			return nil, err
		}
		return &pgdump.Drill{Source: conn, Tolerance: s.tolerance}, nil
	case "mysql":
		m, err := s.mysql(env)
		if err != nil {
			return nil, err
		}
		return &mysqldump.Drill{Source: m.Conn, Tolerance: s.tolerance}, nil
	case "redis":
		r, err := s.redis(env)
		if err != nil {
			return nil, err
		}
		return &rdb.Drill{Source: *r, Tolerance: s.tolerance}, nil
	}
	return nil, fmt.Errorf("no restore drill for %s backups", kind)
}

// unitCommand is the command line `units` puts into the service: this
// program, run, and every run flag given to units, file names made
// absolute (-env always: the unit runs in its own working directory).
func unitCommand(exe string, fs *flag.FlagSet) ([]string, error) {
	cmd := []string{exe, "run"}
	abs := func(name, v string) (string, error) {
		if !pathFlags[name] || v == "" {
			return v, nil
		}
		return filepath.Abs(v)
	}
	env, err := abs("env", fs.Lookup("env").Value.String())
	if err != nil {
		return nil, err
	}
	cmd = append(cmd, "-env", env)
	fs.Visit(func(f *flag.Flag) {
		if !runFlags[f.Name] || f.Name == "env" || err != nil {
			return
		}
		vals := []string{f.Value.String()}
		if l, ok := f.Value.(listFlag); ok {
			vals = *l.p
		}
		for _, v := range vals {
			var a string
			if a, err = abs(f.Name, v); err == nil {
				cmd = append(cmd, "-"+f.Name, a)
			}
		}
	})
	return cmd, err
}

// writeCatalog prints a catalog as a table, one backup per line, then the
// orphans.
func writeCatalog(w io.Writer, c backup.Catalog) {
	for _, e := range c.Backups {
		fmt.Fprintf(w, "%-10s %s  %10s  %s\n", e.Source, e.ID, backup.HumanBytes(e.Size), e.DataObject)
	}
	for _, o := range c.Orphans {
		fmt.Fprintf(w, "%-10s %s  %10s  %s (incomplete: no manifest or no data)\n", "-",
			o.Modified.UTC().Format(time.RFC3339), backup.HumanBytes(o.Size), o.Name)
	}
}

// writePrune prints what Prune did (or would do, in a dry run).
func writePrune(w io.Writer, res backup.PruneResult) {
	verb := map[bool]string{true: "would delete", false: "deleted"}[res.DryRun]
	for _, e := range res.Deleted {
		fmt.Fprintf(w, "%s %s %s\n", verb, e.Source, e.ID)
	}
	for _, o := range res.Orphans {
		fmt.Fprintf(w, "%s incomplete %s\n", verb, o.Name)
	}
	fmt.Fprintf(w, "kept %d, deleted %d, orphans %d (dry run: %v)\n", len(res.Kept), len(res.Deleted), len(res.Orphans), res.DryRun)
}
