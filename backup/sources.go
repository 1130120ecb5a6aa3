package backup

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/redistls"
)

// ErrPoolConnection is returned for a PostgreSQL configuration that points
// at DigitalOcean's pgBouncer pool (port 25061, or a pool name as database).
// pg_dump needs the direct connection (port 25060, the real database): a
// transaction-mode pool cannot give it one consistent snapshot.
var ErrPoolConnection = errors.New("backup: pg_dump must use the direct connection (port 25060, real database name), not the connection pool")

// DefaultPoolPort is DigitalOcean's pgBouncer port.
const DefaultPoolPort = 25061

// PostgresSource dumps one database with `pg_dump -Fc -Z0` (compression is
// the pipeline's zstd) over the direct connection; the password goes to
// pg_dump in PGPASSWORD, never on its command line.
type PostgresSource struct {
	Label       string // Name(); "" = "postgres"
	Host        string
	Port        int // 0 = 5432
	Database    string
	User        string
	Password    string
	SSLMode     string // "" = "require" (DO's URIs use require); verify-full with SSLRootCert
	SSLRootCert string // CA file (DO's CA from the control panel or godo GetCA)

	PoolPorts     []int    // ports refused as pools; nil = [25061]
	PoolDatabases []string // database names refused as pool names

	PgDump    string   // pg_dump path; "" = from PATH
	ExtraArgs []string // more pg_dump arguments (e.g. --exclude-table-data)

	// LockWait bounds how long pg_dump waits for its table locks
	// (--lock-wait-timeout): a migration holding an exclusive lock fails
	// the backup loudly instead of hanging the 4-hourly run. 0 means
	// DefaultLockWait; negative means wait as long as it takes.
	LockWait time.Duration
}

// DefaultLockWait is PostgresSource's default pg_dump --lock-wait-timeout.
const DefaultLockWait = 10 * time.Minute

// PostgresSourceFromEnv reads Mastodon's DATABASE_URL or DB_HOST, DB_PORT,
// DB_NAME, DB_USER, DB_PASS and DB_SSLMODE (with Mastodon's defaults) and
// validates the result: a .env.production that points DB_PORT at the pool
// (as DO's set-up does for the app) is an ErrPoolConnection until the
// caller overrides Port and Database with the direct ones.
func PostgresSourceFromEnv(env fediops.Lookup) (*PostgresSource, error) {
	get := func(k, def string) string {
		if v, ok := env(k); ok && v != "" {
			return v
		}
		return def
	}
	s := &PostgresSource{Host: get("DB_HOST", "localhost"), Database: get("DB_NAME", "mastodon_production"),
		User: get("DB_USER", "mastodon"), Password: get("DB_PASS", ""), SSLMode: get("DB_SSLMODE", "prefer")}
	port := get("DB_PORT", "5432")
	if raw := get("DATABASE_URL", ""); raw != "" {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return nil, errors.New("backup: DATABASE_URL is not a postgres:// URL")
		}
		s.Host, s.User = u.Hostname(), u.User.Username()
		s.Password, _ = u.User.Password()
		s.Database = strings.TrimPrefix(u.Path, "/")
		if p := u.Port(); p != "" {
			port = p
		}
		if m := u.Query().Get("sslmode"); m != "" {
			s.SSLMode = m
		}
		s.SSLRootCert = u.Query().Get("sslrootcert")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n <= 0 || n > 65535 {
		return nil, fmt.Errorf("backup: DB_PORT=%q is not a port", port)
	}
	s.Port = n
	return s, nil
}

// Name is Label or "postgres".
func (s *PostgresSource) Name() string { return cmp.Or(s.Label, "postgres") }

// Kind is "postgres".
func (s *PostgresSource) Kind() string { return "postgres" }

func (s *PostgresSource) port() int {
	if s.Port == 0 {
		return 5432
	}
	return s.Port
}

// Validate refuses pool ports and pool names and names missing fields.
func (s *PostgresSource) Validate() error {
	pools := s.PoolPorts
	if pools == nil {
		pools = []int{DefaultPoolPort}
	}
	switch {
	case s.Host == "":
		return errors.New("backup: postgres: Host (DB_HOST) is empty")
	case s.Database == "":
		return errors.New("backup: postgres: Database (DB_NAME) is empty")
	case s.User == "":
		return errors.New("backup: postgres: User (DB_USER) is empty")
	case slices.Contains(pools, s.port()):
		return fmt.Errorf("%w: port %d is a pool port", ErrPoolConnection, s.port())
	case slices.Contains(s.PoolDatabases, s.Database):
		return fmt.Errorf("%w: %q is a pool name", ErrPoolConnection, s.Database)
	}
	return nil
}

// env is the libpq environment: the password and TLS settings stay out of
// argv.
func (s *PostgresSource) env() []string {
	env := []string{"PGPASSWORD=" + s.Password, "PGSSLMODE=" + cmp.Or(s.SSLMode, "require"),
		"PGCONNECT_TIMEOUT=15", "PGAPPNAME=fediops-backup"}
	if s.SSLRootCert != "" {
		env = append(env, "PGSSLROOTCERT="+s.SSLRootCert)
	}
	return env
}

func (s *PostgresSource) connArgs(db string) []string {
	return []string{"--no-password", "-h", s.Host, "-p", strconv.Itoa(s.port()), "-U", s.User, "-d", db}
}

// Version runs pg_dump --version.
func (s *PostgresSource) Version(ctx context.Context) (string, error) {
	bin, err := lookTool(s.PgDump, "pg_dump")
	if err != nil {
		return "", err
	}
	return tool{bin: bin, args: []string{"--version"}}.version(ctx)
}

// Dump streams pg_dump's custom-format archive, uncompressed, into w.
func (s *PostgresSource) Dump(ctx context.Context, w io.Writer) error {
	if err := s.Validate(); err != nil {
		return err
	}
	bin, err := lookTool(s.PgDump, "pg_dump")
	if err != nil {
		return err
	}
	args := []string{"-Fc", "-Z0"}
	if wait := cmp.Or(s.LockWait, DefaultLockWait); wait > 0 {
		args = append(args, fmt.Sprintf("--lock-wait-timeout=%dms", wait.Milliseconds()))
	}
	args = append(append(args, s.ExtraArgs...), s.connArgs(s.Database)...)
	return tool{bin: bin, args: args, env: s.env()}.run(ctx, nil, w)
}

// RedisSource streams an RDB snapshot with `redis-cli --rdb -` (redis-cli
// 7.0 writes it to stdout), over TLS when TLS is set; the password goes in
// REDISCLI_AUTH, never on the command line.
type RedisSource struct {
	Label    string // Name(); "" = "redis"
	Host     string
	Port     int // 0 = 6379
	User     string
	Password string
	TLS      bool
	CAFile   string // "" = system roots (DO Valkey: Let's Encrypt)
	SNI      string
	RedisCLI string // redis-cli path; "" = from PATH
}

// RedisSourceFromEnv reads Mastodon's REDIS_URL (rediss:// means TLS) or
// REDIS_HOST, REDIS_PORT, REDIS_USER and REDIS_PASSWORD, by the rules
// redistls.ClientOptions applies for every fediops Redis client.
func RedisSourceFromEnv(env fediops.Lookup) (*RedisSource, error) {
	o, err := redistls.ClientOptionsFromEnv(env, "REDIS_")
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	host, port, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return nil, fmt.Errorf("backup: REDIS_HOST/REDIS_PORT: %w", err)
	}
	n, _ := strconv.Atoi(port) // ClientOptions checked it
	return &RedisSource{Host: host, Port: n, User: o.Username, Password: o.Password, TLS: o.TLSConfig != nil}, nil
}

// Name is Label or "redis".
func (s *RedisSource) Name() string { return cmp.Or(s.Label, "redis") }

// Kind is "redis".
func (s *RedisSource) Kind() string { return "redis" }

// Version runs redis-cli --version.
func (s *RedisSource) Version(ctx context.Context) (string, error) {
	bin, err := lookTool(s.RedisCLI, "redis-cli")
	if err != nil {
		return "", err
	}
	return tool{bin: bin, args: []string{"--version"}}.version(ctx)
}

func (s *RedisSource) args() []string {
	port := s.Port
	if port == 0 {
		port = 6379
	}
	var args []string
	if s.TLS {
		args = append(args, "--tls")
		if s.CAFile != "" {
			args = append(args, "--cacert", s.CAFile)
		}
		if s.SNI != "" {
			args = append(args, "--sni", s.SNI)
		}
	}
	args = append(args, "-h", s.Host, "-p", strconv.Itoa(port), "--no-auth-warning")
	if s.User != "" {
		args = append(args, "--user", s.User)
	}
	return args
}

// cli is redis-cli connected to the source with extra arguments, the
// password in REDISCLI_AUTH.
func (s *RedisSource) cli(extra ...string) (tool, error) {
	bin, err := lookTool(s.RedisCLI, "redis-cli")
	if err != nil {
		return tool{}, err
	}
	var env []string
	if s.Password != "" {
		env = append(env, "REDISCLI_AUTH="+s.Password)
	}
	return tool{bin: bin, args: append(s.args(), extra...), env: env}, nil
}

// Dump streams the RDB file into w.
func (s *RedisSource) Dump(ctx context.Context, w io.Writer) error {
	t, err := s.cli("--rdb", "-")
	if err != nil {
		return err
	}
	return t.run(ctx, nil, &rdbCheck{w: w})
}

// rdbCheck refuses a stream that does not start like an RDB file (redis-cli
// exits 0 on some errors after writing nothing useful).
type rdbCheck struct {
	w    io.Writer
	head []byte
	n    int64
}

func (c *rdbCheck) Write(p []byte) (int, error) {
	if len(c.head) < 5 {
		need := min(5-len(c.head), len(p))
		c.head = append(c.head, p[:need]...)
		if len(c.head) == 5 && string(c.head) != "REDIS" {
			return 0, fmt.Errorf("redis-cli --rdb: output does not start with REDIS (got %q)", c.head)
		}
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// MySQLSource dumps a MySQL/MariaDB database with `mysqldump
// --single-transaction` (a consistent InnoDB snapshot without locks); the
// password goes in MYSQL_PWD, never on the command line.
type MySQLSource struct {
	Label     string // Name(); "" = "mysql"
	Host      string
	Port      int // 0 = 3306
	User      string
	Password  string
	Database  string
	Mysqldump string   // path; "" = mysqldump from PATH
	ExtraArgs []string // e.g. --ssl-ca=...
}

// Name is Label or "mysql".
func (s *MySQLSource) Name() string { return cmp.Or(s.Label, "mysql") }

// Kind is "mysql".
func (s *MySQLSource) Kind() string { return "mysql" }

// Version runs mysqldump --version.
func (s *MySQLSource) Version(ctx context.Context) (string, error) {
	bin, err := lookTool(s.Mysqldump, "mysqldump")
	if err != nil {
		return "", err
	}
	return tool{bin: bin, args: []string{"--version"}}.version(ctx)
}

func mysqlConn(host string, port int, user string) []string {
	if port == 0 {
		port = 3306
	}
	return []string{"--protocol=TCP", "-h", host, "-P", strconv.Itoa(port), "-u", user}
}

// Dump streams the SQL dump into w.
func (s *MySQLSource) Dump(ctx context.Context, w io.Writer) error {
	if s.Database == "" || s.Host == "" || s.User == "" {
		return errors.New("backup: mysql: Host, User and Database must be set")
	}
	bin, err := lookTool(s.Mysqldump, "mysqldump")
	if err != nil {
		return err
	}
	args := append(mysqlConn(s.Host, s.Port, s.User), "--single-transaction", "--quick", "--routines",
		"--triggers", "--hex-blob", "--default-character-set=utf8mb4")
	args = append(append(args, s.ExtraArgs...), s.Database)
	return tool{bin: bin, args: args, env: []string{"MYSQL_PWD=" + s.Password}}.run(ctx, nil, w)
}
