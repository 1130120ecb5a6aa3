package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
)

// MariaDB is a MariaDB 10.11 server for mysqldump, the stand-in for the
// managed MySQL of the instance's flings.
type MariaDB struct {
	Host     string
	Port     int
	User     string
	Password string
	Database string
	Socket   string // root access without a password ("" when external)
}

// Addr is host:port.
func (m *MariaDB) Addr() string { return net.JoinHostPort(m.Host, strconv.Itoa(m.Port)) }

// DSN is the go-sql-driver style user:pass@tcp(host:port)/db.
func (m *MariaDB) DSN() string {
	return fmt.Sprintf("%s:%s@tcp(%s)/%s", m.User, m.Password, m.Addr(), m.Database)
}

// Exec runs SQL with the mariadb client as the application user.
func (m *MariaDB) Exec(ctx context.Context, sql string) error {
	bin, err := LookPath("mariadb")
	if err != nil {
		return err
	}
	// The password goes in MYSQL_PWD: an argument would be quoted by the
	// error (and shown by ps).
	return run(ctx, nil, os.DevNull, []string{"MYSQL_PWD=" + m.Password}, "", bin, "--no-defaults",
		"-h", m.Host, "-P", strconv.Itoa(m.Port), "-u", m.User, m.Database, "-e", sql)
}

var dsnRE = regexp.MustCompile(`^([^:@]+)(?::([^@]*))?@tcp\(([^:)]+):(\d+)\)/(\w+)`)

// MariaDB starts MariaDB on first use, or returns the external server named
// by FEDIOPS_TEST_MYSQL_DSN (user:pass@tcp(host:port)/db).
func (s *Stack) MariaDB(ctx context.Context) (*MariaDB, error) {
	return once(s, &s.mariadb, "mariadb", func() (*MariaDB, error) {
		if dsn := os.Getenv("FEDIOPS_TEST_MYSQL_DSN"); dsn != "" {
			m := dsnRE.FindStringSubmatch(dsn)
			if m == nil {
				return nil, fmt.Errorf("FEDIOPS_TEST_MYSQL_DSN: want user:pass@tcp(host:port)/db")
			}
			port, _ := strconv.Atoi(m[4])
			return &MariaDB{User: m[1], Password: m[2], Host: m[3], Port: port, Database: m[5]}, nil
		}
		return s.prov.mariadb(ctx)
	})
}

func (s *Stack) startMariaDB(ctx context.Context) (*MariaDB, error) {
	install, err := LookPath("mariadb-install-db")
	if err != nil {
		return nil, err
	}
	server, err := LookPath("mariadbd")
	if err != nil {
		return nil, err
	}
	client, err := LookPath("mariadb")
	if err != nil {
		return nil, err
	}
	dir, err := s.subdir("mariadb")
	if err != nil {
		return nil, err
	}
	data, logFile := filepath.Join(dir, "data"), filepath.Join(dir, "mariadb.log")
	if err := runOnce(ctx, s.user, logFile, install, "--no-defaults", "--datadir="+data,
		"--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve"); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "mysqld.sock")
	p, err := startProc(s.user, "mariadb", logFile, server, "--no-defaults", "--datadir="+data,
		"--socket="+sock, "--port="+strconv.Itoa(port), "--bind-address=127.0.0.1",
		"--pid-file="+filepath.Join(dir, "mariadb.pid"), "--skip-name-resolve", "--skip-log-bin",
		"--innodb-buffer-pool-size=64M", "--innodb-flush-log-at-trx-commit=0")
	if err != nil {
		return nil, err
	}
	if err := s.track(p); err != nil {
		return nil, err
	}
	// SQL on stdin: the user's password is in it, and run's error quotes
	// arguments only.
	root := func(ctx context.Context, sql string) error {
		return run(ctx, nil, os.DevNull, nil, sql, client, "--no-defaults", "-uroot", "--socket="+sock)
	}
	if err := waitReady(ctx, p, func(ctx context.Context) error { return root(ctx, "SELECT 1") }); err != nil {
		return nil, err
	}
	m := &MariaDB{Host: "127.0.0.1", Port: port, User: "writefreely", Password: password(), Database: "writefreely", Socket: sock}
	err = root(ctx, fmt.Sprintf("CREATE DATABASE %s; CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY '%s'; GRANT ALL ON %s.* TO '%s'@'127.0.0.1'; GRANT RELOAD, PROCESS ON *.* TO '%s'@'127.0.0.1';",
		m.Database, m.User, m.Password, m.Database, m.User, m.User))
	return m, err
}
