package spaces

import (
	"net"
	"net/url"
	"strings"
)

// FullKey returns the object key that key is stored under: KeyPrefix/key.
func (c *Config) FullKey(key string) string {
	key = strings.TrimPrefix(key, "/")
	if c.KeyPrefix == "" {
		return key
	}
	return strings.TrimSuffix(c.KeyPrefix, "/") + "/" + key
}

// PublicURL returns the URL Mastodon (paperclip) gives out for key:
// <protocol>://<S3_ALIAS_HOST>/<key> when an alias host is set, else the
// path-style <protocol>://<S3_HOSTNAME>/<bucket>/<key>, which paperclip uses
// whether or not the API itself is addressed virtual-host style. Keys are
// prefixed with KeyPrefix and escaped segment by segment.
func (c *Config) PublicURL(key string) string {
	d := c.withDefaults()
	path := escapePath(c.FullKey(key))
	if d.AliasHost != "" {
		return d.Protocol + "://" + strings.TrimSuffix(d.AliasHost, "/") + "/" + path
	}
	return d.Protocol + "://" + d.Hostname + "/" + d.Bucket + "/" + path
}

// EndpointURL returns key's unsigned URL on the API endpoint, addressed as
// the S3 client addresses it: Endpoint/bucket/key with PathStyle, else
// scheme://bucket.endpoint-host/key. It is "" without an Endpoint.
func (c *Config) EndpointURL(key string) string {
	if c.Endpoint == "" {
		return ""
	}
	u, err := url.Parse(c.Endpoint)
	if err != nil {
		return ""
	}
	path := escapePath(c.FullKey(key))
	base := strings.TrimSuffix(u.Path, "/")
	if c.PathStyle {
		return u.Scheme + "://" + u.Host + base + "/" + c.Bucket + "/" + path
	}
	return u.Scheme + "://" + c.Bucket + "." + u.Host + base + "/" + path
}

// Origin returns the Space's CDN origin, "<bucket>.<region>.digitaloceanspaces.com".
// The region is taken from a Spaces Endpoint (nyc3.digitaloceanspaces.com)
// when there is one, since S3_REGION may be the us-east-1 placeholder.
func (c *Config) Origin() string {
	region := c.Region
	if u, err := url.Parse(c.Endpoint); err == nil {
		if r, ok := strings.CutSuffix(strings.ToLower(u.Hostname()), ".digitaloceanspaces.com"); ok && r != "" && !strings.Contains(r, ".") {
			region = r
		}
	}
	if region == "" {
		region = DefaultRegion
	}
	return c.Bucket + "." + region + ".digitaloceanspaces.com"
}

// aliasDomain is the host name of AliasHost (which may carry a port and a path).
func (c *Config) aliasDomain() string {
	h, _, _ := strings.Cut(c.AliasHost, "/")
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	return strings.ToLower(h)
}

func escapePath(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}
