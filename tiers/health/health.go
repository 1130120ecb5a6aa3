package health

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/pgpool"
	"github.com/fediops/fediops/redistls"
	"github.com/fediops/fediops/sidekiqq"
	"github.com/fediops/fediops/spaces"
)

// DBCheck pings the database through pool (pgpool.Check: an empty
// statement, safe in transaction mode).
func DBCheck(name string, pool *pgxpool.Pool) Check {
	return CheckFunc(name, func(ctx context.Context) (string, error) {
		h, err := pgpool.Check(ctx, pool, nil)
		if err != nil {
			return "", err
		}
		st := pool.Stat()
		return fmt.Sprintf("ping %v, %d/%d conns", h.Ping.Round(10*time.Microsecond), st.TotalConns(), st.MaxConns()), nil
	})
}

// RedisCheck sends PING; with the seed's layout c talks plain Redis to the
// local tunnel (redistls or stunnel), so this checks the tunnel and the
// managed Redis behind it.
func RedisCheck(name string, c redis.Cmdable) Check {
	return CheckFunc(name, func(ctx context.Context) (string, error) {
		got, err := c.Ping(ctx).Result()
		if err != nil {
			return "", fmt.Errorf("redis PING: %w", err)
		}
		if got != "PONG" {
			return "", fmt.Errorf("redis PING answered %q", got)
		}
		return "PONG", nil
	})
}

// SpacesCheck HEADs key through the Spaces API and through its public
// (alias) URL (spaces.Client.Health); it fails when any of them fails.
func SpacesCheck(c *spaces.Client, key string) Check {
	return CheckFunc("spaces", func(ctx context.Context) (string, error) {
		var ok []string
		var errs []error
		for _, r := range c.Health(ctx, key) {
			if r.OK {
				ok = append(ok, r.Name)
			} else {
				errs = append(errs, fmt.Errorf("%s: %w", r.Name, r.Err))
			}
		}
		return strings.Join(ok, ", ") + " ok", errors.Join(errs...)
	})
}

// SidekiqCheck reads Sidekiq's state from Redis (sidekiqq.ReadNamespace
// under cfg.Namespace), compares its processes with the previous run's
// (sidekiqq.Remember, which keeps them in Redis) and runs sidekiqq.Check:
// queue latencies, queues served, one scheduler, fresh heartbeats, no
// process vanished since the last run. The detail counts the sub-checks;
// the error lists the failed ones.
func SidekiqCheck(c redis.Cmdable, cfg sidekiqq.CheckConfig) Check {
	return CheckFunc("sidekiq", func(ctx context.Context) (string, error) {
		st, err := sidekiqq.ReadNamespace(ctx, c, cfg.Namespace, time.Time{})
		if err != nil {
			return "", err
		}
		var remembered []sidekiqq.CheckResult
		if err := sidekiqq.Remember(ctx, c, st, cfg); err != nil {
			remembered = append(remembered, sidekiqq.CheckResult{Name: "sidekiq vanished processes",
				Detail: fmt.Sprintf("%v (CheckConfig.SeenKey \"-\" turns this check off)", err)})
		}
		res := append(sidekiqq.Check(st, cfg), remembered...)
		var failed []string
		for _, r := range res {
			if !r.OK {
				failed = append(failed, r.Name+": "+r.Detail)
			}
		}
		detail := fmt.Sprintf("%d/%d ok, %d enqueued, %d processes", len(res)-len(failed), len(res), st.Enqueued, len(st.Processes))
		if len(failed) > 0 {
			return detail, errors.New(strings.Join(failed, "; "))
		}
		return detail, nil
	})
}

// Options says where the parts of an instance are, beyond what
// .env.production says.
type Options struct {
	// Web and Streaming are base URLs of the nodes to check; nil means
	// http://127.0.0.1:3000 and http://127.0.0.1:4000 (this node).
	Web, Streaming []string
	// SpacesKey is an object known to exist; "" checks only the settings.
	SpacesKey string
	// Sidekiq tunes the Sidekiq checks; an empty Namespace means
	// REDIS_NAMESPACE (Mastodon 4.3).
	Sidekiq sidekiqq.CheckConfig
	// DBMaxConns bounds the health pool; 0 means 2.
	DBMaxConns int32
}

// ChecksFromEnv builds every check of the instance from its settings:
// web and streaming HTTP checks, the pooled database ping (pgpool.FromEnv),
// Redis PING (REDIS_*), the Sidekiq checks (SIDEKIQ_REDIS_* when set, as
// Mastodon reads them, else REDIS_*), the Spaces check
// (S3_*, when S3_ENABLED=true) and the OpenSearch probe (ES_*, when
// ES_ENABLED=true). A part whose settings are wrong becomes a failing
// check naming the variable, so one bad value does not hide the rest.
// close releases the connections.
func ChecksFromEnv(ctx context.Context, lookup fediops.Lookup, o Options) (checks []Check, close func()) {
	in := connect(ctx, lookup, o)
	return in.checks, in.close
}

// instance is what ChecksFromEnv connects to: the checks and the clients
// they share, which an Exporter's collectors read too.
type instance struct {
	checks []Check
	db     *pgpool.Config // nil when the database settings are wrong
	pool   *pgxpool.Pool  // nil when db is
	redis  *redis.Client  // Sidekiq's Redis (SIDEKIQ_REDIS_*, else REDIS_*); nil when wrong
	close  func()
	// settings are the errors of the parts whose settings are wrong, each
	// "<check>: <error>", in the order of the checks.
	settings []error
}

func connect(ctx context.Context, lookup fediops.Lookup, o Options) (in instance) {
	var closers []func()
	in.close = func() {
		for _, c := range closers {
			c()
		}
	}
	failing := func(name string, err error) Check {
		in.settings = append(in.settings, fmt.Errorf("%s: %w", name, err))
		return CheckFunc(name, func(context.Context) (string, error) { return "", err })
	}
	if o.Web == nil {
		o.Web = []string{"http://127.0.0.1:3000"}
	}
	if o.Streaming == nil {
		o.Streaming = []string{"http://127.0.0.1:4000"}
	}
	if o.Sidekiq.Namespace == "" {
		o.Sidekiq.Namespace = sidekiqq.NamespaceFromEnv(lookup)
	}
	if o.Sidekiq.ExperimentalFeatures == "" {
		o.Sidekiq.ExperimentalFeatures, _ = lookup("EXPERIMENTAL_FEATURES")
	}
	for _, u := range o.Web {
		in.checks = append(in.checks, WebHealth("web "+hostOf(u), u))
	}
	for _, u := range o.Streaming {
		in.checks = append(in.checks, StreamingHealth("streaming "+hostOf(u), u))
	}

	maxConns := o.DBMaxConns
	if maxConns == 0 {
		maxConns = 2
	}
	if cfg, err := pgpool.ConfigFromEnv(lookup, pgpool.Options{MaxConns: maxConns}); err != nil {
		in.checks = append(in.checks, failing("database", err))
	} else if pool, err := pgxpool.NewWithConfig(ctx, cfg.App()); err != nil {
		in.checks = append(in.checks, failing("database", fmt.Errorf("database pool: %w", err)))
	} else {
		in.db, in.pool = cfg, pool
		closers = append(closers, pool.Close)
		in.checks = append(in.checks, DBCheck("database", pool))
	}

	// A health check wants the first answer: no retries, short dials.
	// Sidekiq's data lives where SIDEKIQ_REDIS_* point, which inherit all
	// of REDIS_* when they say nothing themselves, as in Mastodon.
	for _, c := range []struct{ name, prefix string }{{"redis", "REDIS_"}, {"sidekiq", "SIDEKIQ_REDIS_"}} {
		ro, err := redistls.ClientOptionsFromEnv(lookup, c.prefix)
		if err != nil {
			in.checks = append(in.checks, failing(c.name, err))
			continue
		}
		ro.MaxRetries, ro.PoolSize = -1, 2
		if ro.DialTimeout == 0 {
			ro.DialTimeout = 3 * time.Second
		}
		rc := redis.NewClient(ro)
		closers = append(closers, func() { rc.Close() })
		if c.name == "redis" {
			in.checks = append(in.checks, RedisCheck("redis", rc))
		} else {
			in.redis = rc
			in.checks = append(in.checks, SidekiqCheck(rc, o.Sidekiq))
		}
	}

	if scfg, err := spaces.ConfigFromEnv(lookup); errors.Is(err, spaces.ErrDisabled) {
		// media on local disk: nothing to check
	} else if err != nil {
		in.checks = append(in.checks, failing("spaces", err))
	} else if sc, err := spaces.New(scfg); err != nil {
		in.checks = append(in.checks, failing("spaces", err))
	} else if o.SpacesKey == "" {
		in.checks = append(in.checks, CheckFunc("spaces", func(context.Context) (string, error) {
			return "settings valid", Warn(errors.New("no object key given to HEAD"))
		}))
	} else {
		in.checks = append(in.checks, SpacesCheck(sc, o.SpacesKey))
	}

	if ocfg, ok := OpenSearchConfigFromEnv(lookup); ok {
		if p, err := NewOpenSearchProbe(ocfg); err != nil {
			in.checks = append(in.checks, failing("search", err))
		} else {
			in.checks = append(in.checks, p)
		}
	}
	return in
}

func hostOf(u string) string {
	s := u
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	return s
}
