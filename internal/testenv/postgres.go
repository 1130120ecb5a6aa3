package testenv

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Names the stack uses, matching the seed's .env.production.
const (
	DatabaseName = "mastodon_production"          // the real database (direct port)
	PoolName     = "the_mastodon_connection_pool" // pgBouncer's pool (DO's port 25061)
	DBUser       = "the_mastodon_user"
	AdminUser    = "doadmin" // DO's superuser-like account
	BouncerAdmin = "pgbouncer_admin"
)

// Postgres is a PostgreSQL server with SSL on, the stand-in for DO's direct
// port 25060. Only hostssl SCRAM logins are accepted over TCP, as on DO.
type Postgres struct {
	Host          string
	Port          int
	Database      string
	User          string
	Password      string
	AdminUser     string
	AdminPassword string
	CAFile        string // the private CA to verify the server with
	SocketDir     string // local superuser access without a password ("" when external)
}

// URL is a verify-full connection URL for the application user.
func (p *Postgres) URL() string {
	return pgURL(p.User, p.Password, p.Host, p.Port, p.Database, p.CAFile)
}

// AdminURL is a verify-full connection URL for the admin user.
func (p *Postgres) AdminURL() string {
	return pgURL(p.AdminUser, p.AdminPassword, p.Host, p.Port, p.Database, p.CAFile)
}

// Addr is host:port.
func (p *Postgres) Addr() string { return net.JoinHostPort(p.Host, strconv.Itoa(p.Port)) }

func pgURL(user, pass, host string, port int, db, ca string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, pass), Host: net.JoinHostPort(host, strconv.Itoa(port)), Path: "/" + db}
	q := url.Values{"sslmode": {"verify-full"}}
	if ca != "" {
		q.Set("sslrootcert", ca)
	} else {
		q.Set("sslmode", "require")
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// Postgres starts PostgreSQL on first use, or returns the external server
// named by FEDIOPS_TEST_POSTGRES_URL.
func (s *Stack) Postgres(ctx context.Context) (*Postgres, error) {
	return once(s, &s.pg, "postgres", func() (*Postgres, error) {
		if u := os.Getenv("FEDIOPS_TEST_POSTGRES_URL"); u != "" {
			return externalPostgres("FEDIOPS_TEST_POSTGRES_URL", u)
		}
		return s.prov.postgres(ctx)
	})
}

// externalURL parses the URL in the variable name. Its error does not
// quote the URL, which holds a password (url.Parse's error would).
func externalURL(name, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s is not a valid URL (not shown: it holds a password); percent-encode special characters in the user and password", name)
	}
	return u, nil
}

func externalPostgres(name, raw string) (*Postgres, error) {
	u, err := externalURL(name, raw)
	if err != nil {
		return nil, err
	}
	port, _ := strconv.Atoi(u.Port())
	if port == 0 {
		port = 5432
	}
	pass, _ := u.User.Password()
	return &Postgres{Host: u.Hostname(), Port: port, Database: strings.TrimPrefix(u.Path, "/"),
		User: u.User.Username(), Password: pass, AdminUser: u.User.Username(), AdminPassword: pass,
		CAFile: u.Query().Get("sslrootcert")}, nil
}

func (s *Stack) startPostgres(ctx context.Context) (*Postgres, error) {
	initdb, err := LookPath("initdb")
	if err != nil {
		return nil, err
	}
	postgres, err := LookPath("postgres")
	if err != nil {
		return nil, err
	}
	dir, err := s.subdir("postgres")
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	logFile := filepath.Join(dir, "postgres.log")
	cert, key, err := s.DBCA.Issue(dir, "server")
	if err != nil {
		return nil, err
	}
	if err := s.user.chown(dir); err != nil {
		return nil, err
	}
	if err := runOnce(ctx, s.user, logFile, initdb, "-D", data, "-U", "postgres", "-E", "UTF8",
		"--locale=C", "--no-sync", "--auth-local=trust", "--auth-host=scram-sha-256"); err != nil {
		return nil, err
	}
	// As on DO: TCP logins only over TLS, only with SCRAM.
	hba := "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n"
	if err := os.WriteFile(filepath.Join(data, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return nil, err
	}
	if err := s.user.chown(data); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p, err := startProc(s.user, "postgres", logFile, postgres, "-D", data,
		"-c", "listen_addresses=127.0.0.1", "-c", "port="+strconv.Itoa(port),
		"-c", "unix_socket_directories="+dir, "-c", "ssl=on",
		"-c", "ssl_cert_file="+cert, "-c", "ssl_key_file="+key,
		"-c", "password_encryption=scram-sha-256", "-c", "max_connections=300",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "shared_buffers=128MB")
	if err != nil {
		return nil, err
	}
	if err := s.track(p); err != nil {
		return nil, err
	}
	local := fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable", dir, port)
	if err := waitReady(ctx, p, func(ctx context.Context) error {
		c, err := pgx.Connect(ctx, local)
		if err != nil {
			return err
		}
		return c.Close(ctx)
	}); err != nil {
		return nil, err
	}
	pg := &Postgres{Host: "127.0.0.1", Port: port, Database: DatabaseName, User: DBUser, Password: password(),
		AdminUser: AdminUser, AdminPassword: password(), CAFile: s.DBCA.File, SocketDir: dir}
	c, err := pgx.Connect(ctx, local)
	if err != nil {
		return nil, err
	}
	defer c.Close(ctx)
	for _, q := range []string{
		fmt.Sprintf("CREATE ROLE %s LOGIN SUPERUSER PASSWORD '%s'", pg.AdminUser, pg.AdminPassword),
		fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", pg.User, pg.Password),
		fmt.Sprintf("CREATE DATABASE %s OWNER %s", pg.Database, pg.User),
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			return nil, fmt.Errorf("postgres set-up: %w", err)
		}
	}
	return pg, nil
}

// scramSecret reads a role's stored SCRAM secret, for pgBouncer's auth_file.
func (p *Postgres) scramSecret(ctx context.Context, role string) (string, error) {
	c, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable", p.SocketDir, p.Port))
	if err != nil {
		return "", err
	}
	defer c.Close(ctx)
	var secret string
	err = c.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", role).Scan(&secret)
	return secret, err
}
