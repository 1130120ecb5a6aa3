package pgpool

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fediops/fediops"
)

// caFile is one place a CA file may be named, in loadCA's order.
type caFile struct{ name, file string }

// caFiles lists the places a CA file may be named: Options.CAFile,
// FEDIOPS_DB_CA_FILE, DATABASE_URL's sslrootcert, PGSSLROOTCERT,
// NODE_EXTRA_CA_CERTS (unset ones with an empty file).
func caFiles(env fediops.Lookup, opt *Options, s settings) []caFile {
	v, _ := get(env, EnvCAFile)
	srcs := []caFile{{"Options.CAFile", opt.CAFile}, {EnvCAFile, v}, {"DATABASE_URL sslrootcert", s.sslrootcert}}
	for _, k := range caVars {
		v, _ := get(env, k)
		srcs = append(srcs, caFile{k, v})
	}
	return srcs
}

// caFileOf is the file behind the CA source loadCA chose ("" for
// Options.CAPEM, system roots or no CA).
func caFileOf(env fediops.Lookup, opt *Options, s settings, source string) string {
	for _, c := range caFiles(env, opt, s) {
		if c.name == source {
			return c.file
		}
	}
	return ""
}

// Libpq is one connection in the terms libpq's programs (pg_dump,
// pg_restore, psql) take it, with ConfigFromEnv's TLS decision:
// DirectLibpq gives it, Env hands it to a program in PG* variables (the
// password in PGPASSWORD, never on the command line), ConnConfig gives pgx
// the same connection. Change Database to reach another database of the
// same server.
type Libpq struct {
	Host     string
	Port     int
	Database string
	User     string
	Password string
	// SSLMode is ConfigFromEnv's decision: verify-full against SSLRootCert
	// whenever a CA is known.
	SSLMode TLSMode
	// SSLRootCert is the CA file ("" with verify-full: libpq's default,
	// ~/.postgresql/root.crt); CASource the setting that named it (e.g.
	// FEDIOPS_DB_CA_FILE), for messages.
	SSLRootCert    string
	CASource       string
	ConnectTimeout time.Duration // 0 = 15 s
}

// DirectLibpq is the direct connection (the database itself, DO's port
// 25060: what pg_dump and pg_restore need) as libpq takes it. When the
// settings name only the pool it returns DirectErr, which names the
// setting to add (FEDIOPS_DB_DIRECT_NAME, FEDIOPS_DB_DIRECT_PORT). A CA
// given only in memory (Options.CAPEM) cannot be handed to a program: that
// is an error too.
func (c *Config) DirectLibpq() (Libpq, error) {
	if c.Direct == nil {
		if c.DirectErr != nil {
			return Libpq{}, c.DirectErr
		}
		return Libpq{}, ErrNoDirect
	}
	if c.CAFile == "" && c.CASource != "" {
		return Libpq{}, fmt.Errorf("the CA came from %s, and libpq programs need a file: set Options.CAFile or %s", c.CASource, EnvCAFile)
	}
	e := c.DirectEndpoint
	return Libpq{Host: e.Host, Port: e.Port, Database: e.Database, User: c.User, Password: c.Direct.ConnConfig.Password,
		SSLMode: c.TLS, SSLRootCert: c.CAFile, CASource: c.CASource, ConnectTimeout: c.Direct.ConnConfig.ConnectTimeout}, nil
}

// LibpqFromEnv is the direct connection that ConfigFromEnv(env, opt)
// decides, as libpq takes it: (*Config).DirectLibpq of its result. Settings
// that name only the pool are an error wrapping ErrNoDirect that names the
// setting to add.
func LibpqFromEnv(env fediops.Lookup, opt Options) (Libpq, error) {
	c, err := ConfigFromEnv(env, opt)
	if err != nil {
		return Libpq{}, err
	}
	return c.DirectLibpq()
}

func (l Libpq) timeout() time.Duration {
	if l.ConnectTimeout <= 0 {
		return 15 * time.Second
	}
	return l.ConnectTimeout
}

// Env is the connection as libpq's environment variables: PGHOST, PGPORT,
// PGDATABASE, PGUSER, PGPASSWORD, PGSSLMODE, PGSSLROOTCERT (when set) and
// PGCONNECT_TIMEOUT. Add them to a program's environment, never to its
// arguments, which every user of the machine can read.
func (l Libpq) Env() []string {
	env := []string{"PGHOST=" + l.Host, "PGPORT=" + strconv.Itoa(l.Port), "PGDATABASE=" + l.Database,
		"PGUSER=" + l.User, "PGPASSWORD=" + l.Password, "PGSSLMODE=" + string(l.SSLMode),
		"PGCONNECT_TIMEOUT=" + strconv.Itoa(max(int(l.timeout().Seconds()+0.5), 1))}
	if l.SSLRootCert != "" {
		env = append(env, "PGSSLROOTCERT="+l.SSLRootCert)
	}
	return env
}

// String names the connection without its password.
func (l Libpq) String() string {
	return Endpoint{Host: l.Host, Port: l.Port, Database: l.Database}.String() + " as " + l.User + " (" + string(l.SSLMode) + ")"
}

// ConnConfig is the same connection for pgx, with the same TLS check as
// libpq's SSLMode; the password never passes through a string.
func (l Libpq) ConnConfig() (*pgx.ConnConfig, error) {
	var tlsCfg *tls.Config
	switch l.SSLMode {
	case TLSDisable:
	case TLSRequire:
		tlsCfg = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}
	case TLSVerifyCA, TLSVerifyFull:
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
		if l.SSLRootCert != "" {
			pool, err := ReadCA(l.SSLRootCert)
			if err != nil {
				return nil, fmt.Errorf("CA file %s: %w", l.SSLRootCert, err)
			}
			tlsCfg.RootCAs = pool
		}
		if l.SSLMode == TLSVerifyCA {
			if tlsCfg.RootCAs == nil {
				return nil, errors.New("verify-ca needs a CA file")
			}
			tlsCfg = verifyCAOnly(tlsCfg.RootCAs)
		}
	default:
		return nil, fmt.Errorf("SSL mode %q: %w: want disable, require, verify-ca or verify-full", l.SSLMode, ErrInvalid)
	}
	pc, err := poolConfig(Endpoint{Host: l.Host, Port: l.Port, Database: l.Database}, l.User, l.Password, tlsCfg, l.timeout(), 0)
	if err != nil {
		return nil, err
	}
	return pc.ConnConfig, nil
}
