// Package mysqldump backs up MySQL or MariaDB with `mysqldump
// --single-transaction` (a consistent InnoDB snapshot without locks):
// SourceFromEnv reads MYSQL_HOST, MYSQL_PORT, MYSQL_USER, MYSQL_PASSWORD
// and MYSQL_DATABASE, and the Source goes into backup.Runner; Target
// restores a backup with the mariadb client and Drill runs a restore drill.
// The password goes in MYSQL_PWD, never on a command line.
package mysqldump

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/internal/tool"
)

// Conn is how the tools reach the server.
type Conn struct {
	Host     string
	Port     int // 0 = 3306
	User     string
	Password string // passed in MYSQL_PWD
	Database string
}

// Source dumps one database.
type Source struct {
	Label string // Name(); "" = "mysql"
	Conn
	Mysqldump string   // path; "" = mysqldump from PATH
	ExtraArgs []string // e.g. --ssl-ca=...
}

var (
	_ backup.Source   = (*Source)(nil)
	_ backup.Target   = (*Target)(nil)
	_ backup.Verifier = (*Drill)(nil)
)

// SourceFromEnv reads MYSQL_HOST, MYSQL_PORT (default 3306), MYSQL_USER,
// MYSQL_PASSWORD and MYSQL_DATABASE through env. A missing one is an error
// of Dump (a program may fill it in from its flags first).
func SourceFromEnv(env fediops.Lookup) (*Source, error) {
	get := func(k string) string { v, _ := env(k); return v }
	s := &Source{Conn: Conn{Host: get("MYSQL_HOST"), User: get("MYSQL_USER"), Password: get("MYSQL_PASSWORD"),
		Database: get("MYSQL_DATABASE")}}
	if v := get("MYSQL_PORT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("MYSQL_PORT=%q: not a port number", v)
		}
		s.Port = n
	}
	return s, nil
}

func (c Conn) validate() error {
	if c.Host == "" || c.User == "" || c.Database == "" {
		return errors.New("mysql connection: host, user and database (MYSQL_HOST, MYSQL_USER, MYSQL_DATABASE) must be set")
	}
	return nil
}

// args are the client's connection arguments; the password is in env.
func (c Conn) args() []string {
	return []string{"--protocol=TCP", "-h", c.Host, "-P", strconv.Itoa(cmp.Or(c.Port, 3306)), "-u", c.User}
}

func (c Conn) env() []string { return []string{"MYSQL_PWD=" + c.Password} }

// Name is Label or "mysql".
func (s *Source) Name() string { return cmp.Or(s.Label, "mysql") }

// Kind is "mysql".
func (s *Source) Kind() string { return "mysql" }

// Version runs mysqldump --version.
func (s *Source) Version(ctx context.Context) (string, error) {
	return tool.Version(ctx, s.Mysqldump, "mysqldump")
}

// Dump streams the SQL dump into w.
func (s *Source) Dump(ctx context.Context, w io.Writer) error {
	if err := s.validate(); err != nil {
		return err
	}
	bin, err := tool.Find(s.Mysqldump, "mysqldump")
	if err != nil {
		return err
	}
	args := append(s.args(), "--single-transaction", "--quick", "--routines",
		"--triggers", "--hex-blob", "--default-character-set=utf8mb4")
	args = append(append(args, s.ExtraArgs...), s.Database)
	return tool.Cmd{Bin: bin, Args: args, Env: s.env()}.Run(ctx, nil, w)
}

// Target pipes an SQL dump into the mariadb (or mysql) client, into
// Conn.Database, which must exist.
type Target struct {
	Conn
	Client string // path; "" = mariadb from PATH
}

// Restore runs the client with r as stdin.
func (t *Target) Restore(ctx context.Context, r io.Reader) error {
	if err := t.validate(); err != nil {
		return err
	}
	bin, err := tool.Find(t.Client, "mariadb")
	if err != nil {
		return err
	}
	args := append(t.args(), "--batch", t.Database)
	return tool.Cmd{Bin: bin, Args: args, Env: t.env()}.Run(ctx, r, nil)
}
