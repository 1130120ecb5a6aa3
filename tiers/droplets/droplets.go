package droplets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/digitalocean/godo"

	"github.com/fediops/fediops/doapi"
)

// DefaultTags maps the seed's tiers to the droplet tags that find them.
// The seed runs web and streaming on the same droplets; give those both tags.
var DefaultTags = map[string]string{
	"web":       "web",
	"streaming": "streaming",
	"sidekiq":   "sidekiq",
	"proxy":     "proxy",
	"search":    "search",
}

// DefaultLBTiers are the tiers whose droplets sit behind the load balancer:
// the seed's load balancer sends traffic to its nginx proxies; setups
// without proxies put the web droplets behind it.
var DefaultLBTiers = []string{"web", "proxy"}

// Sentinel errors callers branch on.
var (
	ErrUnknownTier    = errors.New("unknown tier")
	ErrNoDroplets     = errors.New("no droplets in tier")
	ErrNoSnapshot     = errors.New("no snapshot for tier")
	ErrActionErrored  = errors.New("action errored")
	ErrActionTimeout  = errors.New("action did not complete in time")
	ErrSnapshotRegion = errors.New("snapshot not available in region")
)

// Config configures a Client. Zero values mean the documented defaults.
type Config struct {
	// API is how to reach DigitalOcean (doapi.Options: the token, the base
	// URL, retries of 429 and 5xx honouring Retry-After, the per-request
	// timeout). Droplet creates are not retried by the transport (a POST
	// may have gone through): createDroplet retries them itself, after
	// checking the name is still free, within API.Retries.
	API doapi.Options

	// Tags maps a tier to the tag its droplets carry; nil means DefaultTags.
	Tags map[string]string
	// LoadBalancerID is the load balancer of the LBTiers; "" skips it.
	LoadBalancerID string
	// LBTiers are the tiers attached to the load balancer; nil means
	// DefaultLBTiers.
	LBTiers []string

	// PollInterval is the pause between polls of an action or a new
	// droplet; 0 means 5 s.
	PollInterval time.Duration
	// Logger receives what the client does; nil discards it.
	Logger *slog.Logger
	// Now is the clock for snapshot names; nil means time.Now.
	Now func() time.Time
}

// Client reads and changes droplet tiers through godo.
type Client struct {
	cfg Config
	do  *godo.Client
	// once is do without transport retries: Droplets.Create goes through
	// it, retried by createDroplet only after checking the name is free.
	once *godo.Client
	log  *slog.Logger
}

// NewClient returns a Client for cfg, its godo clients made by doapi.New.
func NewClient(cfg Config) (*Client, error) {
	do, err := doapi.New(cfg.API)
	if err != nil {
		return nil, err
	}
	plain := cfg.API
	plain.Retries = -1
	once, err := doapi.New(plain)
	if err != nil {
		return nil, err
	}
	c := NewClientWith(do, cfg)
	c.once = once
	return c, nil
}

// NewClientWith wraps an existing godo client; cfg.API but its retry
// settings is ignored. Droplet creates go through do as well, so give it
// no transport retries or accept that a retried POST may create a droplet
// twice.
func NewClientWith(do *godo.Client, cfg Config) *Client {
	if cfg.Tags == nil {
		cfg.Tags = DefaultTags
	}
	if cfg.LBTiers == nil {
		cfg.LBTiers = DefaultLBTiers
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.API = cfg.API.WithDefaults()
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{cfg: cfg, do: do, once: do, log: log}
}

// Godo returns the underlying godo client.
func (c *Client) Godo() *godo.Client { return c.do }

// Tag returns the tag of tier.
func (c *Client) Tag(tier string) (string, error) {
	tag, ok := c.cfg.Tags[tier]
	if !ok || tag == "" {
		return "", fmt.Errorf("tier %q: %w (known: %s)", tier, ErrUnknownTier, strings.Join(c.Tiers(), ", "))
	}
	return tag, nil
}

// Tiers lists the configured tiers, sorted.
func (c *Client) Tiers() []string {
	out := make([]string, 0, len(c.cfg.Tags))
	for t := range c.cfg.Tags {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Droplet is what the tiers need to know about a droplet.
type Droplet struct {
	ID        int       `json:"id"`
	Name      string    `json:"name"`
	Tier      string    `json:"tier"`
	Size      string    `json:"size"`
	Region    string    `json:"region"`
	Status    string    `json:"status"`
	PrivateIP string    `json:"private_ip,omitempty"`
	PublicIP  string    `json:"public_ip,omitempty"`
	VPCUUID   string    `json:"vpc_uuid,omitempty"`
	VCPUs     int       `json:"vcpus"`
	MemoryMiB int       `json:"memory_mib"`
	Tags      []string  `json:"tags,omitempty"`
	Features  []string  `json:"features,omitempty"`
	Created   time.Time `json:"created"`
}

func dropletFrom(tier string, d godo.Droplet) Droplet {
	out := Droplet{ID: d.ID, Name: d.Name, Tier: tier, Size: d.SizeSlug, Status: d.Status, VPCUUID: d.VPCUUID,
		VCPUs: d.Vcpus, MemoryMiB: d.Memory, Tags: d.Tags, Features: d.Features}
	if out.Size == "" && d.Size != nil {
		out.Size = d.Size.Slug
	}
	if d.Region != nil {
		out.Region = d.Region.Slug
	}
	out.PrivateIP, _ = d.PrivateIPv4()
	out.PublicIP, _ = d.PublicIPv4()
	out.Created, _ = time.Parse(time.RFC3339, d.Created)
	return out
}

// Droplets lists the droplets of tier (by its tag), sorted by name.
func (c *Client) Droplets(ctx context.Context, tier string) ([]Droplet, error) {
	tag, err := c.Tag(tier)
	if err != nil {
		return nil, err
	}
	ds, err := doapi.All(ctx, func(ctx context.Context, o *godo.ListOptions) ([]godo.Droplet, *godo.Response, error) {
		return c.do.Droplets.ListByTag(ctx, tag, o)
	})
	if err != nil {
		return nil, doapi.Wrap("list droplets tagged "+tag, err)
	}
	out := make([]Droplet, 0, len(ds))
	for _, d := range ds {
		out = append(out, dropletFrom(tier, d))
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Name < out[j].Name || out[i].Name == out[j].Name && out[i].ID < out[j].ID
	})
	return out, nil
}

// Snapshot is a droplet snapshot attributed to a tier.
type Snapshot struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Tier       string    `json:"tier"`
	ResourceID string    `json:"resource_id"`
	Regions    []string  `json:"regions"`
	SizeGB     float64   `json:"size_gb"`
	MinDiskGB  int       `json:"min_disk_gb"`
	Created    time.Time `json:"created"`
}

// snapshotLayout is the time part of "<tier>-YYYYMMDD-HHMM".
const snapshotLayout = "20060102-1504"

// SnapshotName is the name a refresh gives tier's snapshot taken at t:
// "<tier>-YYYYMMDD-HHMM" in UTC.
func SnapshotName(tier string, t time.Time) string {
	return tier + "-" + t.UTC().Format(snapshotLayout)
}

// ParseSnapshotName reports whether name is tier's snapshot by the naming
// convention, and when it was taken. "web-20260101-0400" belongs to "web";
// "web-streaming-20260101-0400" does not.
func ParseSnapshotName(tier, name string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(name, tier+"-")
	if !ok || len(rest) != len(snapshotLayout) {
		return time.Time{}, false
	}
	t, err := time.Parse(snapshotLayout, rest)
	return t, err == nil
}

// belongs reports whether s is tier's snapshot: by name, or by carrying
// the tier's tag.
func (c *Client) belongs(tier string, s godo.Snapshot) bool {
	if _, ok := ParseSnapshotName(tier, s.Name); ok {
		return true
	}
	return slices.Contains(s.Tags, c.cfg.Tags[tier])
}

func snapshotFrom(tier string, s godo.Snapshot) Snapshot {
	out := Snapshot{ID: s.ID, Name: s.Name, Tier: tier, ResourceID: s.ResourceID, Regions: s.Regions,
		SizeGB: s.SizeGigaBytes, MinDiskGB: s.MinDiskSize}
	var err error
	if out.Created, err = time.Parse(time.RFC3339, s.Created); err != nil {
		out.Created, _ = ParseSnapshotName(tier, s.Name)
	}
	return out
}

func (c *Client) allSnapshots(ctx context.Context) ([]godo.Snapshot, error) {
	ss, err := doapi.All(ctx, c.do.Snapshots.ListDroplet)
	if err != nil {
		return nil, doapi.Wrap("list droplet snapshots", err)
	}
	return ss, nil
}

func (c *Client) tierSnapshots(tier string, all []godo.Snapshot) []Snapshot {
	var out []Snapshot
	for _, s := range all {
		if c.belongs(tier, s) {
			out = append(out, snapshotFrom(tier, s))
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].Name > out[j].Name
	})
	return out
}

// Snapshots lists tier's snapshots, newest first.
func (c *Client) Snapshots(ctx context.Context, tier string) ([]Snapshot, error) {
	if _, err := c.Tag(tier); err != nil {
		return nil, err
	}
	all, err := c.allSnapshots(ctx)
	if err != nil {
		return nil, err
	}
	return c.tierSnapshots(tier, all), nil
}

// NewestSnapshot returns tier's newest snapshot or ErrNoSnapshot.
func (c *Client) NewestSnapshot(ctx context.Context, tier string) (Snapshot, error) {
	ss, err := c.Snapshots(ctx, tier)
	if err != nil {
		return Snapshot{}, err
	}
	if len(ss) == 0 {
		return Snapshot{}, fmt.Errorf("%s: %w", tier, ErrNoSnapshot)
	}
	return ss[0], nil
}

// TierInventory is one tier's droplets and snapshots.
type TierInventory struct {
	Tier      string     `json:"tier"`
	Tag       string     `json:"tag"`
	Droplets  []Droplet  `json:"droplets"`
	Snapshots []Snapshot `json:"snapshots"`
	// Newest is the newest snapshot, nil when the tier has none.
	Newest *Snapshot `json:"newest,omitempty"`
}

// Inventory lists the droplets and snapshots of the given tiers (all
// configured tiers when none are given), listing snapshots once.
func (c *Client) Inventory(ctx context.Context, tiers ...string) ([]TierInventory, error) {
	if len(tiers) == 0 {
		tiers = c.Tiers()
	}
	all, err := c.allSnapshots(ctx)
	if err != nil {
		return nil, err
	}
	var out []TierInventory
	for _, t := range tiers {
		tag, err := c.Tag(t)
		if err != nil {
			return nil, err
		}
		ds, err := c.Droplets(ctx, t)
		if err != nil {
			return nil, err
		}
		inv := TierInventory{Tier: t, Tag: tag, Droplets: ds, Snapshots: c.tierSnapshots(t, all)}
		if len(inv.Snapshots) > 0 {
			inv.Newest = &inv.Snapshots[0]
		}
		out = append(out, inv)
	}
	return out, nil
}
