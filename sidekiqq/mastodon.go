package sidekiqq

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/fediops/fediops"
)

// Queue is one entry of a Sidekiq process's queue list: a queue name and
// its weight. Weight 0 means the queue is listed without a weight (`-q pull`),
// as Mastodon's config/sidekiq.yml lists pull, scheduler and fasp; in
// weighted mode Sidekiq counts it as 1 (each fetch shuffles a list in which
// a queue appears max(weight, 1) times, then BRPOPs with a 2 s timeout).
type Queue struct {
	Name   string `json:"name"`
	Weight int    `json:"weight,omitempty"`
}

// Arg is the queue as Sidekiq's -q option takes it: "default,8" or "pull".
func (q Queue) Arg() string {
	if q.Weight > 0 {
		return q.Name + "," + strconv.Itoa(q.Weight)
	}
	return q.Name
}

// Names of Mastodon's queues.
const (
	QueueDefault   = "default"
	QueuePush      = "push"
	QueueIngress   = "ingress"
	QueueMailers   = "mailers"
	QueuePull      = "pull"
	QueueScheduler = "scheduler"
	QueueFASP      = "fasp"
)

// Release is what fediops knows about one Mastodon release line's Sidekiq.
type Release struct {
	Mastodon string `json:"mastodon"` // "4.4"
	Sidekiq  string `json:"sidekiq"`  // "7.3", from Mastodon's Gemfile.lock
	// Queues in config/sidekiq.yml order, fasp included where the release
	// has it (Queues filters it by EXPERIMENTAL_FEATURES).
	queues []Queue
	// MillisecondTimestamps: jobs carry enqueued_at/created_at as integer
	// epoch milliseconds (Sidekiq 8) rather than float seconds (6.5, 7.x).
	// Read detects the form per job anyway: right after an upgrade both
	// are in Redis.
	MillisecondTimestamps bool `json:"millisecond_timestamps"`
	// Heartbeat is how often a Sidekiq process of this release writes its
	// process hash (which expires after 60 s).
	HeartbeatSeconds int `json:"heartbeat_seconds"`
}

// DefaultMastodon is the release Plan and the examples assume when none is
// given.
const DefaultMastodon = "4.5"

// ErrUnknownRelease is returned for a Mastodon version this package has no
// queue table for.
var ErrUnknownRelease = errors.New("unknown Mastodon release")

var (
	queues43 = []Queue{{QueueDefault, 8}, {QueuePush, 6}, {QueueIngress, 4}, {QueueMailers, 2}, {QueuePull, 0}, {QueueScheduler, 0}}
	queues44 = append(append([]Queue(nil), queues43...), Queue{QueueFASP, 0})
)

var releases = []Release{
	{Mastodon: "4.3", Sidekiq: "6.5", queues: queues43, HeartbeatSeconds: 5},
	{Mastodon: "4.4", Sidekiq: "7.3", queues: queues44, HeartbeatSeconds: 10},
	{Mastodon: "4.5", Sidekiq: "8.0", queues: queues44, MillisecondTimestamps: true, HeartbeatSeconds: 10},
	{Mastodon: "4.6", Sidekiq: "8.1", queues: queues44, MillisecondTimestamps: true, HeartbeatSeconds: 10},
}

// Releases lists the Mastodon release lines this package knows, oldest first.
func Releases() []Release { return append([]Release(nil), releases...) }

// LookupRelease finds a release line by version: "4.4", "v4.4.2",
// "4.5.0-beta.1" all work; "" means DefaultMastodon.
func LookupRelease(version string) (Release, error) {
	v := strings.TrimPrefix(strings.TrimSpace(version), "v")
	if v == "" {
		v = DefaultMastodon
	}
	parts := strings.SplitN(v, ".", 3)
	if len(parts) >= 2 {
		minor := parts[1]
		if i := strings.IndexFunc(minor, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
			minor = minor[:i]
		}
		mm := parts[0] + "." + minor
		for _, r := range releases {
			if r.Mastodon == mm {
				return r, nil
			}
		}
	}
	known := make([]string, len(releases))
	for i, r := range releases {
		known[i] = r.Mastodon
	}
	return Release{}, fmt.Errorf("%w %q (known: %s)", ErrUnknownRelease, version, strings.Join(known, ", "))
}

// Queues returns the release's queues with their weights in
// config/sidekiq.yml order. experimentalFeatures is the value of
// EXPERIMENTAL_FEATURES (a comma-separated list): the fasp queue is included
// only when it names "fasp" and the release has the queue (4.4 and later).
func (r Release) Queues(experimentalFeatures string) []Queue {
	fasp := HasFeature(experimentalFeatures, QueueFASP)
	out := make([]Queue, 0, len(r.queues))
	for _, q := range r.queues {
		if q.Name == QueueFASP && !fasp {
			continue
		}
		out = append(out, q)
	}
	return out
}

// HasQueue reports whether the release has the named queue at all.
func (r Release) HasQueue(name string) bool {
	for _, q := range r.queues {
		if q.Name == name {
			return true
		}
	}
	return false
}

// EnvNamespace is the variable Mastodon 4.3 prefixes Sidekiq's Redis keys
// with (redis-namespace: REDIS_NAMESPACE=mastodon_production makes
// queue:default mastodon_production:queue:default), whatever Redis
// SIDEKIQ_REDIS_* point at.
const EnvNamespace = "REDIS_NAMESPACE"

// NamespaceFromEnv returns REDIS_NAMESPACE as env reads it, "" when unset: the
// namespace ReadNamespace, CollectorOptions and CheckConfig take. Only
// Mastodon 4.3 honours it (deprecated, see the package doc); 4.4 and later
// refuse to start while it is set.
func NamespaceFromEnv(env fediops.Lookup) string {
	v, _ := env(EnvNamespace)
	return v
}
