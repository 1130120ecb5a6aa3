package spaces

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/digitalocean/godo"

	"github.com/fediops/fediops/doapi"
)

// TTLs are the cache lifetimes (seconds) DigitalOcean's CDN accepts.
var TTLs = []uint32{60, 600, 3600, 86400, 604800}

// DefaultTTL is the TTL of endpoints this package creates when none is set.
const DefaultTTL uint32 = 3600

// FlushLimit is the number of paths DigitalOcean purges per request.
const FlushLimit = 50

// ErrBadTTL is returned for a TTL that is not one of TTLs.
var ErrBadTTL = errors.New("CDN TTL must be one of 60, 600, 3600, 86400, 604800")

// CDNConfig says what the CDN endpoint in front of a Space should look like.
type CDNConfig struct {
	// Origin is the Space, "<bucket>.<region>.digitaloceanspaces.com"
	// (Config.Origin). Required.
	Origin string
	// CustomDomain is the alias host (S3_ALIAS_HOST) the endpoint answers
	// for; "" leaves the endpoint's domain alone.
	CustomDomain string
	// CertificateID is the DO certificate for CustomDomain. It is needed
	// to create the endpoint or to give it CustomDomain; "" keeps the
	// certificate of an endpoint that already serves CustomDomain (Plan
	// returns a *ConfigError naming CertificateID when one is needed).
	CertificateID string
	// TTL in seconds, one of TTLs; 0 = DefaultTTL for a new endpoint and
	// no change for an existing one.
	TTL uint32
	// FlushInterval is the pause between two flush requests; DO purges 50
	// files per 20 s. 0 = 20 s.
	FlushInterval time.Duration
	// MaxRetries is how often a call answered 429 is retried after waiting
	// for Retry-After (or the rate-limit reset); 0 = 5.
	MaxRetries int
	// Wait pauses for d or until ctx ends; nil uses a timer. Tests set it to
	// record waits instead of sleeping.
	Wait   func(ctx context.Context, d time.Duration) error
	Logger *slog.Logger // nil = discard
}

// CDN manages one Space's CDN endpoint through godo's CDNService.
type CDN struct {
	svc godo.CDNService
	cfg CDNConfig
}

// NewCDN checks cfg and returns a CDN for svc (a godo.Client's CDNs).
func NewCDN(svc godo.CDNService, cfg CDNConfig) (*CDN, error) {
	e := &ConfigError{}
	if cfg.Origin == "" {
		e.add("Origin", "missing")
	} else if !strings.HasSuffix(cfg.Origin, ".digitaloceanspaces.com") || strings.Contains(cfg.Origin, "/") {
		e.add("Origin", "%q is not <bucket>.<region>.digitaloceanspaces.com", cfg.Origin)
	}
	if strings.Contains(cfg.CustomDomain, "/") {
		e.add("CustomDomain", "%q must be a bare host name", cfg.CustomDomain)
	}
	if cfg.TTL != 0 && !slices.Contains(TTLs, cfg.TTL) {
		e.add("TTL", "%d: %v", cfg.TTL, ErrBadTTL)
	}
	if len(e.Problems) > 0 {
		return nil, e
	}
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = 20 * time.Second
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = 5
	}
	if cfg.Wait == nil {
		cfg.Wait = sleep
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &CDN{svc: svc, cfg: cfg}, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// call runs f, retrying after the wait a 429 asks for (doapi.RetryAfter).
func (c *CDN) call(ctx context.Context, op string, f func() (*godo.Response, error)) error {
	op = "cdn " + op
	for attempt := 0; ; attempt++ {
		resp, err := f()
		if err == nil {
			return nil
		}
		if doapi.Status(err) != http.StatusTooManyRequests || attempt >= c.cfg.MaxRetries {
			return doapi.Wrap(op, err)
		}
		d := doapi.RetryAfter(resp, 10*time.Second)
		c.cfg.Logger.WarnContext(ctx, "DigitalOcean API rate limit", "op", op, "wait", d)
		if err := c.cfg.Wait(ctx, d); err != nil {
			return fmt.Errorf("%s: waiting out the rate limit: %w", op, err)
		}
	}
}

// Find returns the endpoint whose origin is cfg.Origin, or nil.
func (c *CDN) Find(ctx context.Context) (*godo.CDN, error) {
	return findEndpoint(ctx, c.svc, c.cfg.Origin, c)
}

func findEndpoint(ctx context.Context, svc godo.CDNService, origin string, c *CDN) (*godo.CDN, error) {
	if c == nil {
		c = &CDN{svc: svc, cfg: CDNConfig{MaxRetries: 5, Wait: sleep, Logger: slog.New(slog.DiscardHandler)}}
	}
	eps, err := doapi.All(ctx, func(ctx context.Context, o *godo.ListOptions) (eps []godo.CDN, resp *godo.Response, err error) {
		err = c.call(ctx, "list endpoints", func() (*godo.Response, error) {
			eps, resp, err = svc.List(ctx, o)
			return resp, err
		})
		return eps, resp, err
	})
	if err != nil {
		return nil, err
	}
	for i := range eps {
		if strings.EqualFold(eps[i].Origin, origin) {
			return &eps[i], nil
		}
	}
	return nil, nil
}

// Step is one change a Plan would make.
type Step struct {
	Action string // "create", "update-custom-domain", "update-ttl"
	Detail string
}

// Plan is what Apply would do to bring the endpoint to the CDNConfig. An
// empty Steps means nothing to do.
type Plan struct {
	Origin  string
	Current *godo.CDN // nil when there is no endpoint yet
	Steps   []Step
	cdn     *CDN
	wantTTL uint32
}

// String lists the steps, one a line, for a dry run.
func (p *Plan) String() string {
	if len(p.Steps) == 0 {
		return fmt.Sprintf("cdn %s: up to date", p.Origin)
	}
	var b strings.Builder
	for _, s := range p.Steps {
		fmt.Fprintf(&b, "cdn %s: %s: %s\n", p.Origin, s.Action, s.Detail)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// Plan reads the current endpoint and lists the steps that would make it
// match the CDNConfig, changing nothing.
func (c *CDN) Plan(ctx context.Context) (*Plan, error) {
	cur, err := c.Find(ctx)
	if err != nil {
		return nil, err
	}
	p := &Plan{Origin: c.cfg.Origin, Current: cur, cdn: c, wantTTL: c.cfg.TTL}
	domain, cert := c.cfg.CustomDomain, c.cfg.CertificateID
	if domain != "" && cert == "" && (cur == nil || !strings.EqualFold(cur.CustomDomain, domain)) {
		e := &ConfigError{}
		if cur == nil {
			e.add("CertificateID", "missing for custom domain %s: the endpoint of %s does not exist yet", domain, c.cfg.Origin)
		} else {
			e.add("CertificateID", "missing for custom domain %s: the endpoint of %s serves %q", domain, c.cfg.Origin, cur.CustomDomain)
		}
		return nil, e
	}
	if cur == nil {
		if p.wantTTL == 0 {
			p.wantTTL = DefaultTTL
		}
		d := fmt.Sprintf("origin %s, ttl %d", c.cfg.Origin, p.wantTTL)
		if c.cfg.CustomDomain != "" {
			d += fmt.Sprintf(", custom domain %s, certificate %s", c.cfg.CustomDomain, c.cfg.CertificateID)
		}
		p.Steps = append(p.Steps, Step{"create", d})
		return p, nil
	}
	if domain != "" && (!strings.EqualFold(cur.CustomDomain, domain) || cert != "" && cur.CertificateID != cert) {
		p.Steps = append(p.Steps, Step{"update-custom-domain", fmt.Sprintf("%q (certificate %q) -> %q (certificate %q)",
			cur.CustomDomain, cur.CertificateID, domain, cert)})
	}
	if c.cfg.TTL != 0 && cur.TTL != c.cfg.TTL {
		p.Steps = append(p.Steps, Step{"update-ttl", fmt.Sprintf("%d -> %d", cur.TTL, c.cfg.TTL)})
	}
	return p, nil
}

// Apply carries out the plan's steps and returns the endpoint as it then is.
// A create first looks again for an endpoint of the origin, so that running
// Apply twice never makes two.
func (p *Plan) Apply(ctx context.Context) (*godo.CDN, error) {
	c, ep := p.cdn, p.Current
	for _, s := range p.Steps {
		var err error
		switch s.Action {
		case "create":
			if ep, err = c.Find(ctx); err != nil {
				return nil, err
			}
			if ep != nil {
				p2, err := c.Plan(ctx)
				if err != nil {
					return nil, err
				}
				return p2.Apply(ctx)
			}
			req := &godo.CDNCreateRequest{Origin: p.Origin, TTL: p.wantTTL, CustomDomain: c.cfg.CustomDomain, CertificateID: c.cfg.CertificateID}
			err = c.call(ctx, "create endpoint for "+p.Origin, func() (*godo.Response, error) {
				var resp *godo.Response
				var e error
				ep, resp, e = c.svc.Create(ctx, req)
				return resp, e
			})
		case "update-custom-domain":
			req := &godo.CDNUpdateCustomDomainRequest{CustomDomain: c.cfg.CustomDomain, CertificateID: c.cfg.CertificateID}
			err = c.call(ctx, "set custom domain of "+ep.ID, func() (*godo.Response, error) {
				var resp *godo.Response
				var e error
				ep, resp, e = c.svc.UpdateCustomDomain(ctx, ep.ID, req)
				return resp, e
			})
		case "update-ttl":
			ep, err = c.setTTL(ctx, ep.ID, c.cfg.TTL)
		}
		if err != nil {
			return nil, err
		}
		c.cfg.Logger.InfoContext(ctx, "cdn", "origin", p.Origin, "step", s.Action, "detail", s.Detail)
	}
	return ep, nil
}

// SetTTL sets the endpoint's cache lifetime; ttl must be one of TTLs.
func (c *CDN) SetTTL(ctx context.Context, ttl uint32) (*godo.CDN, error) {
	if !slices.Contains(TTLs, ttl) {
		return nil, fmt.Errorf("%w (got %d)", ErrBadTTL, ttl)
	}
	ep, err := c.Find(ctx)
	if err != nil {
		return nil, err
	}
	if ep == nil {
		return nil, fmt.Errorf("%w: origin %s", ErrNoCDN, c.cfg.Origin)
	}
	return c.setTTL(ctx, ep.ID, ttl)
}

func (c *CDN) setTTL(ctx context.Context, id string, ttl uint32) (*godo.CDN, error) {
	var ep *godo.CDN
	err := c.call(ctx, "set ttl of "+id, func() (*godo.Response, error) {
		var resp *godo.Response
		var e error
		ep, resp, e = c.svc.UpdateTTL(ctx, id, &godo.CDNUpdateTTLRequest{TTL: ttl})
		return resp, e
	})
	return ep, err
}

// Flush purges paths from the endpoint's cache. Paths are keys as the CDN
// serves them ("media_attachments/files/1/original/a.png"); a "*" matches
// any characters ("media_attachments/*"), and "*" alone purges everything,
// making every other path redundant. Leading slashes are dropped and
// duplicates removed; requests carry at most FlushLimit paths each, paced
// FlushInterval apart.
func (c *CDN) Flush(ctx context.Context, paths ...string) error {
	files, err := flushPaths(paths)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return nil
	}
	ep, err := c.Find(ctx)
	if err != nil {
		return err
	}
	if ep == nil {
		return fmt.Errorf("%w: origin %s", ErrNoCDN, c.cfg.Origin)
	}
	for i := 0; i < len(files); i += FlushLimit {
		if i > 0 {
			if err := c.cfg.Wait(ctx, c.cfg.FlushInterval); err != nil {
				return fmt.Errorf("cdn flush %s: %w", ep.ID, err)
			}
		}
		batch := files[i:min(i+FlushLimit, len(files))]
		if err := c.call(ctx, fmt.Sprintf("flush %d paths from %s", len(batch), ep.ID), func() (*godo.Response, error) {
			return c.svc.FlushCache(ctx, ep.ID, &godo.CDNFlushCacheRequest{Files: batch})
		}); err != nil {
			return err
		}
	}
	return nil
}

func flushPaths(paths []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for i, p := range paths {
		p = strings.TrimLeft(strings.TrimSpace(p), "/")
		if p == "" {
			return nil, fmt.Errorf("cdn flush: path %d is empty", i+1)
		}
		if strings.ContainsAny(p, "?#") {
			return nil, fmt.Errorf("cdn flush: path %q: no query or fragment", p)
		}
		if p == "*" {
			return []string{"*"}, nil
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}
