package redistls

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/fediops/fediops"
)

// ErrSentinel is returned by ClientOptionsFromEnv for settings that use
// Redis Sentinel, which DigitalOcean's managed Redis does not.
var ErrSentinel = errors.New("settings for Redis Sentinel are not supported")

// EnvCAFile names the PEM file of the CA that verifies a rediss:// URL's
// server (a private CA); unset, the system roots verify it, as they do
// Valkey's Let's Encrypt certificates. Mastodon ignores it.
const EnvCAFile = "FEDIOPS_REDIS_CA_FILE"

// ClientOptionsFromEnv builds go-redis options for a Go program that speaks
// TLS to Redis itself, from Mastodon's settings under prefix ("REDIS_",
// "SIDEKIQ_REDIS_" or "CACHE_REDIS_"; "" means "REDIS_"): <prefix>URL wins,
// else <prefix>HOST (localhost), PORT (6379), DB (0), USER and PASSWORD.
// SIDEKIQ_ and CACHE_ take the whole REDIS_ configuration only when their
// URL, HOST and SENTINELS are all unset, as Mastodon does. A rediss:// URL
// means TLS verified against the file FEDIOPS_REDIS_CA_FILE names or, when
// it is unset, the system roots. Errors name the variable and never hold a
// password.
func ClientOptionsFromEnv(env fediops.Lookup, prefix string) (*redis.Options, error) {
	caFile, _ := env(EnvCAFile)
	if prefix == "" {
		prefix = "REDIS_"
	}
	get := func(p, k string) string { v, _ := env(p + k); return v }
	if prefix != "REDIS_" && get(prefix, "URL") == "" && get(prefix, "HOST") == "" && get(prefix, "SENTINELS") == "" {
		prefix = "REDIS_"
	}
	if get(prefix, "SENTINELS") != "" || get(prefix, "SENTINEL_MASTER") != "" {
		return nil, fmt.Errorf("%sSENTINELS: %w", prefix, ErrSentinel)
	}
	raw := get(prefix, "URL")
	if raw == "" {
		host, port := get(prefix, "HOST"), get(prefix, "PORT")
		if host == "" {
			host = "localhost"
		}
		if port == "" {
			port = "6379"
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%sPORT=%q: want a port number (1-65535)", prefix, port)
		}
		if db := get(prefix, "DB"); db != "" {
			if n, err := strconv.Atoi(db); err != nil || n < 0 {
				return nil, fmt.Errorf("%sDB=%q: want a database number (0, 1, ...)", prefix, db)
			}
		}
		u := url.URL{Scheme: "redis", Host: net.JoinHostPort(host, port), Path: "/" + get(prefix, "DB")}
		if p := get(prefix, "PASSWORD"); p != "" || get(prefix, "USER") != "" {
			u.User = url.UserPassword(get(prefix, "USER"), p)
		}
		raw = u.String()
	}
	opts, err := redis.ParseURL(raw)
	if err != nil {
		// ParseURL's errors may quote the URL, password included.
		return nil, fmt.Errorf("%sURL is not a redis:// or rediss:// URL", prefix)
	}
	if opts.Password == "" {
		opts.Password = get(prefix, "PASSWORD")
	}
	if opts.TLSConfig != nil {
		opts.TLSConfig.MinVersion = tls.VersionTLS12
		if caFile != "" {
			pem, err := os.ReadFile(caFile)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", EnvCAFile, err)
			}
			opts.TLSConfig.RootCAs = x509.NewCertPool()
			if !opts.TLSConfig.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("%s=%s: no PEM certificate in it", EnvCAFile, caFile)
			}
		}
	}
	return opts, nil
}

// DropOnReadOnly returns a go-redis hook for one client: as soon as a
// reply carries -READONLY (the node was demoted in a failover), it closes
// every other connection the client holds, so the pool dials the name
// afresh instead of meeting the demoted node once per pooled connection
// and running out of retries. go-redis itself drops only the connection
// that got the error. Add it with client.AddHook(redistls.DropOnReadOnly()).
func DropOnReadOnly() redis.Hook { return &readOnlyHook{conns: map[*hookConn]struct{}{}} }

type readOnlyHook struct {
	mu    sync.Mutex
	conns map[*hookConn]struct{}
}

// hookConn watches replies for -READONLY and reports itself dead to
// go-redis's pool health check once closed, so an idle pooled connection
// is dropped without costing a retry.
type hookConn struct {
	net.Conn
	h    *readOnlyHook
	once sync.Once
	dead chan struct{}
}

func (c *hookConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if b := p[:n]; bytes.HasPrefix(b, readOnly) || bytes.Contains(b, crlfReadOnly) {
		c.h.dropAllBut(c)
	}
	return n, err
}

func (c *hookConn) Close() error {
	c.once.Do(func() {
		close(c.dead)
		c.h.mu.Lock()
		delete(c.h.conns, c)
		c.h.mu.Unlock()
	})
	return c.Conn.Close()
}

func (c *hookConn) SyscallConn() (syscall.RawConn, error) { return deadCheck{c}, nil }

// deadCheck answers go-redis's connCheck without peeking at the TLS
// stream: healthy until closed.
type deadCheck struct{ c *hookConn }

func (d deadCheck) Control(func(uintptr)) error    { return d.err() }
func (d deadCheck) Read(func(uintptr) bool) error  { return d.err() }
func (d deadCheck) Write(func(uintptr) bool) error { return d.err() }
func (d deadCheck) err() error {
	select {
	case <-d.c.dead:
		return net.ErrClosed
	default:
		return nil
	}
}

func (h *readOnlyHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		hc := &hookConn{Conn: c, h: h, dead: make(chan struct{})}
		h.mu.Lock()
		h.conns[hc] = struct{}{}
		h.mu.Unlock()
		return hc, nil
	}
}

func (h *readOnlyHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (h *readOnlyHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// dropAllBut closes every connection except the one that saw -READONLY,
// which go-redis removes itself once it has parsed the reply.
func (h *readOnlyHook) dropAllBut(keep *hookConn) {
	h.mu.Lock()
	cs := make([]*hookConn, 0, len(h.conns))
	for c := range h.conns {
		if c != keep {
			cs = append(cs, c)
		}
	}
	h.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
}
