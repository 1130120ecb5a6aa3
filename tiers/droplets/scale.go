package droplets

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/digitalocean/godo"

	"github.com/fediops/fediops/doapi"
)

// ErrDropletName is wrapped by the error for a droplet name DO refuses.
var ErrDropletName = errors.New("not a valid droplet name")

// dropletName is DO's rule for droplet names (the name pattern of its API
// specification): letters, digits, "." and "-", ending with a letter or
// digit, at most 255 characters.
var dropletName = regexp.MustCompile(`^[a-zA-Z0-9]?[a-z0-9A-Z.\-]*[a-z0-9A-Z]$`)

// CheckDropletName returns nil when DO accepts name for a droplet, else an
// error wrapping ErrDropletName that says why.
func CheckDropletName(name string) error {
	if len(name) > 255 || !dropletName.MatchString(name) {
		return fmt.Errorf("droplet name %q: %w: use letters, digits, '.' and '-', ending with a letter or digit, at most 255", name, ErrDropletName)
	}
	return nil
}

// Hostname maps a tier's name to the first part of valid droplet names:
// every character DO refuses ("_", spaces...) becomes "-", runs of "-"
// become one, and "-" or "." at either end go ("sidekiq_push" gives
// "sidekiq-push"). It is "" when nothing valid is left.
func Hostname(tier string) string {
	var b strings.Builder
	for _, r := range tier {
		switch {
		case r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '.'):
			b.WriteRune(r)
		case !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-.")
}

// ScaleOut asks for droplets of a tier made from its newest snapshot.
type ScaleOut struct {
	// Tier is the tier to grow. Required.
	Tier string
	// Count is the number of numbered droplets "<host>-01" ... "<host>-NN"
	// the tier should have, <host> being Hostname(Tier) ("sidekiq_push"
	// gives "sidekiq-push-01": DO refuses "_" in a droplet name): existing
	// names are skipped, so running the same request twice creates nothing
	// the second time. Ignored when Names is set.
	Count int
	// Names are explicit droplet names (the seed names them after Star Trek
	// characters); existing ones are skipped. Each must be a name DO
	// accepts (CheckDropletName).
	Names []string
	// SSHKeys are key fingerprints or numeric IDs. DigitalOcean does not
	// report the keys of an existing droplet, so they cannot be copied from
	// it; the snapshot already holds the source's authorized_keys.
	SSHKeys []string
	// TemplateID is the droplet whose size, region, VPC, tags and features
	// the new ones copy; 0 means the tier's first active droplet.
	TemplateID int
	// Size overrides the template's size slug.
	Size string
}

// Plan is what Apply will do: create droplets and attach them to the load
// balancer. Build it with Client.PlanScaleOut; print it with String.
type Plan struct {
	Tier     string   `json:"tier"`
	Tag      string   `json:"tag"`
	Snapshot Snapshot `json:"snapshot"`
	Template Droplet  `json:"template"`
	// Create are the requests for the droplets that do not exist yet.
	Create []godo.DropletCreateRequest `json:"create"`
	// Existing are the requested names that already exist (skipped).
	Existing []string `json:"existing,omitempty"`
	// LoadBalancerID is set when the tier belongs behind the load balancer.
	LoadBalancerID string `json:"load_balancer_id,omitempty"`
	// LBTag is the tag the load balancer targets; when set, the new
	// droplets carry it and need no AddDroplets call (DigitalOcean answers
	// 422 to AddDroplets on a tag-targeted load balancer).
	LBTag string `json:"lb_tag,omitempty"`
}

// String describes the plan, one step a line.
func (p *Plan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "tier %s (tag %s) from snapshot %s (%s, %s), template %s\n", p.Tier, p.Tag, p.Snapshot.Name, p.Snapshot.ID,
		p.Snapshot.Created.UTC().Format(time.RFC3339), p.Template.Name)
	for _, n := range p.Existing {
		fmt.Fprintf(&b, "exists: %s\n", n)
	}
	for _, r := range p.Create {
		fmt.Fprintf(&b, "create: %s size %s region %s vpc %s tags %s\n", r.Name, r.Size, r.Region, r.VPCUUID, strings.Join(r.Tags, ","))
	}
	switch {
	case p.LoadBalancerID == "" || len(p.Create) == 0:
	case p.LBTag != "":
		fmt.Fprintf(&b, "load balancer %s: targets tag %s, attached by tag\n", p.LoadBalancerID, p.LBTag)
	default:
		fmt.Fprintf(&b, "load balancer %s: add %d droplets\n", p.LoadBalancerID, len(p.Create))
	}
	return b.String()
}

// PlanScaleOut reads the tier (droplets, newest snapshot, load balancer)
// and returns the plan; it changes nothing.
func (c *Client) PlanScaleOut(ctx context.Context, req ScaleOut) (*Plan, error) {
	tag, err := c.Tag(req.Tier)
	if err != nil {
		return nil, err
	}
	names := req.Names
	if len(names) == 0 {
		if req.Count < 1 {
			return nil, fmt.Errorf("ScaleOut.Count: %d, want at least 1 (or Names)", req.Count)
		}
		host := Hostname(req.Tier)
		if host == "" {
			return nil, fmt.Errorf("scale out %s: %w: no letter or digit to name its droplets after (give Names)", req.Tier, ErrDropletName)
		}
		for i := 1; i <= req.Count; i++ {
			names = append(names, fmt.Sprintf("%s-%02d", host, i))
		}
	}
	for _, n := range names {
		if err := CheckDropletName(n); err != nil {
			return nil, fmt.Errorf("scale out %s: %w", req.Tier, err)
		}
	}
	keys := make([]godo.DropletCreateSSHKey, 0, len(req.SSHKeys))
	for _, k := range req.SSHKeys {
		if id, err := strconv.Atoi(k); err == nil {
			keys = append(keys, godo.DropletCreateSSHKey{ID: id})
		} else {
			keys = append(keys, godo.DropletCreateSSHKey{Fingerprint: k})
		}
	}
	ds, err := c.Droplets(ctx, req.Tier)
	if err != nil {
		return nil, err
	}
	p := &Plan{Tier: req.Tier, Tag: tag}
	found := false
	for _, d := range ds {
		if (req.TemplateID != 0 && d.ID == req.TemplateID) || (req.TemplateID == 0 && d.Status == "active") {
			p.Template, found = d, true
			break
		}
	}
	if !found {
		return nil, fmt.Errorf("scale out %s: no template droplet (TemplateID %d): %w", req.Tier, req.TemplateID, ErrNoDroplets)
	}
	if p.Snapshot, err = c.NewestSnapshot(ctx, req.Tier); err != nil {
		return nil, err
	}
	if !slices.Contains(p.Snapshot.Regions, p.Template.Region) {
		return nil, fmt.Errorf("scale out %s: snapshot %s is in %v, not %s (transfer it first): %w",
			req.Tier, p.Snapshot.Name, p.Snapshot.Regions, p.Template.Region, ErrSnapshotRegion)
	}
	image, err := strconv.Atoi(p.Snapshot.ID)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: id %q is not numeric", p.Snapshot.Name, p.Snapshot.ID)
	}
	tags := slices.Clone(p.Template.Tags)
	if !slices.Contains(tags, tag) {
		tags = append(tags, tag)
	}
	if c.cfg.LoadBalancerID != "" && slices.Contains(c.cfg.LBTiers, req.Tier) {
		p.LoadBalancerID = c.cfg.LoadBalancerID
		lb, _, err := c.do.LoadBalancers.Get(ctx, p.LoadBalancerID)
		if err != nil {
			return nil, doapi.Wrap(fmt.Sprintf("get load balancer %s", p.LoadBalancerID), err)
		}
		if p.LBTag = lb.Tag; p.LBTag != "" && !slices.Contains(tags, p.LBTag) {
			tags = append(tags, p.LBTag)
		}
	}
	exists := map[string]bool{}
	for _, d := range ds {
		exists[d.Name] = true
	}
	size := p.Template.Size
	if req.Size != "" {
		size = req.Size
	}
	for _, n := range names {
		if exists[n] {
			p.Existing = append(p.Existing, n)
			continue
		}
		p.Create = append(p.Create, godo.DropletCreateRequest{
			Name:    n,
			Region:  p.Template.Region,
			Size:    size,
			Image:   godo.DropletCreateImage{ID: image},
			SSHKeys: keys,
			Tags:    tags,
			// The template's VPC places the droplet in its private network;
			// without one DO uses the region's default VPC. The deprecated
			// private_networking is left unset.
			VPCUUID:    p.Template.VPCUUID,
			Monitoring: slices.Contains(p.Template.Features, "monitoring"),
			IPv6:       slices.Contains(p.Template.Features, "ipv6"),
			Backups:    slices.Contains(p.Template.Features, "backups"),
		})
	}
	return p, nil
}

// ApplyOptions controls Apply. The zero value is a dry run.
type ApplyOptions struct {
	// Execute makes the changes; without it Apply only reports them.
	Execute bool
	// WaitActive waits up to this long for each new droplet to become
	// active (polling Droplets.Get) before attaching; 0 does not wait.
	WaitActive time.Duration
}

// ApplyResult is what Apply did (or, in a dry run, would do).
type ApplyResult struct {
	DryRun  bool      `json:"dry_run"`
	Created []Droplet `json:"created,omitempty"`
	// Skipped are names that existed when Apply listed the tier.
	Skipped []string `json:"skipped,omitempty"`
	// Attached are the droplet IDs added to the load balancer.
	Attached []int `json:"attached,omitempty"`
	// AttachedByTag is the load balancer's tag when tagging attached them.
	AttachedByTag string `json:"attached_by_tag,omitempty"`
	// Steps describe each step, done or planned.
	Steps []string `json:"steps"`
}

// Apply carries out p. It lists the tier again first and skips names that
// exist by now, so an interrupted Apply can simply be run again. A create
// that failed with a 5xx or a transport error is checked by listing again
// (the API may have created it). Partial results come back with the error.
func (c *Client) Apply(ctx context.Context, p *Plan, opts ApplyOptions) (*ApplyResult, error) {
	res := &ApplyResult{DryRun: !opts.Execute}
	if !opts.Execute {
		res.Skipped = append(res.Skipped, p.Existing...)
		for _, r := range p.Create {
			res.Steps = append(res.Steps, fmt.Sprintf("would create %s (%s, %s, image %d)", r.Name, r.Size, r.Region, r.Image.ID))
		}
		if p.LoadBalancerID != "" && len(p.Create) > 0 {
			if p.LBTag != "" {
				res.Steps = append(res.Steps, fmt.Sprintf("would attach by tag %s to load balancer %s", p.LBTag, p.LoadBalancerID))
			} else {
				res.Steps = append(res.Steps, fmt.Sprintf("would add %d droplets to load balancer %s", len(p.Create), p.LoadBalancerID))
			}
		}
		return res, nil
	}
	byName := func() (map[string]Droplet, error) {
		ds, err := c.Droplets(ctx, p.Tier)
		if err != nil {
			return nil, err
		}
		m := make(map[string]Droplet, len(ds))
		for _, d := range ds {
			m[d.Name] = d
		}
		return m, nil
	}
	have, err := byName()
	if err != nil {
		return res, err
	}
	res.Skipped = append(res.Skipped, p.Existing...)
	for _, r := range p.Create {
		if d, ok := have[r.Name]; ok {
			res.Skipped = append(res.Skipped, r.Name)
			res.Steps = append(res.Steps, fmt.Sprintf("exists: %s (%d)", r.Name, d.ID))
			continue
		}
		c.log.InfoContext(ctx, "create droplet", "tier", p.Tier, "name", r.Name, "size", r.Size, "region", r.Region, "image", r.Image.ID)
		nd, note, err := c.createDroplet(ctx, p.Tier, &r)
		if err != nil {
			return res, err
		}
		res.Created = append(res.Created, nd)
		res.Steps = append(res.Steps, fmt.Sprintf("created %s (%d)%s", nd.Name, nd.ID, note))
	}
	if opts.WaitActive > 0 {
		for i, d := range res.Created {
			nd, err := c.waitActive(ctx, p.Tier, d.ID, opts.WaitActive)
			if err != nil {
				return res, err
			}
			res.Created[i] = nd
		}
	}
	if p.LoadBalancerID == "" || len(p.Create) == 0 {
		return res, nil
	}
	if p.LBTag != "" {
		res.AttachedByTag = p.LBTag
		res.Steps = append(res.Steps, fmt.Sprintf("attached by tag %s", p.LBTag))
		return res, nil
	}
	// Attach every droplet the plan meant to create, made now or by an
	// earlier, interrupted Apply, that the load balancer lacks.
	lb, _, err := c.do.LoadBalancers.Get(ctx, p.LoadBalancerID)
	if err != nil {
		return res, doapi.Wrap(fmt.Sprintf("get load balancer %s", p.LoadBalancerID), err)
	}
	if lb.Tag != "" {
		return c.attachedByTag(res, p, lb.Tag, nil)
	}
	mine := map[string]Droplet{}
	for _, d := range res.Created {
		mine[d.Name] = d
	}
	for _, r := range p.Create {
		if d, ok := have[r.Name]; ok {
			mine[r.Name] = d
		}
	}
	var ids []int
	for _, r := range p.Create {
		if d, ok := mine[r.Name]; ok && !slices.Contains(lb.DropletIDs, d.ID) {
			ids = append(ids, d.ID)
		}
	}
	if len(ids) == 0 {
		res.Steps = append(res.Steps, fmt.Sprintf("load balancer %s already has them", p.LoadBalancerID))
		return res, nil
	}
	if _, err := c.do.LoadBalancers.AddDroplets(ctx, p.LoadBalancerID, ids...); err != nil {
		if !doapi.IsStatus(err, http.StatusUnprocessableEntity) {
			return res, doapi.Wrap(fmt.Sprintf("add droplets %v to load balancer %s", ids, p.LoadBalancerID), err)
		}
		// 422: the load balancer targets a tag (since we looked).
		lb, _, gerr := c.do.LoadBalancers.Get(ctx, p.LoadBalancerID)
		if gerr != nil || lb.Tag == "" {
			return res, doapi.Wrap(fmt.Sprintf("add droplets %v to load balancer %s", ids, p.LoadBalancerID), err)
		}
		return c.attachedByTag(res, p, lb.Tag, err)
	}
	res.Attached = ids
	res.Steps = append(res.Steps, fmt.Sprintf("added %v to load balancer %s", ids, p.LoadBalancerID))
	return res, nil
}

// attachedByTag accepts a tag-targeted load balancer when every droplet
// of the plan carries the tag.
func (c *Client) attachedByTag(res *ApplyResult, p *Plan, tag string, cause error) (*ApplyResult, error) {
	for _, r := range p.Create {
		if !slices.Contains(r.Tags, tag) {
			err := fmt.Errorf("load balancer %s targets tag %s, droplet %s lacks it (tag it)", p.LoadBalancerID, tag, r.Name)
			if cause != nil {
				err = fmt.Errorf("%w: %w", err, cause)
			}
			return res, err
		}
	}
	res.AttachedByTag = tag
	res.Steps = append(res.Steps, fmt.Sprintf("load balancer targets tag %s: attached by tag", tag))
	return res, nil
}

func (c *Client) waitActive(ctx context.Context, tier string, id int, timeout time.Duration) (Droplet, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		d, _, err := c.do.Droplets.Get(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return Droplet{}, fmt.Errorf("droplet %d not active after %v: %w", id, timeout, ErrActionTimeout)
			}
			return Droplet{}, doapi.Wrap(fmt.Sprintf("get droplet %d", id), err)
		}
		if d.Status == "active" {
			return dropletFrom(tier, *d), nil
		}
		select {
		case <-ctx.Done():
			return Droplet{}, fmt.Errorf("droplet %d still %s after %v: %w", id, d.Status, timeout, ErrActionTimeout)
		case <-time.After(c.cfg.PollInterval):
		}
	}
}

// createDroplet creates r through the client without transport retries
// and retries itself: after a 5xx or a transport error it first lists the
// tier, since the API may have created the droplet anyway; after a 429 it
// waits for retry-after. At most Config.API.Retries retries.
func (c *Client) createDroplet(ctx context.Context, tier string, r *godo.DropletCreateRequest) (Droplet, string, error) {
	for attempt := 0; ; attempt++ {
		d, resp, err := c.once.Droplets.Create(ctx, r)
		if err == nil {
			return dropletFrom(tier, *d), "", nil
		}
		code := doapi.Status(err)
		if ctx.Err() != nil || (code != 0 && code != http.StatusTooManyRequests && code < 500) || attempt >= c.cfg.API.Retries {
			return Droplet{}, "", doapi.Wrap(fmt.Sprintf("create droplet %s", r.Name), err)
		}
		if code != http.StatusTooManyRequests {
			if ds, lerr := c.Droplets(ctx, tier); lerr == nil {
				for _, d := range ds {
					if d.Name == r.Name {
						return d, fmt.Sprintf(" despite: %v", err), nil
					}
				}
			}
		}
		wait := min(c.cfg.API.RetryWaitMin<<attempt, c.cfg.API.RetryWaitMax)
		if code == http.StatusTooManyRequests {
			wait = doapi.RetryAfter(resp, wait)
		}
		c.log.WarnContext(ctx, "create droplet: retrying", "name", r.Name, "status", code, "wait", wait)
		select {
		case <-ctx.Done():
			return Droplet{}, "", fmt.Errorf("create droplet %s: %w", r.Name, ctx.Err())
		case <-time.After(wait):
		}
	}
}
