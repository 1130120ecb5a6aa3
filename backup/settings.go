package backup

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/internal/envfile"
)

// Settings is what a backup command reads from its flags, the process
// environment and Mastodon's .env.production, turned into package configs.
// The process environment wins over the file, as with Ruby dotenv.
type Settings struct {
	EnvFile        string   // .env.production path; "" = none
	Sources        string   // comma-separated: postgres,redis,mysql
	Prefix         string   // object prefix, default "db/"
	PGHost         string   // overrides DB_HOST
	PGPort         int      // overrides DB_PORT: the direct port (25060 on DO)
	PGDatabase     string   // overrides DB_NAME: the real database, not the pool
	PGSSLRootCert  string   // CA file for verify-full
	PoolNames      string   // comma-separated pool names refused as databases
	RedisCAFile    string   // CA for redis-cli --tls ("" = system roots)
	MySQLHost      string   // MYSQL_HOST
	MySQLPort      int      // MYSQL_PORT
	MySQLUser      string   // MYSQL_USER
	MySQLDatabase  string   // MYSQL_DATABASE; password from MYSQL_PASSWORD
	Recipients     []string // age1... public keys (-recipient, repeatable; BACKUP_AGE_RECIPIENTS)
	RecipientFiles []string // files of public keys
	Identity       string   // age identity file (restore, verify)
	KeepFor        time.Duration
	KeepLast       int
	LockFile       string
	StopGrace      time.Duration // how long a run may clean up after SIGTERM (SignalContext)
	B2APIBase      string        // B2 stand-in (B2_API_BASE)
	ZstdLevel      string        // fastest, default, better, best
	ZstdWorkers    int           // parallel zstd segments; 1 = one streaming encoder

	Source     string  // restore/verify: which source
	ID         string  // restore/verify: backup ID or "latest"
	ToDatabase string  // restore: PostgreSQL or MySQL database
	ToFile     string  // restore: RDB file path
	Tolerance  float64 // verify: relative row-count (Redis: key-count) difference allowed
	DryRun     bool    // prune: report only
}

type listFlag struct{ p *[]string }

func (l listFlag) String() string {
	if l.p == nil {
		return ""
	}
	return strings.Join(*l.p, ",")
}
func (l listFlag) Set(v string) error { *l.p = append(*l.p, v); return nil }

// RegisterFlags defines the settings' flags on fs.
func (s *Settings) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&s.EnvFile, "env", ".env.production", "Mastodon's env file (DB_*, REDIS_*); empty for none")
	fs.StringVar(&s.Sources, "sources", "postgres,redis", "what to back up: postgres, redis, mysql (comma-separated)")
	fs.StringVar(&s.Prefix, "prefix", "db/", "object name prefix in the bucket")
	fs.StringVar(&s.PGHost, "pg-host", "", "PostgreSQL host (default DB_HOST)")
	fs.IntVar(&s.PGPort, "pg-port", 0, "PostgreSQL DIRECT port, 25060 on DigitalOcean (default DB_PORT; the pool port 25061 is refused)")
	fs.StringVar(&s.PGDatabase, "pg-database", "", "real database name, not the pool name (default DB_NAME)")
	fs.StringVar(&s.PGSSLRootCert, "pg-sslrootcert", "", "CA certificate file; sets sslmode=verify-full")
	fs.StringVar(&s.PoolNames, "pool-names", "", "comma-separated pgBouncer pool names to refuse as database names")
	fs.StringVar(&s.RedisCAFile, "redis-cacert", "", "CA file for Redis TLS (default: system roots)")
	fs.StringVar(&s.MySQLHost, "mysql-host", "", "MySQL host (default MYSQL_HOST); password from MYSQL_PASSWORD")
	fs.IntVar(&s.MySQLPort, "mysql-port", 0, "MySQL port (default MYSQL_PORT or 3306)")
	fs.StringVar(&s.MySQLUser, "mysql-user", "", "MySQL user (default MYSQL_USER)")
	fs.StringVar(&s.MySQLDatabase, "mysql-database", "", "MySQL database (default MYSQL_DATABASE)")
	fs.Var(listFlag{&s.Recipients}, "recipient", "age public key to encrypt to (repeatable; also BACKUP_AGE_RECIPIENTS)")
	fs.Var(listFlag{&s.RecipientFiles}, "recipient-file", "file of age public keys (repeatable)")
	fs.StringVar(&s.Identity, "identity", "", "age identity (private key) file, for restore and verify")
	fs.DurationVar(&s.KeepFor, "keep", DefaultKeepFor, "keep backups this long")
	fs.IntVar(&s.KeepLast, "keep-last", DefaultKeepLast, "never keep fewer than this many newest backups per source")
	fs.StringVar(&s.LockFile, "lock", "/run/lock/fediops-backup.lock", "lock file that keeps runs from overlapping (cron and the systemd unit must share it)")
	fs.DurationVar(&s.StopGrace, "stop-grace", DefaultStopGrace, "after SIGTERM/SIGINT, exit 1 if the run has not finished cleaning up within this time")
	fs.StringVar(&s.B2APIBase, "b2-api", "", "B2 API base URL (default B2_API_BASE, else Backblaze)")
	fs.StringVar(&s.ZstdLevel, "zstd-level", "default", "zstd level: fastest, default, better, best")
	fs.IntVar(&s.ZstdWorkers, "zstd-workers", 1, "goroutines compressing 2 MiB segments in parallel (1: one streaming encoder)")
	fs.StringVar(&s.Source, "source", "postgres", "restore/verify: which source")
	fs.StringVar(&s.ID, "id", "latest", "restore/verify: backup ID (see list)")
	fs.StringVar(&s.ToDatabase, "to-database", "", "restore: PostgreSQL or MySQL database to restore into (must exist)")
	fs.StringVar(&s.ToFile, "to-file", "", "restore: file to write a Redis RDB to")
	fs.Float64Var(&s.Tolerance, "tolerance", 0.02, "verify: allowed relative difference of each table's row count, or of Redis's key count (the source keeps changing)")
	fs.BoolVar(&s.DryRun, "dry-run", false, "prune: only report what would be deleted")
}

// WritePrune prints what Prune did (or would do, in a dry run).
func WritePrune(w io.Writer, res PruneResult) {
	verb := map[bool]string{true: "would delete", false: "deleted"}[res.DryRun]
	for _, e := range res.Deleted {
		fmt.Fprintf(w, "%s %s %s\n", verb, e.Source, e.ID)
	}
	for _, o := range res.Orphans {
		fmt.Fprintf(w, "%s incomplete %s\n", verb, o.Name)
	}
	fmt.Fprintf(w, "kept %d, deleted %d, orphans %d (dry run: %v)\n", len(res.Kept), len(res.Deleted), len(res.Orphans), res.DryRun)
}

// Target is the restore destination for a backup of kind, from
// -to-database / -to-file and the connection settings.
func (s *Settings) Target(env fediops.Lookup, kind string) (Target, error) {
	switch {
	case kind == "redis" && s.ToFile != "":
		return &RedisFileTarget{Path: s.ToFile}, nil
	case kind == "postgres" && s.ToDatabase != "":
		pg, err := s.Postgres(env)
		if err != nil {
			return nil, err
		}
		pg.Database = s.ToDatabase
		return &PostgresTarget{Conn: *pg}, nil
	case kind == "mysql" && s.ToDatabase != "":
		my := s.MySQL(env)
		return &MySQLTarget{Host: my.Host, Port: my.Port, User: my.User, Password: my.Password, Database: s.ToDatabase}, nil
	case kind == "redis":
		return nil, errors.New("backup: restoring a redis backup needs -to-file")
	}
	return nil, fmt.Errorf("backup: restoring a %s backup needs -to-database", kind)
}

// Verifier is the restore drill for a backup of kind, against the source it
// came from (the same settings as run's), with -tolerance.
func (s *Settings) Verifier(env fediops.Lookup, kind string) (Verifier, error) {
	switch kind {
	case "postgres":
		pg, err := s.Postgres(env)
		if err != nil {
			return nil, err
		}
		return &PostgresVerify{Source: *pg, Tolerance: s.Tolerance}, nil
	case "mysql":
		return &MySQLVerify{Source: *s.MySQL(env), Tolerance: s.Tolerance}, nil
	case "redis":
		r, err := RedisSourceFromEnv(env)
		if err != nil {
			return nil, err
		}
		r.CAFile = s.RedisCAFile
		return &RedisVerify{Source: *r, Tolerance: s.Tolerance}, nil
	}
	return nil, fmt.Errorf("backup: verify: no restore drill for %s backups", kind)
}

// WriteCatalog prints a catalog as a table, one backup per line, then the
// orphans.
func WriteCatalog(w io.Writer, c Catalog) {
	for _, e := range c.Backups {
		fmt.Fprintf(w, "%-10s %s  %10s  %s\n", e.Source, e.ID, HumanBytes(e.Size), e.DataObject)
	}
	for _, o := range c.Orphans {
		fmt.Fprintf(w, "%-10s %s  %10s  %s (incomplete: no manifest or no data)\n", "-",
			o.Modified.UTC().Format(time.RFC3339), HumanBytes(o.Size), o.Name)
	}
}

// Lookup reads EnvFile (if set) and returns a lookup in which the process
// environment wins over the file.
func (s *Settings) Lookup() (func(string) (string, bool), error) {
	var f *envfile.File
	if s.EnvFile != "" {
		var err error
		if f, err = envfile.Read(s.EnvFile); err != nil {
			return nil, fmt.Errorf("backup: %w", err)
		}
	}
	return func(k string) (string, bool) {
		if k == "B2_API_BASE" && s.B2APIBase != "" {
			return s.B2APIBase, true
		}
		if v, ok := os.LookupEnv(k); ok {
			return v, true
		}
		if f != nil {
			return f.Get(k)
		}
		return "", false
	}, nil
}

// Pipeline is the backup pipeline for store with the recipients from
// -recipient, -recipient-file and BACKUP_AGE_RECIPIENTS.
func (s *Settings) Pipeline(env fediops.Lookup, store Store, log *slog.Logger) (Pipeline, error) {
	recips, err := s.AgeRecipients(env)
	if err != nil {
		return Pipeline{}, err
	}
	p := Pipeline{Store: store, Prefix: s.Prefix, Recipients: recips, Logger: log, ZstdWorkers: s.ZstdWorkers}
	if s.ZstdLevel != "" {
		ok := false
		if ok, p.ZstdLevel = zstd.EncoderLevelFromString(s.ZstdLevel); !ok {
			return p, fmt.Errorf("backup: -zstd-level %q: want fastest, default, better or best", s.ZstdLevel)
		}
	}
	return p, nil
}

// Retention is the policy from -keep and -keep-last.
func (s *Settings) Retention() Retention { return Retention{KeepFor: s.KeepFor, KeepLast: s.KeepLast} }

// AgeRecipients parses -recipient, -recipient-file and BACKUP_AGE_RECIPIENTS.
func (s *Settings) AgeRecipients(env fediops.Lookup) ([]age.Recipient, error) {
	keys := append([]string(nil), s.Recipients...)
	if v, ok := env("BACKUP_AGE_RECIPIENTS"); ok {
		keys = append(keys, strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })...)
	}
	return ParseRecipients(keys, s.RecipientFiles)
}

// BuildSources makes the sources named in -sources.
func (s *Settings) BuildSources(env fediops.Lookup) ([]Source, error) {
	var out []Source
	for _, name := range strings.Split(s.Sources, ",") {
		switch strings.TrimSpace(name) {
		case "postgres":
			pg, err := s.Postgres(env)
			if err != nil {
				return nil, err
			}
			out = append(out, pg)
		case "redis":
			r, err := RedisSourceFromEnv(env)
			if err != nil {
				return nil, err
			}
			r.CAFile = s.RedisCAFile
			out = append(out, r)
		case "mysql":
			out = append(out, s.MySQL(env))
		case "":
		default:
			return nil, fmt.Errorf("backup: -sources: unknown source %q (want postgres, redis, mysql)", name)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("backup: -sources names no source")
	}
	return out, nil
}

// Postgres is the PostgreSQL source: DB_* (or DATABASE_URL) overridden by
// the -pg-* flags, validated (the pool is refused with a hint).
func (s *Settings) Postgres(env fediops.Lookup) (*PostgresSource, error) {
	pg, err := PostgresSourceFromEnv(env)
	if err != nil {
		return nil, err
	}
	if s.PGHost != "" {
		pg.Host = s.PGHost
	}
	if s.PGPort != 0 {
		pg.Port = s.PGPort
	}
	if s.PGDatabase != "" {
		pg.Database = s.PGDatabase
	}
	if s.PGSSLRootCert != "" {
		pg.SSLRootCert, pg.SSLMode = s.PGSSLRootCert, "verify-full"
	}
	for _, n := range strings.Split(s.PoolNames, ",") {
		if n = strings.TrimSpace(n); n != "" {
			pg.PoolDatabases = append(pg.PoolDatabases, n)
		}
	}
	if err := pg.Validate(); err != nil {
		if errors.Is(err, ErrPoolConnection) {
			return nil, fmt.Errorf("%w; pass -pg-port 25060 -pg-database <real database>", err)
		}
		return nil, err
	}
	return pg, nil
}

// MySQL is the MySQL source from MYSQL_* and the -mysql-* flags.
func (s *Settings) MySQL(env fediops.Lookup) *MySQLSource {
	get := func(flagVal, key string) string {
		if flagVal != "" {
			return flagVal
		}
		v, _ := env(key)
		return v
	}
	m := &MySQLSource{Host: get(s.MySQLHost, "MYSQL_HOST"), User: get(s.MySQLUser, "MYSQL_USER"),
		Database: get(s.MySQLDatabase, "MYSQL_DATABASE")}
	m.Password, _ = env("MYSQL_PASSWORD")
	m.Port = s.MySQLPort
	if m.Port == 0 {
		m.Port, _ = strconv.Atoi(get("", "MYSQL_PORT"))
	}
	return m
}
