//go:build testcontainers

package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/moby/moby/api/types/container"
	dnetwork "github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
)

// Containers reports whether this build starts the servers in containers
// (go test -tags testcontainers) instead of from the local binaries.
const Containers = true

// Images the container provider runs; each can be replaced through the
// environment variable next to it (a registry mirror, a pinned digest).
var images = map[string]struct{ env, def string }{
	"postgres":  {"FEDIOPS_TEST_IMAGE_POSTGRES", "postgres:15"},
	"pgbouncer": {"FEDIOPS_TEST_IMAGE_PGBOUNCER", "edoburu/pgbouncer:latest"},
	"redis":     {"FEDIOPS_TEST_IMAGE_REDIS", "redis:7"},
	"mariadb":   {"FEDIOPS_TEST_IMAGE_MARIADB", "mariadb:10.11"},
}

func image(name string) string {
	im := images[name]
	if v := os.Getenv(im.env); v != "" {
		return v
	}
	return im.def
}

// newProvider checks that a Docker engine answers before any test runs, so
// that a missing engine is one clear failure instead of a timeout per test.
func newProvider(s *Stack) (provider, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := dockerHealth(ctx); err != nil {
		host := os.Getenv("DOCKER_HOST")
		if host == "" {
			host = "the default socket"
		}
		return nil, fmt.Errorf("built with -tags testcontainers, but no Docker engine answers at %s: %v\n"+
			"  start Docker (or set DOCKER_HOST), or run the tests without -tags testcontainers to use the local binaries (scripts/deps.sh installs them)", host, err)
	}
	return &containers{s: s}, nil
}

func dockerHealth(ctx context.Context) (err error) {
	defer func() { // the provider panics on some broken configurations
		if r := recover(); r != nil {
			err = fmt.Errorf("docker provider: %v", r)
		}
	}()
	p, err := testcontainers.NewDockerProvider()
	if err != nil {
		return err
	}
	return p.Health(ctx) // Health closes the provider
}

// containers starts each server in its own container on one network per
// stack. Published ports are bound to 127.0.0.1 only; servers reach each
// other by network alias (postgres, redis1, ...), which their certificates
// name too.
type containers struct {
	s *Stack

	mu    sync.Mutex
	net   *testcontainers.DockerNetwork
	procs map[*testcontainers.DockerContainer]*proc
}

func (c *containers) procOf(dc *testcontainers.DockerContainer) *proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.procs[dc]
}

// network makes the stack's network on first use. It is tracked as the
// stack's first "process", so Close removes it after every container.
func (c *containers) network(ctx context.Context) (*testcontainers.DockerNetwork, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.net != nil {
		return c.net, nil
	}
	nw, err := tcnetwork.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("docker network: %w", err)
	}
	var once sync.Once
	p := &proc{name: "network " + nw.Name, done: make(chan struct{})}
	p.halt = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = nw.Remove(ctx)
			close(p.done)
		})
	}
	if err := c.s.track(p); err != nil {
		return nil, err
	}
	c.net = nw
	return nw, nil
}

// file is a file copied into a container before it starts.
type file struct {
	path string // in the container
	data []byte
	mode int64
}

// run starts one container with the files copied in and port published on
// 127.0.0.1, tracks it for Close, and returns it with the host address.
func (c *containers) run(ctx context.Context, name, img string, port string, files []file, env map[string]string,
	user string, entrypoint, cmd []string, ready wait.Strategy) (*testcontainers.DockerContainer, string, int, error) {
	nw, err := c.network(ctx)
	if err != nil {
		return nil, "", 0, err
	}
	cport, err := dnetwork.ParsePort(port + "/tcp")
	if err != nil {
		return nil, "", 0, err
	}
	req := testcontainers.ContainerRequest{
		Image:        img,
		Env:          env,
		Entrypoint:   entrypoint,
		Cmd:          cmd,
		ExposedPorts: []string{port + "/tcp"},
		WaitingFor:   wait.ForAll(ready).WithDeadline(3 * time.Minute),
		ConfigModifier: func(cfg *container.Config) {
			if user != "" {
				cfg.User = user
			}
		},
		HostConfigModifier: func(hc *container.HostConfig) {
			// Only loopback: never publish a test server on the host's other addresses.
			hc.PortBindings = dnetwork.PortMap{cport: {{HostIP: netip.MustParseAddr("127.0.0.1")}}}
		},
	}
	for _, f := range files {
		req.Files = append(req.Files, testcontainers.ContainerFile{Reader: bytes.NewReader(f.data), ContainerFilePath: f.path, FileMode: f.mode})
	}
	greq := testcontainers.GenericContainerRequest{ContainerRequest: req, Started: true}
	if err := tcnetwork.WithNetwork([]string{name}, nw)(&greq); err != nil {
		return nil, "", 0, err
	}
	ctr, err := testcontainers.GenericContainer(ctx, greq)
	var dc *testcontainers.DockerContainer
	if ctr != nil {
		dc, _ = ctr.(*testcontainers.DockerContainer)
	}
	if dc != nil {
		var once sync.Once
		p := &proc{name: name, done: make(chan struct{})}
		p.halt = func() {
			once.Do(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				_ = dc.Terminate(ctx, testcontainers.StopTimeout(5*time.Second))
				close(p.done)
			})
		}
		c.mu.Lock()
		if c.procs == nil {
			c.procs = map[*testcontainers.DockerContainer]*proc{}
		}
		c.procs[dc] = p
		c.mu.Unlock()
		if terr := c.s.track(p); terr != nil && err == nil {
			err = terr
		}
	}
	if err != nil {
		return dc, "", 0, fmt.Errorf("start %s (%s): %w%s", name, img, err, containerLogs(dc))
	}
	host, err := dc.Host(ctx)
	if err != nil {
		return dc, "", 0, fmt.Errorf("%s host: %w", name, err)
	}
	if host == "localhost" {
		host = "127.0.0.1" // as the local provider; certificates name both
	}
	mp, err := dc.MappedPort(ctx, port+"/tcp")
	if err != nil {
		return dc, "", 0, fmt.Errorf("%s port: %w", name, err)
	}
	return dc, host, int(mp.Num()), nil
}

// containerLogs is the tail of a container's output, for errors.
func containerLogs(dc *testcontainers.DockerContainer) string {
	if dc == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := dc.Logs(ctx)
	if err != nil {
		return ""
	}
	defer rc.Close()
	b, _ := io.ReadAll(io.LimitReader(rc, 1<<20))
	return "\n" + lastLines(string(b), 20)
}

// retry polls check until it succeeds or a minute has passed.
func retry(ctx context.Context, what string, dc *testcontainers.DockerContainer, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		err := check(cctx)
		ccancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w%s", what, err, containerLogs(dc))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// issue returns a certificate and key from ca, valid for alias too.
func issue(ca *CA, dir, alias string) (cert, key []byte, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	cf, kf, err := ca.Issue(dir, "server", alias)
	if err != nil {
		return nil, nil, err
	}
	if cert, err = os.ReadFile(cf); err != nil {
		return nil, nil, err
	}
	key, err = os.ReadFile(kf)
	return cert, key, err
}

func (c *containers) postgres(ctx context.Context) (*Postgres, error) {
	const alias = "postgres"
	cert, key, err := issue(c.s.DBCA, filepath.Join(c.s.Dir, alias), alias)
	if err != nil {
		return nil, err
	}
	pg := &Postgres{Database: DatabaseName, User: DBUser, Password: password(),
		AdminUser: AdminUser, AdminPassword: password(), CAFile: c.s.DBCA.File}
	// As the local provider: TCP logins only over TLS, only with SCRAM; the
	// same roles and database. The image runs initdb scripts once.
	initSQL := fmt.Sprintf(`#!/bin/sh
set -e
printf 'local all all trust\nhostssl all all all scram-sha-256\n' > "$PGDATA/pg_hba.conf"
psql -v ON_ERROR_STOP=1 --username postgres --dbname postgres <<'SQL'
CREATE ROLE %s LOGIN SUPERUSER PASSWORD '%s';
CREATE ROLE %s LOGIN PASSWORD '%s';
CREATE DATABASE %s OWNER %s;
SQL
`, pg.AdminUser, pg.AdminPassword, pg.User, pg.Password, pg.Database, pg.User)
	// postgres refuses a key others can read; copied files belong to root,
	// so the entrypoint hands a private copy to the postgres user first.
	start := `install -o postgres -g postgres -m 600 /fediops/server.key /var/lib/postgresql/server.key
install -o postgres -g postgres -m 644 /fediops/server.crt /var/lib/postgresql/server.crt
exec docker-entrypoint.sh "$@"`
	files := []file{
		{"/fediops/server.crt", cert, 0o644},
		{"/fediops/server.key", key, 0o600},
		{"/docker-entrypoint-initdb.d/10-fediops.sh", []byte(initSQL), 0o755},
	}
	env := map[string]string{"POSTGRES_PASSWORD": password(), "POSTGRES_INITDB_ARGS": "--locale=C -E UTF8 --auth-host=scram-sha-256"}
	args := []string{"postgres", "-c", "ssl=on",
		"-c", "ssl_cert_file=/var/lib/postgresql/server.crt", "-c", "ssl_key_file=/var/lib/postgresql/server.key",
		"-c", "password_encryption=scram-sha-256", "-c", "max_connections=300",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "shared_buffers=128MB"}
	ready := wait.ForLog("database system is ready to accept connections").WithOccurrence(2)
	dc, host, port, err := c.run(ctx, alias, image("postgres"), "5432", files, env,
		"", []string{"sh", "-c", start, "fediops-entrypoint"}, args, ready)
	if err != nil {
		return nil, err
	}
	pg.Host, pg.Port = host, port
	err = retry(ctx, "postgres", dc, func(ctx context.Context) error {
		conn, err := pgx.Connect(ctx, pg.URL())
		if err != nil {
			return err
		}
		return conn.Close(ctx)
	})
	return pg, err
}

func (c *containers) pgbouncer(ctx context.Context, pg *Postgres) (*PgBouncer, error) {
	const alias = "pgbouncer"
	if pg.Port == 0 || pg.SocketDir != "" {
		return nil, errors.New("the pgBouncer container needs the PostgreSQL container; set FEDIOPS_TEST_PGBOUNCER_URL too")
	}
	cert, key, err := issue(c.s.DBCA, filepath.Join(c.s.Dir, alias), alias)
	if err != nil {
		return nil, err
	}
	secret, err := scramSecretTLS(ctx, pg, pg.User)
	if err != nil {
		return nil, fmt.Errorf("read SCRAM secret: %w", err)
	}
	b := &PgBouncer{Database: PoolName, User: pg.User, Password: pg.Password,
		AdminUser: BouncerAdmin, AdminPassword: password(), CAFile: c.s.DBCA.File, Backend: pg}
	users := fmt.Sprintf("%q %q\n%q %q\n", pg.User, secret, b.AdminUser, b.AdminPassword)
	// The local provider's settings; the backend is the postgres alias,
	// which its certificate names, so verify-full holds inside the network.
	ini := strings.Join([]string{
		"[databases]",
		fmt.Sprintf("%s = host=postgres port=5432 dbname=%s", PoolName, pg.Database),
		"[pgbouncer]",
		"listen_addr = 0.0.0.0",
		"listen_port = 6432",
		"unix_socket_dir =",
		"auth_type = scram-sha-256",
		"auth_file = /fediops/userlist.txt",
		"admin_users = " + b.AdminUser,
		"stats_users = " + b.AdminUser,
		"pool_mode = transaction",
		"max_client_conn = 2000",
		"default_pool_size = 20",
		"client_tls_sslmode = require",
		"client_tls_cert_file = /fediops/server.crt",
		"client_tls_key_file = /fediops/server.key",
		"client_tls_ca_file = /fediops/ca.crt",
		"server_tls_sslmode = verify-full",
		"server_tls_ca_file = /fediops/ca.crt",
		"ignore_startup_parameters = extra_float_digits,search_path",
		"",
	}, "\n")
	// The image runs as an unprivileged user: the files must be readable by it.
	files := []file{
		{"/fediops/server.crt", cert, 0o644},
		{"/fediops/server.key", key, 0o644},
		{"/fediops/ca.crt", c.s.DBCA.PEM, 0o644},
		{"/fediops/userlist.txt", []byte(users), 0o644},
		{"/fediops/pgbouncer.ini", []byte(ini), 0o644},
	}
	// pgBouncer refuses to run as root; 70 is the image's postgres user.
	dc, host, port, err := c.run(ctx, alias, image("pgbouncer"), "6432", files, nil,
		"70:70", []string{"pgbouncer"}, []string{"/fediops/pgbouncer.ini"}, wait.ForListeningPort("6432/tcp"))
	if err != nil {
		return nil, err
	}
	b.Host, b.Port = host, port
	err = retry(ctx, "pgbouncer", dc, func(ctx context.Context) error {
		conn, err := pgx.Connect(ctx, b.URL())
		if err != nil {
			return err
		}
		return conn.Close(ctx)
	})
	return b, err
}

// scramSecretTLS reads a role's stored SCRAM secret as the admin user over
// TLS (the container has no socket on this host).
func scramSecretTLS(ctx context.Context, pg *Postgres, role string) (string, error) {
	conn, err := pgx.Connect(ctx, pg.AdminURL())
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var secret string
	err = conn.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", role).Scan(&secret)
	return secret, err
}

func (c *containers) redis(ctx context.Context, name, pass string) (*Redis, error) {
	cert, key, err := issue(c.s.RedisCA, filepath.Join(c.s.Dir, name), name)
	if err != nil {
		return nil, err
	}
	// The local provider's redis.conf, on the default port inside the network.
	conf := strings.Join([]string{
		"port 0",
		"tls-port 6379",
		"bind * -::*",
		"tls-cert-file /fediops/server.crt",
		"tls-key-file /fediops/server.key",
		"tls-ca-cert-file /fediops/ca.crt",
		"tls-auth-clients no",
		"tls-replication yes",
		"requirepass " + pass,
		"masterauth " + pass,
		"dir /data",
		`save ""`,
		"appendonly no",
		"repl-diskless-sync yes",
		"repl-diskless-sync-delay 0",
		"",
	}, "\n")
	files := []file{
		{"/fediops/server.crt", cert, 0o644},
		{"/fediops/server.key", key, 0o644},
		{"/fediops/ca.crt", c.s.RedisCA.PEM, 0o644},
		{"/fediops/redis.conf", []byte(conf), 0o644},
	}
	dc, host, port, err := c.run(ctx, name, image("redis"), "6379", files, nil,
		"", nil, []string{"redis-server", "/fediops/redis.conf"}, wait.ForLog("Ready to accept connections"))
	if err != nil {
		return nil, err
	}
	r := &Redis{Name: name, Host: host, Port: port, User: "default", Password: pass, CAFile: c.s.RedisCA.File,
		CA: c.s.RedisCA, peer: net.JoinHostPort(name, "6379")}
	r.proc = c.procOf(dc) // Stop (a node lost in a failover test) ends the container
	err = retry(ctx, name, dc, func(ctx context.Context) error {
		cl := r.Client()
		defer cl.Close()
		return cl.Ping(ctx).Err()
	})
	return r, err
}

func (c *containers) mariadb(ctx context.Context) (*MariaDB, error) {
	const alias = "mariadb"
	m := &MariaDB{User: "writefreely", Password: password(), Database: "writefreely"}
	// The local provider's grants; clients arrive from the network's gateway, hence '%'.
	grants := fmt.Sprintf("GRANT RELOAD, PROCESS ON *.* TO '%s'@'%%';\n", m.User)
	files := []file{{"/docker-entrypoint-initdb.d/10-fediops.sql", []byte(grants), 0o644}}
	env := map[string]string{"MARIADB_ROOT_PASSWORD": password(), "MARIADB_DATABASE": m.Database,
		"MARIADB_USER": m.User, "MARIADB_PASSWORD": m.Password}
	args := []string{"--skip-name-resolve", "--skip-log-bin", "--innodb-buffer-pool-size=64M", "--innodb-flush-log-at-trx-commit=0"}
	// The entrypoint's temporary server reports port 0; the real one port 3306.
	_, host, port, err := c.run(ctx, alias, image("mariadb"), "3306", files, env, "", nil, args,
		wait.ForAll(wait.ForLog("port: 3306"), wait.ForListeningPort("3306/tcp")))
	if err != nil {
		return nil, err
	}
	m.Host, m.Port = host, port
	return m, nil
}
