package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a Redis 7 server that speaks only TLS (port 0, tls-port N) with
// a password for user default: the stand-in for DO's managed Redis/Valkey.
type Redis struct {
	Name     string
	Host     string
	Port     int
	User     string
	Password string
	CAFile   string
	CA       *CA // nil when external

	proc *proc
	peer string // host:port other servers reach it at, when not Addr (containers)
}

// Addr is host:port.
func (r *Redis) Addr() string { return net.JoinHostPort(r.Host, strconv.Itoa(r.Port)) }

// URL is the rediss:// URL with credentials.
func (r *Redis) URL() string {
	u := url.URL{Scheme: "rediss", User: url.UserPassword(r.User, r.Password), Host: r.Addr(), Path: "/0"}
	return u.String()
}

// TLSConfig verifies the server against the Redis CA.
func (r *Redis) TLSConfig() *tls.Config {
	if r.CA != nil {
		return r.CA.TLSConfig("localhost")
	}
	cfg := &tls.Config{ServerName: r.Host, MinVersion: tls.VersionTLS12}
	if r.CAFile != "" {
		if pem, err := os.ReadFile(r.CAFile); err == nil {
			cfg.RootCAs = x509.NewCertPool()
			cfg.RootCAs.AppendCertsFromPEM(pem)
		}
	}
	return cfg
}

// Client is a go-redis client over TLS, closed by the caller.
func (r *Redis) Client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: r.Addr(), Username: r.User, Password: r.Password, TLSConfig: r.TLSConfig()})
}

// Redis starts the primary Redis on first use, or returns the external one
// named by FEDIOPS_TEST_REDIS_URL (CA from FEDIOPS_TEST_REDIS_CA_FILE).
func (s *Stack) Redis(ctx context.Context) (*Redis, error) {
	return once(s, &s.redis, "redis", func() (*Redis, error) {
		if raw := os.Getenv("FEDIOPS_TEST_REDIS_URL"); raw != "" {
			u, err := externalURL("FEDIOPS_TEST_REDIS_URL", raw)
			if err != nil {
				return nil, err
			}
			port, _ := strconv.Atoi(u.Port())
			pass, _ := u.User.Password()
			return &Redis{Name: "external", Host: u.Hostname(), Port: port, User: u.User.Username(),
				Password: pass, CAFile: os.Getenv("FEDIOPS_TEST_REDIS_CA_FILE")}, nil
		}
		return s.StartRedis(ctx, "")
	})
}

// StartRedis starts another TLS-only Redis with the same CA. A password of
// "" takes the primary's (or a new one), so replicas can follow it.
func (s *Stack) StartRedis(ctx context.Context, pass string) (*Redis, error) {
	s.mu.Lock()
	s.nRedis++
	name := fmt.Sprintf("redis%d", s.nRedis)
	if pass == "" && s.redis != nil {
		pass = s.redis.Password
	}
	s.mu.Unlock()
	if pass == "" {
		pass = password()
	}
	return s.prov.redis(ctx, name, pass)
}

func (s *Stack) startRedis(ctx context.Context, name, pass string) (*Redis, error) {
	bin, err := LookPath("redis-server")
	if err != nil {
		return nil, err
	}
	dir, err := s.subdir(name)
	if err != nil {
		return nil, err
	}
	cert, key, err := s.RedisCA.Issue(dir, "server")
	if err != nil {
		return nil, err
	}
	if err := s.user.chown(dir); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	r := &Redis{Name: name, Host: "127.0.0.1", Port: port, User: "default", Password: pass, CAFile: s.RedisCA.File, CA: s.RedisCA}
	conf := strings.Join([]string{
		"port 0",
		fmt.Sprintf("tls-port %d", port),
		"bind 127.0.0.1",
		"tls-cert-file " + cert,
		"tls-key-file " + key,
		"tls-ca-cert-file " + s.RedisCA.File,
		"tls-auth-clients no",
		"tls-replication yes",
		"requirepass " + pass,
		"masterauth " + pass,
		"dir " + dir,
		`save ""`,
		"appendonly no",
		"repl-diskless-sync yes",
		"repl-diskless-sync-delay 0",
		"",
	}, "\n")
	confFile := filepath.Join(dir, "redis.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	if err := s.user.chown(dir); err != nil {
		return nil, err
	}
	p, err := startProc(s.user, name, filepath.Join(dir, "redis.log"), bin, confFile)
	if err != nil {
		return nil, err
	}
	r.proc = p
	if err := s.track(p); err != nil {
		return nil, err
	}
	err = waitReady(ctx, p, func(ctx context.Context) error {
		c := r.Client()
		defer c.Close()
		return c.Ping(ctx).Err()
	})
	return r, err
}

// ReplicaOf makes r a replica of primary and waits until the link is up.
func (r *Redis) ReplicaOf(ctx context.Context, primary *Redis) error {
	c := r.Client()
	defer c.Close()
	host, port := primary.Host, strconv.Itoa(primary.Port)
	if primary.peer != "" {
		host, port, _ = net.SplitHostPort(primary.peer)
	}
	if err := c.Do(ctx, "REPLICAOF", host, port).Err(); err != nil {
		return fmt.Errorf("%s REPLICAOF %s: %w", r.Name, primary.Name, err)
	}
	for {
		info, err := c.Info(ctx, "replication").Result()
		if err == nil && strings.Contains(info, "master_link_status:up") {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s never synced with %s: %w", r.Name, primary.Name, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Promote makes r a primary (REPLICAOF NO ONE).
func (r *Redis) Promote(ctx context.Context) error {
	c := r.Client()
	defer c.Close()
	if err := c.Do(ctx, "REPLICAOF", "NO", "ONE").Err(); err != nil {
		return fmt.Errorf("promote %s: %w", r.Name, err)
	}
	return nil
}

// Stop ends this Redis server (a node lost in a failover test).
func (r *Redis) Stop() { r.proc.stop() }
