package mastometrics

import (
	"errors"
	"fmt"
	"net"

	"github.com/fediops/fediops"
)

// Tier is a kind of droplet as far as Mastodon's metrics go.
type Tier string

// The tiers Mastodon runs on.
const (
	Web       Tier = "web"       // Puma
	Sidekiq   Tier = "sidekiq"   // Sidekiq worker processes
	Streaming Tier = "streaming" // the node streaming server
)

// ErrUnknownTier is returned for a tier other than Web, Sidekiq and
// Streaming.
var ErrUnknownTier = errors.New("unknown tier (want web, sidekiq or streaming)")

// The settings Mastodon 4.4+ reads to instrument its Ruby processes.
const (
	EnvEnabled         = "MASTODON_PROMETHEUS_EXPORTER_ENABLED"                  // "true" turns instrumentation on
	EnvLocal           = "MASTODON_PROMETHEUS_EXPORTER_LOCAL"                    // "true": serve /metrics in-process
	EnvWebDetailed     = "MASTODON_PROMETHEUS_EXPORTER_WEB_DETAILED_METRICS"     // per controller/action request metrics
	EnvSidekiqDetailed = "MASTODON_PROMETHEUS_EXPORTER_SIDEKIQ_DETAILED_METRICS" // per job and per queue metrics
)

// ExporterPort is where the prometheus_exporter collector listens and
// where Mastodon's processes send their measurements (the gem's default,
// PROMETHEUS_EXPORTER_PORT in Mastodon).
const ExporterPort = 9394

// Settings returns the .env.production settings that turn Mastodon 4.4+'s
// Prometheus instrumentation on for the processes of one tier, for
// (*fediops.Env).Set:
//
//	web:       MASTODON_PROMETHEUS_EXPORTER_ENABLED=true
//	           MASTODON_PROMETHEUS_EXPORTER_LOCAL=false
//	           MASTODON_PROMETHEUS_EXPORTER_WEB_DETAILED_METRICS=true
//	sidekiq:   MASTODON_PROMETHEUS_EXPORTER_ENABLED=true
//	           MASTODON_PROMETHEUS_EXPORTER_LOCAL=false
//	           MASTODON_PROMETHEUS_EXPORTER_SIDEKIQ_DETAILED_METRICS=true
//	streaming: none (the streaming server always serves /metrics)
//
// The processes then send to the collector on the same droplet
// (localhost:9394, Mastodon's default), which must run there (see the
// package documentation). A droplet that runs web and Sidekiq takes the
// settings of both.
func Settings(tier Tier) ([]fediops.Setting, error) {
	switch tier {
	case Web:
		return []fediops.Setting{{Key: EnvEnabled, Value: "true"}, {Key: EnvLocal, Value: "false"},
			{Key: EnvWebDetailed, Value: "true"}}, nil
	case Sidekiq:
		return []fediops.Setting{{Key: EnvEnabled, Value: "true"}, {Key: EnvLocal, Value: "false"},
			{Key: EnvSidekiqDetailed, Value: "true"}}, nil
	case Streaming:
		return nil, nil
	}
	return nil, fmt.Errorf("exporter settings for %q: %w", tier, ErrUnknownTier)
}

// StatsDSettings returns the .env.production settings that make Mastodon
// 4.2 and earlier send StatsD to addr (host:port of a statsd_exporter,
// usually 127.0.0.1:9125 on the same droplet): STATSD_ADDR for web and
// Sidekiq, and STATSD_SIDEKIQ=true on Sidekiq droplets (4.2 sends Sidekiq's
// job and queue metrics only with it). STATSD_NAMESPACE is left alone: the
// mapping expects Mastodon's default, Mastodon.production. The streaming
// server sends no StatsD and takes none. Mastodon 4.3 and later ignore
// these settings.
func StatsDSettings(tier Tier, addr string) ([]fediops.Setting, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("statsd settings: address %q: %w", addr, err)
	}
	switch tier {
	case Web:
		return []fediops.Setting{{Key: "STATSD_ADDR", Value: addr}}, nil
	case Sidekiq:
		return []fediops.Setting{{Key: "STATSD_ADDR", Value: addr}, {Key: "STATSD_SIDEKIQ", Value: "true"}}, nil
	case Streaming:
		return nil, nil
	}
	return nil, fmt.Errorf("statsd settings for %q: %w", tier, ErrUnknownTier)
}
