package spaces

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/digitalocean/godo"
)

// Sentinel errors of the checks, for errors.Is.
var (
	// ErrNoCDN: no CDN endpoint has this Space as its origin.
	ErrNoCDN = errors.New("no CDN endpoint for this Space")
	// ErrAliasMismatch: S3_ALIAS_HOST is not the CDN endpoint's custom domain.
	ErrAliasMismatch = errors.New("alias host is not the CDN endpoint's custom domain")
	// ErrNotPublic: the public URL did not answer 200.
	ErrNotPublic = errors.New("public URL not served")
)

// Result is the outcome of one check, ready for a health aggregator.
type Result struct {
	Name    string // spaces.endpoint, spaces.public, spaces.alias, spaces.bucket, spaces.cdn
	OK      bool
	Latency time.Duration
	Err     error  // nil when OK
	Detail  string // what was checked: a URL, an origin
}

func (r Result) String() string {
	if r.OK {
		return fmt.Sprintf("%s ok %s (%s)", r.Name, r.Latency.Round(time.Millisecond), r.Detail)
	}
	return fmt.Sprintf("%s FAIL %s: %v", r.Name, r.Latency.Round(time.Millisecond), r.Err)
}

func timed(name, detail string, f func() error) Result {
	start := time.Now()
	err := f()
	return Result{Name: name, OK: err == nil, Latency: time.Since(start), Err: err, Detail: detail}
}

// Health checks that key (an object known to exist, relative to KeyPrefix)
// can be read: a signed HEAD through the API endpoint ("spaces.endpoint"),
// then an unsigned HEAD of its public URL ("spaces.alias" through
// S3_ALIAS_HOST, else "spaces.public") with the client's HTTP client, whose
// connections stay open for the next call.
func (c *Client) Health(ctx context.Context, key string) []Result {
	var out []Result
	out = append(out, timed("spaces.endpoint", c.cfg.Bucket+"/"+c.cfg.FullKey(key), func() error {
		_, err := c.Head(ctx, key)
		return err
	}))
	name := "spaces.public"
	if c.cfg.AliasHost != "" {
		name = "spaces.alias"
	}
	u := c.cfg.PublicURL(key)
	out = append(out, timed(name, u, func() error { return c.headURL(ctx, u) }))
	return out
}

func (c *Client) headURL(ctx context.Context, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
	if err != nil {
		return fmt.Errorf("HEAD %s: %w", u, err)
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("HEAD %s: %w", u, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HEAD %s: %s: %w", u, resp.Status, ErrNotPublic)
	}
	return nil
}

// Consistency checks that the bucket answers HeadBucket ("spaces.bucket")
// and, when cdns is not nil and an alias host is set, that a CDN endpoint
// serves this Space's Origin with the alias host as its custom domain
// ("spaces.cdn": ErrNoCDN or ErrAliasMismatch otherwise).
func (c *Client) Consistency(ctx context.Context, cdns godo.CDNService) []Result {
	out := []Result{timed("spaces.bucket", c.cfg.Bucket, func() error {
		_, err := c.S3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(c.cfg.Bucket)})
		if err != nil {
			return fmt.Errorf("head bucket %s: %w", c.cfg.Bucket, err)
		}
		return nil
	})}
	if cdns == nil || c.cfg.AliasHost == "" {
		return out
	}
	origin := c.cfg.Origin()
	out = append(out, timed("spaces.cdn", origin, func() error {
		ep, err := findEndpoint(ctx, cdns, origin, nil)
		if err != nil {
			return err
		}
		if ep == nil {
			return fmt.Errorf("origin %s: %w", origin, ErrNoCDN)
		}
		if !strings.EqualFold(ep.CustomDomain, c.cfg.aliasDomain()) {
			return fmt.Errorf("CDN endpoint %s for %s: custom domain %q, S3_ALIAS_HOST %q: %w",
				ep.ID, origin, ep.CustomDomain, c.cfg.AliasHost, ErrAliasMismatch)
		}
		return nil
	}))
	return out
}
