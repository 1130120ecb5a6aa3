package mastometrics

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/fediops/fediops/tiers/droplets"
)

// The jobs of deploy/prometheus/prometheus.yml; each reads its droplets
// from the file_sd file targets/<job>.json.
const (
	JobWeb       = "mastodon-web"       // Mastodon 4.4+'s collector on web droplets
	JobSidekiq   = "mastodon-sidekiq"   // Mastodon 4.4+'s collector on Sidekiq droplets
	JobStatsD    = "mastodon-statsd"    // statsd_exporter on web and Sidekiq droplets (Mastodon 4.2 and earlier)
	JobStreaming = "mastodon-streaming" // the streaming server's own /metrics
	JobNode      = "node"               // node_exporter on every droplet, with fediops' textfile metrics
	JobTunnel    = "fediops-tunnel"     // the fediops tunnel's -http address
	JobHealth    = "fediops-health"     // `health -prometheus` on one droplet
)

// Jobs lists the jobs in prometheus.yml's order.
var Jobs = []string{JobWeb, JobSidekiq, JobStatsD, JobStreaming, JobNode, JobTunnel, JobHealth}

// The ports the jobs scrape, unless TargetsConfig.Ports says otherwise.
// ExporterPort (9394) is the collector's.
const (
	StatsDExporterPort = 9102 // statsd_exporter --web.listen-address=:9102
	StreamingPort      = 4000 // mastodon-streaming@4000
	NodeExporterPort   = 9100 // node_exporter's default
	TunnelPort         = 9121 // tunnel -http <private IP>:9121
	HealthPort         = 9101 // health -prometheus <private IP>:9101
)

// DefaultMastodon is the release TargetsConfig assumes when none is given.
const DefaultMastodon = "4.4"

// DefaultRoles says what the droplets of the seed's tiers run: web
// droplets Puma, sidekiq droplets Sidekiq, streaming droplets the
// streaming server. Other tiers (proxy, search) get node_exporter only.
var DefaultRoles = map[string]Tier{"web": Web, "sidekiq": Sidekiq, "streaming": Streaming}

// ErrBadTargetsConfig is wrapped by TargetsConfig's errors; the message
// names the field.
var ErrBadTargetsConfig = errors.New("invalid scrape targets configuration")

// ErrUnknownDroplet is returned when TargetsConfig.Health names a droplet
// that none of the tiers lists.
var ErrUnknownDroplet = errors.New("no such droplet in the tiers")

// TargetsConfig says which droplets each job scrapes. Zero values mean the
// documented defaults.
type TargetsConfig struct {
	// Mastodon is the release the droplets run ("4.2", "4.4.3", "v4.5"):
	// 4.4 and later are scraped at their collector (mastodon-web,
	// mastodon-sidekiq), 4.2 and earlier at statsd_exporter
	// (mastodon-statsd); 4.3 sends neither (the files stay empty and a
	// note says why). "" means DefaultMastodon.
	Mastodon string
	// Roles maps a tier (as droplets.Client names it) to what its
	// droplets run; nil means DefaultRoles.
	Roles map[string]Tier
	// StreamingPorts are the PORTs of the mastodon-streaming@PORT units of
	// each streaming droplet; nil means [StreamingPort].
	StreamingPorts []int
	// TunnelRoles are the roles whose droplets run the fediops tunnel
	// (whatever talks to Redis); nil means web, sidekiq and streaming, an
	// empty non-nil slice none.
	TunnelRoles []Tier
	// Health is the name of the droplet that runs `health -prometheus`;
	// "" leaves fediops-health.json empty.
	Health string
	// Ports replaces a job's port (JobNode: 9200); jobs not in it keep
	// theirs. JobStreaming's ports are StreamingPorts.
	Ports map[string]int
}

var defaultPorts = map[string]int{JobWeb: ExporterPort, JobSidekiq: ExporterPort, JobStatsD: StatsDExporterPort,
	JobNode: NodeExporterPort, JobTunnel: TunnelPort, JobHealth: HealthPort}

func (c TargetsConfig) withDefaults() TargetsConfig {
	c.Mastodon = cmp.Or(c.Mastodon, DefaultMastodon)
	if c.Roles == nil {
		c.Roles = DefaultRoles
	}
	if c.StreamingPorts == nil {
		c.StreamingPorts = []int{StreamingPort}
	}
	if c.TunnelRoles == nil {
		c.TunnelRoles = []Tier{Web, Sidekiq, Streaming}
	}
	ports := map[string]int{}
	for job, p := range defaultPorts {
		ports[job] = cmp.Or(c.Ports[job], p)
	}
	c.Ports = ports
	return c
}

// Validate reports the first field that cannot work, without any network
// call.
func (c TargetsConfig) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrBadTargetsConfig, fmt.Sprintf(format, a...))
	}
	if c.Mastodon != "" {
		if _, _, err := ParseRelease(c.Mastodon); err != nil {
			return bad("Mastodon: %v", err)
		}
	}
	for tier, role := range c.Roles {
		if role != Web && role != Sidekiq && role != Streaming {
			return bad("Roles[%q] = %q: %v", tier, role, ErrUnknownTier)
		}
	}
	for _, role := range c.TunnelRoles {
		if role != Web && role != Sidekiq && role != Streaming {
			return bad("TunnelRoles: %q: %v", role, ErrUnknownTier)
		}
	}
	for _, p := range c.StreamingPorts {
		if p < 1 || p > 65535 {
			return bad("StreamingPorts: %d is not a port from 1 to 65535", p)
		}
	}
	if c.StreamingPorts != nil && len(c.StreamingPorts) == 0 {
		return bad("StreamingPorts: empty (give at least one, or leave it nil for %d)", StreamingPort)
	}
	for job, p := range c.Ports {
		if _, ok := defaultPorts[job]; !ok {
			return bad("Ports[%q]: not a job with one port (%s)", job, strings.Join(slices.DeleteFunc(slices.Clone(Jobs),
				func(j string) bool { return j == JobStreaming }), ", "))
		}
		if p < 1 || p > 65535 {
			return bad("Ports[%q]: %d is not a port from 1 to 65535", job, p)
		}
	}
	return nil
}

// ParseRelease reads a Mastodon release such as "4.2", "4.4.3" or "v4.5.0"
// as its major and minor numbers.
func ParseRelease(s string) (major, minor int, err error) {
	parts := strings.Split(strings.TrimPrefix(strings.TrimSpace(s), "v"), ".")
	if len(parts) >= 2 {
		major, err = strconv.Atoi(parts[0])
		if err == nil {
			minor, err = strconv.Atoi(parts[1])
		}
		if err == nil && major >= 0 && minor >= 0 {
			return major, minor, nil
		}
	}
	return 0, 0, fmt.Errorf("release %q: want a Mastodon release such as 4.2 or 4.4.3", s)
}

// TargetGroup is one group of a file_sd file: one droplet, its addresses
// (private IPv4:port) and its tier, droplet and region labels.
type TargetGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// Targets is what ScrapeTargets found: each job's groups, every job of
// Jobs present (empty when no droplet runs it), and notes on droplets left
// out and files left empty, for the admin.
type Targets struct {
	Jobs  map[string][]TargetGroup
	Notes []string
}

// FindTargets lists every tier's droplets with c (one ListByTag per tier)
// and returns ScrapeTargets of them. cfg is validated first, before any
// API call.
func FindTargets(ctx context.Context, c *droplets.Client, cfg TargetsConfig) (Targets, error) {
	if err := cfg.Validate(); err != nil {
		return Targets{}, err
	}
	var all []droplets.Droplet
	for _, tier := range c.Tiers() {
		ds, err := c.Droplets(ctx, tier)
		if err != nil {
			return Targets{}, fmt.Errorf("scrape targets: %w", err)
		}
		all = append(all, ds...)
	}
	return ScrapeTargets(all, cfg)
}

// member is one droplet with the tiers it was found in.
type member struct {
	d     droplets.Droplet
	tiers []string // sorted: the droplet's roles first (web, sidekiq, streaming), then by name
	roles map[Tier]string
}

// ScrapeTargets lays droplets (as droplets.Client lists them, one entry per
// tier a droplet is tagged for) out in prometheus.yml's jobs, as its
// header documents:
//
//	mastodon-web        web droplets at the collector (4.4+)
//	mastodon-sidekiq    Sidekiq droplets that are not also web droplets (4.4+)
//	mastodon-statsd     web and Sidekiq droplets at statsd_exporter (4.2 and earlier)
//	mastodon-streaming  streaming droplets, one address per StreamingPorts
//	node                every droplet
//	fediops-tunnel      the droplets of TunnelRoles
//	fediops-health      the droplet Health names
//
// Each droplet is one group: "<private IPv4>:<port>" and the labels tier
// (its tier for the job; in node, fediops-tunnel and fediops-health its
// first tier, web before sidekiq before streaming before the others),
// droplet (its name) and region. A droplet without a private IPv4 address,
// or neither active nor new, is left out with a note. Groups are sorted by
// droplet name, so that the same inventory gives the same files.
func ScrapeTargets(ds []droplets.Droplet, cfg TargetsConfig) (Targets, error) {
	if err := cfg.Validate(); err != nil {
		return Targets{}, err
	}
	cfg = cfg.withDefaults()
	major, minor, _ := ParseRelease(cfg.Mastodon)
	out := Targets{Jobs: map[string][]TargetGroup{}}
	for _, job := range Jobs {
		out.Jobs[job] = []TargetGroup{}
	}

	// One member per droplet, by ID, with every tier it was found in.
	byID := map[int]*member{}
	var order []*member
	for _, d := range ds {
		m := byID[d.ID]
		if m == nil {
			m = &member{d: d, roles: map[Tier]string{}}
			byID[d.ID] = m
			order = append(order, m)
		}
		if !slices.Contains(m.tiers, d.Tier) {
			m.tiers = append(m.tiers, d.Tier)
		}
		if role, ok := cfg.Roles[d.Tier]; ok && m.roles[role] == "" {
			m.roles[role] = d.Tier
		}
	}
	rank := func(tier string) int {
		switch cfg.Roles[tier] {
		case Web:
			return 0
		case Sidekiq:
			return 1
		case Streaming:
			return 2
		}
		return 3
	}
	slices.SortFunc(order, func(a, b *member) int {
		return cmp.Or(strings.Compare(a.d.Name, b.d.Name), cmp.Compare(a.d.ID, b.d.ID))
	})

	healthFound := false
	for _, m := range order {
		slices.SortFunc(m.tiers, func(a, b string) int { return cmp.Or(cmp.Compare(rank(a), rank(b)), strings.Compare(a, b)) })
		d := m.d
		if d.Name == cfg.Health && cfg.Health != "" {
			healthFound = true
		}
		if d.PrivateIP == "" {
			out.Notes = append(out.Notes, fmt.Sprintf("droplet %s (tier %s) has no private IPv4 address: left out (Prometheus scrapes over the VPC)",
				d.Name, strings.Join(m.tiers, ", ")))
			continue
		}
		if d.Status != "active" && d.Status != "new" {
			out.Notes = append(out.Notes, fmt.Sprintf("droplet %s (tier %s) is %s: left out", d.Name, strings.Join(m.tiers, ", "), cmp.Or(d.Status, "of no status")))
			continue
		}
		group := func(tier string, ports ...int) TargetGroup {
			g := TargetGroup{Labels: map[string]string{"tier": tier, "droplet": d.Name}}
			if d.Region != "" {
				g.Labels["region"] = d.Region
			}
			for _, p := range ports {
				g.Targets = append(g.Targets, net.JoinHostPort(d.PrivateIP, strconv.Itoa(p)))
			}
			return g
		}
		add := func(job, tier string, ports ...int) { out.Jobs[job] = append(out.Jobs[job], group(tier, ports...)) }
		primary := m.tiers[0]
		web, sidekiq := m.roles[Web], m.roles[Sidekiq]
		switch {
		case major > 4 || major == 4 && minor >= 4:
			if web != "" {
				add(JobWeb, web, cfg.Ports[JobWeb]) // its Sidekiq metrics come along
			} else if sidekiq != "" {
				add(JobSidekiq, sidekiq, cfg.Ports[JobSidekiq])
			}
		case major == 4 && minor == 3:
		default:
			if web != "" || sidekiq != "" {
				add(JobStatsD, cmp.Or(web, sidekiq), cfg.Ports[JobStatsD])
			}
		}
		if st := m.roles[Streaming]; st != "" {
			add(JobStreaming, st, cfg.StreamingPorts...)
		}
		add(JobNode, primary, cfg.Ports[JobNode])
		if slices.ContainsFunc(cfg.TunnelRoles, func(r Tier) bool { return m.roles[r] != "" }) {
			add(JobTunnel, primary, cfg.Ports[JobTunnel])
		}
		if d.Name == cfg.Health && cfg.Health != "" {
			add(JobHealth, primary, cfg.Ports[JobHealth])
		}
	}
	if major == 4 && minor == 3 {
		out.Notes = append(out.Notes, fmt.Sprintf("Mastodon %s sends neither StatsD (removed in 4.3) nor Prometheus metrics (4.4 and later): %s, %s and %s stay empty",
			cfg.Mastodon, JobWeb, JobSidekiq, JobStatsD))
	}
	if cfg.Health != "" && !healthFound {
		return Targets{}, fmt.Errorf("health droplet %q: %w", cfg.Health, ErrUnknownDroplet)
	}
	return out, nil
}

// Write writes each job's file, dir/<job>.json, as prometheus.yml reads
// it, and returns the files whose content changed. Each is written
// atomically (a temporary file in dir whose name Prometheus does not
// read, fsync, rename, mode 0644), so that Prometheus never reads half a
// file; a file already holding the same groups is left alone.
func (t Targets) Write(dir string) (changed []string, err error) {
	for _, job := range Jobs {
		groups := t.Jobs[job]
		if groups == nil {
			groups = []TargetGroup{}
		}
		b, err := json.MarshalIndent(groups, "", "  ")
		if err != nil {
			return changed, fmt.Errorf("targets %s: %w", job, err)
		}
		path := filepath.Join(dir, job+".json")
		ok, err := writeIfChanged(path, append(b, '\n'))
		if err != nil {
			return changed, fmt.Errorf("write targets %s: %w", path, err)
		}
		if ok {
			changed = append(changed, path)
		}
	}
	return changed, nil
}

// writeIfChanged replaces path with data through a temporary file and a
// rename, unless it already holds data.
func writeIfChanged(path string, data []byte) (bool, error) {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp.Name()) // nothing is left to remove after the rename
	_, err = tmp.Write(data)
	for _, step := range []func() error{func() error { return tmp.Chmod(0o644) }, tmp.Sync, tmp.Close} {
		if err == nil {
			err = step()
		}
	}
	if err != nil {
		tmp.Close()
		return false, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return false, err
	}
	if d, err := os.Open(dir); err == nil { // the rename itself, durable
		d.Sync()
		d.Close()
	}
	return true, nil
}
