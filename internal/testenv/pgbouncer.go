package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// PgBouncer is pgBouncer in transaction mode with client TLS and SCRAM, the
// stand-in for DO's connection pool on port 25061. Database is the pool's
// name; it maps to the real database on Postgres.
type PgBouncer struct {
	Host          string
	Port          int
	Database      string // the pool name
	User          string
	Password      string
	AdminUser     string // pgBouncer's admin console user ("" when external)
	AdminPassword string
	CAFile        string
	Backend       *Postgres
}

// URL is a verify-full connection URL to the pool for the application user.
func (b *PgBouncer) URL() string {
	return pgURL(b.User, b.Password, b.Host, b.Port, b.Database, b.CAFile)
}

// AdminURL connects to pgBouncer's admin console (database "pgbouncer").
func (b *PgBouncer) AdminURL() string {
	return pgURL(b.AdminUser, b.AdminPassword, b.Host, b.Port, "pgbouncer", b.CAFile)
}

// Addr is host:port.
func (b *PgBouncer) Addr() string { return net.JoinHostPort(b.Host, strconv.Itoa(b.Port)) }

// PgBouncer starts pgBouncer (and PostgreSQL behind it) on first use, or
// returns the external pool named by FEDIOPS_TEST_PGBOUNCER_URL.
func (s *Stack) PgBouncer(ctx context.Context) (*PgBouncer, error) {
	return once(s, &s.bouncer, "pgbouncer", func() (*PgBouncer, error) {
		if u := os.Getenv("FEDIOPS_TEST_PGBOUNCER_URL"); u != "" {
			pg, err := externalPostgres("FEDIOPS_TEST_PGBOUNCER_URL", u)
			if err != nil {
				return nil, err
			}
			backend, _ := s.Postgres(ctx)
			return &PgBouncer{Host: pg.Host, Port: pg.Port, Database: pg.Database, User: pg.User,
				Password: pg.Password, CAFile: pg.CAFile, Backend: backend}, nil
		}
		pg, err := s.Postgres(ctx)
		if err != nil {
			return nil, err
		}
		return s.prov.pgbouncer(ctx, pg)
	})
}

func (s *Stack) startPgBouncer(ctx context.Context, pg *Postgres) (*PgBouncer, error) {
	bin, err := LookPath("pgbouncer")
	if err != nil {
		return nil, err
	}
	if pg.SocketDir == "" {
		return nil, fmt.Errorf("a local pgBouncer needs the local PostgreSQL; set FEDIOPS_TEST_PGBOUNCER_URL too")
	}
	dir, err := s.subdir("pgbouncer")
	if err != nil {
		return nil, err
	}
	cert, key, err := s.DBCA.Issue(dir, "server")
	if err != nil {
		return nil, err
	}
	secret, err := pg.scramSecret(ctx, pg.User)
	if err != nil {
		return nil, fmt.Errorf("read SCRAM secret: %w", err)
	}
	b := &PgBouncer{Host: "127.0.0.1", Database: PoolName, User: pg.User, Password: pg.Password,
		AdminUser: BouncerAdmin, AdminPassword: password(), CAFile: s.DBCA.File, Backend: pg}
	if b.Port, err = freePort(); err != nil {
		return nil, err
	}
	// The application user's SCRAM secret as PostgreSQL stores it: pgBouncer
	// verifies clients with it and reuses their proof to log in upstream.
	users := fmt.Sprintf("%q %q\n%q %q\n", pg.User, secret, b.AdminUser, b.AdminPassword)
	if err := os.WriteFile(filepath.Join(dir, "userlist.txt"), []byte(users), 0o600); err != nil {
		return nil, err
	}
	ini := strings.Join([]string{
		"[databases]",
		fmt.Sprintf("%s = host=127.0.0.1 port=%d dbname=%s", PoolName, pg.Port, pg.Database),
		"[pgbouncer]",
		"listen_addr = 127.0.0.1",
		fmt.Sprintf("listen_port = %d", b.Port),
		"unix_socket_dir = " + dir,
		"auth_type = scram-sha-256",
		"auth_file = " + filepath.Join(dir, "userlist.txt"),
		"admin_users = " + b.AdminUser,
		"stats_users = " + b.AdminUser,
		"pool_mode = transaction",
		"max_client_conn = 2000",
		"default_pool_size = 20",
		"client_tls_sslmode = require",
		"client_tls_cert_file = " + cert,
		"client_tls_key_file = " + key,
		"client_tls_ca_file = " + s.DBCA.File,
		"server_tls_sslmode = verify-full",
		"server_tls_ca_file = " + s.DBCA.File,
		"ignore_startup_parameters = extra_float_digits,search_path",
		"pidfile = " + filepath.Join(dir, "pgbouncer.pid"),
		"",
	}, "\n")
	iniFile := filepath.Join(dir, "pgbouncer.ini")
	if err := os.WriteFile(iniFile, []byte(ini), 0o600); err != nil {
		return nil, err
	}
	if err := s.user.chown(dir); err != nil {
		return nil, err
	}
	p, err := startProc(s.user, "pgbouncer", filepath.Join(dir, "pgbouncer.log"), bin, iniFile)
	if err != nil {
		return nil, err
	}
	if err := s.track(p); err != nil {
		return nil, err
	}
	err = waitReady(ctx, p, func(ctx context.Context) error {
		c, err := pgx.Connect(ctx, b.URL())
		if err != nil {
			return err
		}
		return c.Close(ctx)
	})
	return b, err
}
