package pgpool

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fediops/fediops"
)

// DigitalOcean's ports: the connection pool (pgBouncer) and the database itself.
const (
	PoolPort   = 25061
	DirectPort = 25060
)

// Mastodon's defaults for its DB_* settings (config/database.yml).
const (
	DefaultHost     = "localhost"
	DefaultPort     = 5432
	DefaultDatabase = "mastodon_production"
	DefaultUser     = "mastodon"
	DefaultSSLMode  = "prefer"
)

// The fediops-specific variables ConfigFromEnv reads besides Mastodon's own. They
// may live in .env.production: Mastodon ignores them.
const (
	// EnvPooled says whether DB_* point at a pgBouncer pool ("true") or at
	// the database ("false"). Default: true exactly when the port is 25061.
	EnvPooled = "FEDIOPS_DB_POOLED"
	// EnvDirectName is the database behind the pool. DO maps a pool name
	// to a database only in its API (Manager.DirectDatabase reads it), so
	// it must be given; there is no default for a pooled setup.
	EnvDirectName = "FEDIOPS_DB_DIRECT_NAME"
	// EnvDirectPort is the database's own port. Default: 25060 when the pool
	// is on 25061, else the port of DB_PORT when not pooled.
	EnvDirectPort = "FEDIOPS_DB_DIRECT_PORT"
	// EnvDirectHost is the database's host. Default: the pool's host (DO
	// serves both ports on one name).
	EnvDirectHost = "FEDIOPS_DB_DIRECT_HOST"
	// EnvCAFile is the PEM file of the cluster's CA (FetchCA writes it).
	EnvCAFile = "FEDIOPS_DB_CA_FILE"
)

// caVars are the variables that may name the CA file, in the order they are
// consulted after Options.CAPEM and Options.CAFile. DATABASE_URL's
// sslrootcert parameter comes between EnvCAFile and PGSSLROOTCERT.
// NODE_EXTRA_CA_CERTS is where the seed keeps DO's CA for the streaming server.
var caVars = []string{"PGSSLROOTCERT", "NODE_EXTRA_CA_CERTS"}

// Sentinel errors; ConfigFromEnv wraps them with the variable at fault.
var (
	// ErrPreparedStatements: the settings point at a transaction pool while
	// Mastodon would use prepared statements (PREPARED_STATEMENTS unset or
	// true), which fails with `prepared statement "a1" already exists`.
	ErrPreparedStatements = errors.New("prepared statements through a transaction pool")
	// ErrNotPoolName: on the pool port, DB_NAME must be the pool's name.
	ErrNotPoolName = errors.New("DB_NAME is not a pool name")
	// ErrNoCA: no CA to verify the server with and no explicit
	// DB_SSLMODE=require to do without.
	ErrNoCA = errors.New("no CA to verify the database server")
	// ErrBadCA: the CA file is missing, unreadable or holds no certificate.
	ErrBadCA = errors.New("bad CA")
	// ErrNoDirect: the direct database (or its port) behind a pool is not
	// known; set FEDIOPS_DB_DIRECT_NAME (and FEDIOPS_DB_DIRECT_PORT off 25061).
	ErrNoDirect = errors.New("direct database unknown")
	// ErrInvalid: a setting has a value that cannot be used.
	ErrInvalid = errors.New("invalid setting")
)

// Options adjust ConfigFromEnv. The zero value reads everything from the
// settings given to ConfigFromEnv; a set field wins over its variable.
type Options struct {
	CAPEM          []byte        // the CA as PEM (for example from (*Manager).CA)
	CAFile         string        // the CA file; overrides FEDIOPS_DB_CA_FILE and the rest
	Pooled         *bool         // overrides FEDIOPS_DB_POOLED
	DirectDatabase string        // overrides FEDIOPS_DB_DIRECT_NAME
	DirectPort     int           // overrides FEDIOPS_DB_DIRECT_PORT
	DirectHost     string        // overrides FEDIOPS_DB_DIRECT_HOST
	KnownPools     []string      // pool names from the API: DB_NAME must be one of them on the pool port
	MaxConns       int32         // pgxpool MaxConns of both configs; 0 keeps pgxpool's default
	ConnectTimeout time.Duration // default 15 s, as Mastodon's database.yml
	Logger         *slog.Logger  // warnings (unverified TLS); default slog.Default()
}

// TLSMode is how the connection is secured, after ConfigFromEnv's decision.
type TLSMode string

// The TLS modes ConfigFromEnv can choose.
const (
	TLSVerifyFull TLSMode = "verify-full" // chain and host name checked (the default)
	TLSVerifyCA   TLSMode = "verify-ca"   // chain checked, host name not
	TLSRequire    TLSMode = "require"     // encrypted, server not verified (warned)
	TLSDisable    TLSMode = "disable"     // plain text (warned unless loopback)
)

// Endpoint is one place to connect to.
type Endpoint struct {
	Host     string
	Port     int
	Database string
}

func (e Endpoint) String() string {
	return net.JoinHostPort(e.Host, strconv.Itoa(e.Port)) + "/" + e.Database
}

// Config is the result of ConfigFromEnv: the connection Mastodon's settings
// describe, as ready-to-use pgxpool configurations.
type Config struct {
	// Pooled connects through the pgBouncer pool and is safe in transaction
	// mode (see the package doc). It is nil when the settings point at the
	// database directly (IsPooled false); use App for "whatever Mastodon uses".
	Pooled *pgxpool.Config
	// Direct connects to the database itself (port 25060): for migrations,
	// pg_dump, LISTEN, session state. Nil when DirectErr says why.
	Direct    *pgxpool.Config
	DirectErr error

	IsPooled       bool
	Pool           Endpoint // the pool (valid when IsPooled)
	DirectEndpoint Endpoint // the database (valid when Direct != nil)
	User           string
	TLS            TLSMode
	CASource       string // the variable or option the CA came from ("" = system roots or none)
	CAFile         string // the CA file's path ("" when the CA came from Options.CAPEM, or none was given)
	PreparedStmts  bool   // what Rails would do: PREPARED_STATEMENTS as Rails reads it
	Warnings       []string
}

// App returns the configuration Mastodon itself uses: Pooled when the
// settings point at a pool, else Direct.
func (c *Config) App() *pgxpool.Config {
	if c.IsPooled {
		return c.Pooled
	}
	return c.Direct
}

// settings are the DB_* values as Rails would merge them.
type settings struct {
	host, user, pass, db, sslmode, sslrootcert string
	port                                       int
	prepared                                   bool
	preparedRaw                                string // "" when unset
	dbSet                                      bool   // DB_NAME (or the URL's path) given
	portVar, dbVar, preparedVar, sslVar        string // where each came from, for messages
}

// endpoints is the part of ConfigFromEnv that needs no CA: where the pool and
// the database are.
type endpoints struct {
	s        settings
	pooled   bool
	pool     Endpoint
	direct   Endpoint
	directOK error
}

func get(env fediops.Lookup, key string) (string, bool) {
	if env == nil {
		return "", false
	}
	v, ok := env(key)
	if ok && v == "" { // an empty value means the default, as documented
		return "", false
	}
	return v, ok
}

// readSettings applies Mastodon's rules: DB_* with defaults, then
// DATABASE_URL's parts win where present.
func readSettings(env fediops.Lookup) (settings, error) {
	s := settings{host: DefaultHost, port: DefaultPort, db: DefaultDatabase, user: DefaultUser,
		sslmode: DefaultSSLMode, portVar: "DB_PORT", dbVar: "DB_NAME", preparedVar: "PREPARED_STATEMENTS", sslVar: "DB_SSLMODE"}
	var errs []error
	if v, ok := get(env, "DB_HOST"); ok {
		s.host = v
	}
	if v, ok := get(env, "DB_PORT"); ok {
		p, err := parsePort(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("DB_PORT=%q: %w", v, err))
		}
		s.port = p
	}
	if v, ok := get(env, "DB_NAME"); ok {
		s.db, s.dbSet = v, true
	}
	if v, ok := get(env, "DB_USER"); ok {
		s.user = v
	}
	if env != nil {
		s.pass, _ = env("DB_PASS")
	}
	if v, ok := get(env, "DB_SSLMODE"); ok {
		s.sslmode = v
	}
	if v, ok := get(env, "PREPARED_STATEMENTS"); ok {
		s.preparedRaw = v
	}
	if raw, ok := get(env, "DATABASE_URL"); ok {
		if err := s.mergeURL(raw); err != nil {
			errs = append(errs, err)
		}
	}
	s.prepared = railsBool(s.preparedRaw, true)
	return s, errors.Join(errs...)
}

// mergeURL lays DATABASE_URL over the DB_* settings as Rails merges them.
// Its errors never quote the URL, which holds the password.
func (s *settings) mergeURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return fmt.Errorf("DATABASE_URL: %w: want postgres://user:password@host:port/database", ErrInvalid)
	}
	if h := u.Hostname(); h != "" {
		s.host = h
	}
	if p := u.Port(); p != "" {
		n, err := parsePort(p)
		if err != nil {
			return fmt.Errorf("DATABASE_URL port %q: %w", p, err)
		}
		s.port, s.portVar = n, "DATABASE_URL"
	}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		s.db, s.dbSet, s.dbVar = db, true, "DATABASE_URL"
	}
	if u.User != nil {
		if n := u.User.Username(); n != "" {
			s.user = n
		}
		if p, ok := u.User.Password(); ok {
			s.pass = p
		}
	}
	q := u.Query()
	if v := q.Get("sslmode"); v != "" {
		s.sslmode, s.sslVar = v, "DATABASE_URL sslmode"
	}
	s.sslrootcert = q.Get("sslrootcert")
	if v := q.Get("prepared_statements"); v != "" {
		s.preparedRaw, s.preparedVar = v, "DATABASE_URL prepared_statements"
	}
	return nil
}

func parsePort(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%w: not a port number", ErrInvalid)
	}
	return n, nil
}

// railsBool reads PREPARED_STATEMENTS the way Rails does: database.yml
// puts the value into YAML, where false/no/off (any of their YAML
// spellings) are false; every other value, "0" included, is true.
func railsBool(v string, def bool) bool {
	switch v {
	case "":
		return def
	case "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF":
		return false
	}
	return true
}

func lookupBool(env fediops.Lookup, key string) (bool, bool, error) {
	v, ok := get(env, key)
	if !ok {
		return false, false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, true, fmt.Errorf("%s=%q: %w: want true or false", key, v, ErrInvalid)
	}
	return b, true, nil
}

func resolveEndpoints(env fediops.Lookup, opt *Options) (endpoints, error) {
	s, err := readSettings(env)
	errs := []error{err}
	ep := endpoints{s: s}

	ep.pooled = s.port == PoolPort
	if b, ok, err := lookupBool(env, EnvPooled); err != nil {
		errs = append(errs, err)
	} else if ok {
		ep.pooled = b
	}
	if opt.Pooled != nil {
		ep.pooled = *opt.Pooled
	}

	directName, nameVar := opt.DirectDatabase, "Options.DirectDatabase"
	if directName == "" {
		directName, _ = get(env, EnvDirectName)
		nameVar = EnvDirectName
	}
	directPort := opt.DirectPort
	if directPort == 0 {
		if v, ok := get(env, EnvDirectPort); ok {
			p, err := parsePort(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", EnvDirectPort, v, err))
			}
			directPort = p
		}
	}
	directHost := opt.DirectHost
	if directHost == "" {
		directHost, _ = get(env, EnvDirectHost)
	}
	if directHost == "" {
		directHost = s.host
	}

	if !ep.pooled {
		if directName == "" {
			directName = s.db
		}
		if directPort == 0 {
			directPort = s.port
		}
		ep.direct = Endpoint{Host: directHost, Port: directPort, Database: directName}
		return ep, errors.Join(errs...)
	}

	ep.pool = Endpoint{Host: s.host, Port: s.port, Database: s.db}
	if directPort == 0 && s.port == PoolPort {
		directPort = DirectPort
	}
	switch {
	case directName == "":
		ep.directOK = fmt.Errorf("%w: set %s to the database behind pool %q (DO's API has it: Manager.DirectDatabase)", ErrNoDirect, EnvDirectName, s.db)
	case directPort == 0:
		ep.directOK = fmt.Errorf("%w: the pool is on port %d, not DO's %d: set %s", ErrNoDirect, s.port, PoolPort, EnvDirectPort)
	default:
		ep.direct = Endpoint{Host: directHost, Port: directPort, Database: directName}
	}

	// What Rails would do through the pool.
	if s.prepared {
		how := "unset (Mastodon's default is true)"
		if s.preparedRaw != "" {
			how = fmt.Sprintf("%q (true for Rails)", s.preparedRaw)
		}
		errs = append(errs, fmt.Errorf("%s is %s on pool port %d: %w: set PREPARED_STATEMENTS=false", s.preparedVar, how, s.port, ErrPreparedStatements))
	}
	if err := checkPoolName(s, directName, nameVar, opt.KnownPools); err != nil {
		errs = append(errs, err)
	}
	return ep, errors.Join(errs...)
}

func checkPoolName(s settings, directName, nameVar string, known []string) error {
	if len(known) > 0 {
		for _, k := range known {
			if k == s.db {
				return nil
			}
		}
		return fmt.Errorf("%s=%q on pool port %d: %w: the cluster's pools are %s", s.dbVar, s.db, s.port, ErrNotPoolName, strings.Join(known, ", "))
	}
	if !s.dbSet {
		return fmt.Errorf("DB_NAME unset on pool port %d: %w: Mastodon would ask for database %q; set DB_NAME to the pool's name", s.port, ErrNotPoolName, DefaultDatabase)
	}
	if directName != "" && s.db == directName {
		return fmt.Errorf("%s=%q on pool port %d is the database %s names: %w: set it to the pool's name (or list the pools in Options.KnownPools)", s.dbVar, s.db, s.port, nameVar, ErrNotPoolName)
	}
	return nil
}

// ConfigFromEnv builds the pooled and direct configurations from Mastodon's
// settings: DATABASE_URL (its parts win) or DB_HOST, DB_PORT, DB_NAME,
// DB_USER, DB_PASS, DB_SSLMODE, PREPARED_STATEMENTS with Mastodon's
// defaults (an empty value counts as unset), plus the FEDIOPS_DB_*
// variables above. Pass (*fediops.Env).Lookup, os.LookupEnv or fediops.MapLookup(m).
//
// It returns every problem at once (errors.Join); each names its variable
// and wraps a sentinel (ErrPreparedStatements, ErrNotPoolName, ErrNoCA,
// ErrBadCA, ErrInvalid). No error or log line contains the password.
func ConfigFromEnv(env fediops.Lookup, opt Options) (*Config, error) {
	log := opt.Logger
	if log == nil {
		log = slog.Default()
	}
	ep, err := resolveEndpoints(env, &opt)
	errs := []error{err}
	s := ep.s

	tlsMode, tlsCfg, caSource, warn, err := decideTLS(env, &opt, s)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	c := &Config{IsPooled: ep.pooled, Pool: ep.pool, DirectEndpoint: ep.direct, User: s.user,
		TLS: tlsMode, CASource: caSource, CAFile: caFileOf(env, &opt, s, caSource), PreparedStmts: s.prepared, DirectErr: ep.directOK}
	if warn != "" {
		c.Warnings = append(c.Warnings, warn)
		log.Warn(warn, "host", s.host, "sslmode", s.sslmode)
	}
	timeout := opt.ConnectTimeout
	if timeout == 0 {
		timeout = 15 * time.Second
	}
	build := func(e Endpoint) (*pgxpool.Config, error) {
		return poolConfig(e, s.user, s.pass, tlsCfg, timeout, opt.MaxConns)
	}
	if ep.pooled {
		if c.Pooled, err = build(ep.pool); err != nil {
			return nil, err
		}
		MakeTransactionSafe(c.Pooled)
		c.Pooled.ConnConfig.Tracer = SessionGuard{Logger: log}
	}
	if ep.directOK == nil {
		if c.Direct, err = build(ep.direct); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// MakeTransactionSafe sets a pgxpool configuration up for a pgBouncer pool
// in transaction mode: QueryExecModeExec (the unnamed statement, one round
// trip per query, see the package doc), no statement or description cache,
// no run-time parameters sent at start-up, no AfterConnect hook.
func MakeTransactionSafe(pc *pgxpool.Config) {
	cc := pc.ConnConfig
	cc.DefaultQueryExecMode = pgx.QueryExecModeExec
	cc.StatementCacheCapacity = 0
	cc.DescriptionCacheCapacity = 0
	cc.RuntimeParams = map[string]string{}
	pc.AfterConnect = nil
}

// poolConfig builds a pgxpool config without reading PG* variables for the
// parts it sets, and without putting the password into a string.
func poolConfig(e Endpoint, user, pass string, tlsCfg *tls.Config, timeout time.Duration, maxConns int32) (*pgxpool.Config, error) {
	kv := fmt.Sprintf("host=%s port=%d dbname=%s user=%s sslmode=disable connect_timeout=%d",
		kvQuote(e.Host), e.Port, kvQuote(e.Database), kvQuote(user), int(timeout.Seconds()+0.5))
	pc, err := pgxpool.ParseConfig(kv)
	if err != nil {
		return nil, fmt.Errorf("config for %s: %w", e, err)
	}
	pc.ConnConfig.Password = pass
	pc.ConnConfig.Fallbacks = nil
	if tlsCfg != nil {
		t := tlsCfg.Clone()
		if t.ServerName == "" && !t.InsecureSkipVerify {
			t.ServerName = e.Host
		}
		pc.ConnConfig.TLSConfig = t
	}
	pc.ConnConfig.ConnectTimeout = timeout
	if maxConns > 0 {
		pc.MaxConns = maxConns
	}
	return pc, nil
}

func kvQuote(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(v) + "'"
}

// decideTLS picks the TLS mode: verify-full against the CA whenever one is
// given (DB_SSLMODE=require included, as in the seed), unverified TLS only
// for an explicit require/no-verify without a CA.
func decideTLS(env fediops.Lookup, opt *Options, s settings) (TLSMode, *tls.Config, string, string, error) {
	pool, source, err := loadCA(env, opt, s)
	if err != nil {
		return "", nil, "", "", err
	}
	mode := strings.ToLower(s.sslmode)
	switch mode {
	case "disable":
		warn := ""
		if !isLoopback(s.host) {
			warn = fmt.Sprintf("%s=disable: connecting without TLS (DO's clusters refuse plain text)", s.sslVar)
		}
		return TLSDisable, nil, "", warn, nil
	case "allow", "prefer", "require", "no-verify":
		if pool != nil {
			return TLSVerifyFull, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, source, "", nil
		}
		if mode == "require" || mode == "no-verify" {
			warn := fmt.Sprintf("%s=%s and no CA: TLS without verifying the host; set %s to DO's CA (FetchCA) to verify it", s.sslVar, mode, EnvCAFile)
			return TLSRequire, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, "", warn, nil
		}
		return "", nil, "", "", fmt.Errorf("%s=%s: %w: set %s to DO's CA file (FetchCA writes it), or DB_SSLMODE=require to connect without verifying the host", s.sslVar, mode, ErrNoCA, EnvCAFile)
	case "verify-full":
		return TLSVerifyFull, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, source, "", nil
	case "verify-ca":
		return TLSVerifyCA, verifyCAOnly(pool), source, "", nil
	}
	return "", nil, "", "", fmt.Errorf("%s=%q: %w: want disable, require, verify-ca or verify-full", s.sslVar, s.sslmode, ErrInvalid)
}

// verifyCAOnly checks the chain but not the host name (libpq's verify-ca).
func verifyCAOnly(pool *x509.CertPool) *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("server sent no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter})
			return err
		}}
}

func isLoopback(host string) bool {
	if host == "localhost" || strings.HasPrefix(host, "/") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loadCA finds the CA: Options.CAPEM, Options.CAFile, FEDIOPS_DB_CA_FILE,
// DATABASE_URL's sslrootcert, PGSSLROOTCERT, NODE_EXTRA_CA_CERTS. A source
// that is set but unusable is an error, never skipped.
func loadCA(env fediops.Lookup, opt *Options, s settings) (*x509.CertPool, string, error) {
	if len(opt.CAPEM) > 0 {
		p, err := parseCA(opt.CAPEM)
		if err != nil {
			return nil, "", fmt.Errorf("Options.CAPEM: %w", err)
		}
		return p, "Options.CAPEM", nil
	}
	for _, c := range caFiles(env, opt, s) {
		if c.file == "" {
			continue
		}
		p, err := ReadCA(c.file)
		if err != nil {
			return nil, "", fmt.Errorf("%s=%s: %w", c.name, c.file, err)
		}
		return p, c.name, nil
	}
	return nil, "", nil
}

// ReadCA reads a PEM file of one or more CA certificates.
func ReadCA(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: no such file", ErrBadCA)
		}
		return nil, fmt.Errorf("%w: %v", ErrBadCA, err)
	}
	return parseCA(b)
}

func parseCA(b []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate %d: %v", ErrBadCA, n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: no PEM certificate in it", ErrBadCA)
	}
	return pool, nil
}

// Open connects a pool with cfg; a convenience for pgxpool.NewWithConfig
// whose error names the endpoint and never the password.
func Open(ctx context.Context, cfg *pgxpool.Config) (*pgxpool.Pool, error) {
	if cfg == nil {
		return nil, errors.New("open: nil config")
	}
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open %s:%d/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	return p, nil
}
