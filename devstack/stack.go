package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/fediops/fediops/internal/b2fake"
	"github.com/fediops/fediops/internal/dofake"
	"github.com/fediops/fediops/internal/s3fake"
	"github.com/fediops/fediops/internal/testenv"
	"github.com/fediops/fediops/redistls"
)

// Bucket names of the stand-ins.
const (
	MediaBucket  = "mastodon-media"  // the Space (Spaces stand-in)
	BackupBucket = "fediops-backups" // B2: database backups
	MirrorBucket = "fediops-media"   // B2: the media mirror
)

// Names the stack gives its databases and its DigitalOcean cluster.
const (
	// Database is the real database behind the pool (the direct port).
	Database = testenv.DatabaseName
	// Pool is pgBouncer's pool, the DB_NAME Mastodon connects to.
	Pool = testenv.PoolName
	// RestoreDatabase is an empty database owned by the application user,
	// for `backup restore -to-database` to restore into.
	RestoreDatabase = "mastodon_restore"
	// ClusterName is the DO stand-in's database cluster: the seed's Majel,
	// 2 vCPU and 4 GB (DO's limit 97 connections).
	ClusterName = "majel"
	// ClusterHost is the cluster's public host as the DO API reports it.
	ClusterHost = "majel-do-user-1-0.b.db.ondigitalocean.com"
	// ClusterLimit is the cluster's connection limit (4 GiB: 25 x 4 - 3).
	ClusterLimit = 97
	// ClusterID is the cluster's UUID at the DO stand-in, fixed so that a
	// command line written once works on every stack.
	ClusterID = "9cc10173-e9ea-4176-9dbc-a4cee4c4ff30"
	// CertificateID is a certificate the CDN's custom domain may use.
	CertificateID = "892071a0-bb95-49bc-8021-3afd67a210bf"
)

// Config says what Start brings up. The zero value is a stack without
// MariaDB in a new temporary directory.
type Config struct {
	// Dir holds the data, certificates, logs and the files the programs
	// read: a directory that does not exist yet or is empty; "" makes a
	// new temporary one. Close removes it unless asked to keep it.
	Dir string
	// MySQL also starts MariaDB (a WriteFreely-like database for
	// mysqldump). One that does not answer within MySQLTimeout is left
	// out (Stack.MySQLErr says why), not a failure of Start.
	MySQL        bool
	MySQLTimeout time.Duration // 0 means 25 s
	// Logger receives the stand-ins' and the tunnel's logs; nil discards
	// them.
	Logger *slog.Logger
}

// Login is a user and password.
type Login struct{ User, Password string }

// DigitalOcean is what a program needs to talk to the DO API stand-in.
type DigitalOcean struct {
	URL   string // base URL, http://127.0.0.1:PORT (DIGITALOCEAN_API_URL)
	Token string // the token it accepts (DIGITALOCEAN_TOKEN)
	// ClusterID is the database cluster's UUID (the constant ClusterID),
	// whose CA is the stack's database CA and whose limit is ClusterLimit.
	ClusterID string
	// CertificateID is a certificate id to give the CDN's custom domain
	// (the constant CertificateID).
	CertificateID string
}

// Stack is a running local stand-in of an instance's managed services.
// Its fields are set by Start (MediaKeys by Seed) and must not be changed.
type Stack struct {
	Dir          string // everything below lives here
	EnvFile      string // .env.production for the stack (mode 0600)
	SeedEnvFile  string // seed.env.production: the seed document's settings, for provision to rewrite
	TunnelConfig string // stunnel-redis.conf, the file the tunnel runs from
	TryTunnel    string // stunnel-try.conf: the same backend on another free port, for the tunnel program
	IdentityFile string // backup-identity.txt: the age private key the backups are encrypted to
	ShellFile    string // stack.env: `. stack.env` exports what command lines need (ShellEnv)
	DBCAFile     string // the database's CA certificate (DO's private CA)

	Web       string // base URL of the web stand-in (GET /health)
	Streaming string // base URL of the streaming stand-in (GET /api/v1/streaming/health)
	DO        DigitalOcean
	// DirectPort is PostgreSQL's own port (DO's 25060), which pg_dump
	// must use: the pool refuses it.
	DirectPort int
	// DBAdmin is the direct database's administrator (DO's doadmin), which
	// Mastodon's .env.production does not hold: restore drills create
	// scratch databases with it.
	DBAdmin Login
	// MySQLErr is why MariaDB was left out when Config.MySQL asked for it.
	MySQLErr error
	// MediaKeys are the objects Seed put into the Space.
	MediaKeys []string

	log     *slog.Logger
	servers *testenv.Stack
	bouncer *testenv.PgBouncer
	redis   *testenv.Redis
	maria   *testenv.MariaDB
	tunnel  *redistls.Tunnel
	s3      *s3fake.Server
	b2      *b2fake.Server
	do      *dofake.Server
	ageID   *age.X25519Identity
	sidekiq *sidekiqSim // after Seed
	addrs   []string    // what the stack serves in-process
	tryPort int         // the port stunnel-try.conf accepts on

	closeOnce sync.Once
	closeErr  error
	stop      []func() // LIFO, everything but the servers
}

// Start brings up the stack and writes its files (see the package doc).
// On failure it stops what it started and removes the directory it made.
// ctx bounds the start only: the stack runs until Close.
func Start(ctx context.Context, cfg Config) (*Stack, error) {
	if cfg.MySQLTimeout <= 0 {
		cfg.MySQLTimeout = 25 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	dir, made := cfg.Dir, false
	if dir != "" {
		// Close removes Dir: never one that holds something else.
		if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
			return nil, fmt.Errorf("start the local stack in %s: the directory is not empty", dir)
		}
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "fediops-stack-")
		if err != nil {
			return nil, fmt.Errorf("start the local stack: %w", err)
		}
		dir, made = d, true
	}
	servers, err := testenv.NewStack(dir)
	if err != nil {
		if made {
			os.RemoveAll(dir)
		}
		return nil, fmt.Errorf("start the local stack: %w", err)
	}
	s := &Stack{Dir: dir, servers: servers, log: cfg.Logger, DBCAFile: servers.DBCA.File}
	if err := s.start(ctx, cfg); err != nil {
		s.Close(false)
		return nil, fmt.Errorf("start the local stack: %w", errors.Join(err, ctx.Err()))
	}
	return s, nil
}

func (s *Stack) start(ctx context.Context, cfg Config) error {
	mariaDone := make(chan struct{})
	if cfg.MySQL {
		go func() {
			defer close(mariaDone)
			mctx, cancel := context.WithTimeout(ctx, cfg.MySQLTimeout)
			defer cancel()
			if s.maria, s.MySQLErr = s.servers.MariaDB(mctx); s.MySQLErr != nil {
				s.maria = nil
			}
		}()
	} else {
		close(mariaDone)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { s.bouncer, err = s.servers.PgBouncer(gctx); return err })
	g.Go(func() (err error) { s.redis, err = s.servers.Redis(gctx); return err })
	err := g.Wait()
	<-mariaDone
	if err != nil {
		return err
	}
	pg := s.bouncer.Backend
	s.DirectPort = pg.Port
	s.DBAdmin = Login{User: pg.AdminUser, Password: pg.AdminPassword}
	if err := s.createRestoreDatabase(ctx); err != nil {
		return err
	}
	for _, step := range []func(context.Context) error{s.startTunnel, s.startStandIns, s.writeFiles} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// createRestoreDatabase makes RestoreDatabase, owned by the application
// user, as an admin would before `backup restore -to-database`.
func (s *Stack) createRestoreDatabase(ctx context.Context) error {
	pg := s.bouncer.Backend
	c, err := pgx.Connect(ctx, pg.AdminURL())
	if err != nil {
		return fmt.Errorf("connect as %s: %w", pg.AdminUser, err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+RestoreDatabase+" OWNER "+pgx.Identifier{pg.User}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", RestoreDatabase, err)
	}
	return nil
}

// startTunnel writes the seed's stunnel client configuration (with
// verification, which the seed's file lacks) and runs redistls from it.
func (s *Stack) startTunnel(context.Context) error {
	conf := func(port int) string {
		return fmt.Sprintf("; written by fediops's devstack: the seed's stunnel client, with verification\n"+
			"[redis]\nclient = yes\naccept = 127.0.0.1:%d\nconnect = localhost:%d\nCAfile = %s\nverifyChain = yes\ndelay = yes\n",
			port, s.redis.Port, s.redis.CAFile)
	}
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	s.TunnelConfig = filepath.Join(s.Dir, "stunnel-redis.conf")
	s.TryTunnel = filepath.Join(s.Dir, "stunnel-try.conf")
	s.tryPort = ports[1]
	for path, port := range map[string]int{s.TunnelConfig: ports[0], s.TryTunnel: ports[1]} {
		if err := os.WriteFile(path, []byte(conf(port)), 0o644); err != nil {
			return err
		}
	}
	tcfg, err := redistls.ReadConfig(s.TunnelConfig)
	if err != nil {
		return err
	}
	tcfg.Username, tcfg.Password, tcfg.Logger = s.redis.User, s.redis.Password, s.log
	if s.tunnel, err = redistls.New(tcfg); err != nil {
		return fmt.Errorf("tunnel: %w", err)
	}
	if err := s.tunnel.Start(); err != nil {
		return fmt.Errorf("start tunnel: %w", err)
	}
	s.stop = append(s.stop, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.tunnel.Shutdown(sctx)
	})
	s.addrs = append(s.addrs, s.tunnel.Addr("redis").String())
	return nil
}

// startStandIns serves the S3, B2 and DO stand-ins and the web and
// streaming stand-ins, each on its own loopback listener.
func (s *Stack) startStandIns(context.Context) error {
	s.s3 = s3fake.New(nil)
	s.stop = append(s.stop, s.s3.Close)
	if err := s.s3.CreateBucket(MediaBucket); err != nil {
		return fmt.Errorf("spaces stand-in: %w", err)
	}
	s.b2 = b2fake.New()
	s.stop = append(s.stop, s.b2.Close)
	s.b2.CreateBucket(BackupBucket)
	s.b2.CreateBucket(MirrorBucket)
	s.addrs = append(s.addrs, s.s3.Addr, hostPort(s.b2.URL))

	s.DO = DigitalOcean{Token: "dop_v1_devstack_" + randHex(16), ClusterID: ClusterID, CertificateID: CertificateID}
	s.do = dofake.New(dofake.Options{Token: s.DO.Token})
	s.do.AddCluster(dofake.Cluster{ID: s.DO.ClusterID, Name: ClusterName, Size: "db-s-2vcpu-4gb",
		Host: ClusterHost, PrivateHost: "private-" + ClusterHost, Password: randHex(12),
		CA: s.servers.DBCA.PEM, Limit: ClusterLimit})
	for _, d := range seedDroplets {
		s.do.AddDroplet(d)
	}
	doCtx, cancel := context.WithCancel(context.Background())
	s.stop = append(s.stop, cancel)
	var err error
	if s.DO.URL, err = s.do.Listen(doCtx, "127.0.0.1:0"); err != nil {
		return fmt.Errorf("DO stand-in: %w", err)
	}
	s.addrs = append(s.addrs, hostPort(s.DO.URL))

	if s.Web, err = s.serve(okHandler("/health")); err != nil {
		return err
	}
	if s.Streaming, err = s.serve(okHandler("/api/v1/streaming/health")); err != nil {
		return err
	}
	if s.ageID, err = age.GenerateX25519Identity(); err != nil {
		return fmt.Errorf("age key: %w", err)
	}
	return nil
}

// serve runs h on a new loopback listener until Close and returns its
// base URL.
func (s *Stack) serve(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	s.stop = append(s.stop, func() { srv.Close() })
	s.addrs = append(s.addrs, ln.Addr().String())
	return "http://" + ln.Addr().String(), nil
}

// okHandler answers path with 200 "OK", as Mastodon's web and streaming
// health endpoints do.
func okHandler(path string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+path, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "OK") })
	return mux
}

// Summary is one line naming what runs where.
func (s *Stack) Summary() string {
	mysql := "no mariadb"
	switch {
	case s.maria != nil:
		mysql = "mariadb " + s.maria.Addr()
	case s.MySQLErr != nil:
		mysql = fmt.Sprintf("mariadb left out (%s)", firstLine(s.MySQLErr.Error()))
	}
	return fmt.Sprintf("pgbouncer %s -> postgres %s, redis %s (TLS) <- tunnel %s, spaces %s, b2 %s, do %s, web %s, streaming %s, %s",
		s.bouncer.Addr(), s.bouncer.Backend.Addr(), s.redis.Addr(), s.tunnel.Addr("redis"), s.s3.Addr,
		hostPort(s.b2.URL), hostPort(s.DO.URL), hostPort(s.Web), hostPort(s.Streaming), mysql)
}

// Addrs lists every address the stack serves, servers and stand-ins,
// sorted: after Close none of them accepts a connection.
func (s *Stack) Addrs() []string {
	out := append([]string(nil), s.addrs...)
	if s.bouncer != nil {
		out = append(out, s.bouncer.Addr(), s.bouncer.Backend.Addr())
	}
	if s.redis != nil {
		out = append(out, s.redis.Addr())
	}
	if s.maria != nil {
		out = append(out, s.maria.Addr())
	}
	sort.Strings(out)
	return out
}

// HasMySQL reports whether MariaDB is part of the stack.
func (s *Stack) HasMySQL() bool { return s.maria != nil }

// B2Files counts the files of a B2 bucket (BackupBucket, MirrorBucket),
// hidden ones included.
func (s *Stack) B2Files(bucket string) int { return len(s.b2.Files(bucket)) }

// Close stops every server and stand-in and removes Dir unless keep is
// set (the logs of the servers are in Dir/*/*.log). It is safe to call
// more than once.
func (s *Stack) Close(keep bool) error {
	s.closeOnce.Do(func() {
		for i := len(s.stop) - 1; i >= 0; i-- {
			s.stop[i]()
		}
		s.closeErr = s.servers.Close(keep)
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("close: %w", s.closeErr)
		}
	})
	return s.closeErr
}

func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func hostPort(url string) string {
	return strings.TrimPrefix(strings.TrimPrefix(url, "http://"), "https://")
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// seedDroplets are the seed instance's droplets as the DO stand-in holds
// them, tagged by tier, with private addresses in 127.0.1.0/24 so that
// anything pointed at them stays on this machine: Kirk and Spock (web and
// streaming), Scotty and Decker (Sidekiq), Sulu and Chekov (nginx), Khan
// (OpenSearch), Uhura (the flings, tagged by no tier).
var seedDroplets = []dofake.Droplet{
	seedDroplet("kirk", "127.0.1.2", 2, 4096, "web", "streaming"),
	seedDroplet("spock", "127.0.1.3", 2, 4096, "web", "streaming"),
	seedDroplet("scotty", "127.0.1.4", 2, 4096, "sidekiq"),
	seedDroplet("decker", "127.0.1.5", 2, 4096, "sidekiq"),
	seedDroplet("sulu", "127.0.1.6", 1, 1024, "proxy"),
	seedDroplet("chekov", "127.0.1.7", 1, 1024, "proxy"),
	seedDroplet("khan", "127.0.1.8", 1, 2048, "search"),
	seedDroplet("uhura", "127.0.1.9", 2, 4096, "flings"),
}

func seedDroplet(name, ip string, vcpu, mib int, tags ...string) dofake.Droplet {
	return dofake.Droplet{Name: name, Size: fmt.Sprintf("s-%dvcpu-%dgb", vcpu, mib/1024), Region: "tor1",
		PrivateIP: ip, VCPUs: vcpu, MemoryMiB: mib, Tags: tags}
}
