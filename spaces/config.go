package spaces

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/internal/envfile"
)

// Defaults, as Mastodon's config/initializers/paperclip.rb has them.
const (
	DefaultRegion             = "us-east-1"
	DefaultProtocol           = "https"
	DefaultPermission         = "public-read"
	DefaultMultipartThreshold = 15 << 20 // S3_MULTIPART_THRESHOLD, 15 MiB
	DefaultOpenTimeout        = 5 * time.Second
	DefaultReadTimeout        = 5 * time.Second
	DefaultBatchDeleteLimit   = 1000
	DefaultBatchDeleteRetry   = 3
	DefaultPageSize           = 1000
	// CacheControl is the Cache-Control Mastodon sets on every upload.
	CacheControl = "public, max-age=315576000, immutable"
	// MinPartSize is the smallest multipart part S3 and Spaces accept.
	MinPartSize = 5 << 20
)

// ErrDisabled is returned by ConfigFromEnv when S3_ENABLED is not "true":
// Mastodon then keeps media on the local disk and ignores every S3_* variable.
var ErrDisabled = errors.New("S3_ENABLED is not true (Mastodon keeps media on local disk)")

// Config says where a Mastodon instance keeps its media and how to reach it.
// ConfigFromEnv fills it from the S3_* variables; a Config built by hand gets
// the defaults above for zero fields, except Permission ("" = no ACL).
type Config struct {
	Bucket   string // S3_BUCKET
	Region   string // S3_REGION, signs requests; "" = us-east-1
	Protocol string // S3_PROTOCOL of public URLs, http or https; "" = https
	// Hostname is S3_HOSTNAME, the host of public path-style URLs;
	// "" = s3-<Region>.amazonaws.com.
	Hostname string
	// Endpoint is S3_ENDPOINT, the API's base URL (https://nyc3.digitaloceanspaces.com);
	// "" = AWS's endpoint for Region.
	Endpoint string
	// PathStyle addresses buckets as Endpoint/bucket rather than
	// bucket.Endpoint-host: Mastodon's choice whenever S3_ENDPOINT is set,
	// unless S3_OVERRIDE_PATH_STYLE=true.
	PathStyle bool
	// AliasHost is S3_ALIAS_HOST (or the legacy S3_CLOUDFRONT_HOST): the host,
	// optionally with a path, that public URLs use instead of Hostname/Bucket.
	AliasHost string
	// KeyPrefix is S3_KEY_PREFIX: every key this package reads or writes is
	// KeyPrefix + "/" + key, and listings return keys without it.
	KeyPrefix string
	// Permission is S3_PERMISSION, the canned ACL of uploads; "" sends none.
	Permission   string
	StorageClass string // S3_STORAGE_CLASS; "" sends none
	// MultipartThreshold is S3_MULTIPART_THRESHOLD: bodies of this size or
	// more go up in parts of this size; at least MinPartSize.
	MultipartThreshold int64
	OpenTimeout        time.Duration // S3_OPEN_TIMEOUT: connect and TLS handshake
	ReadTimeout        time.Duration // S3_READ_TIMEOUT: wait for response headers
	// MaxAttempts is S3_RETRY_LIMIT+1 when S3_RETRY_LIMIT is set; 0 keeps the
	// SDK's standard retryer (3 attempts). Mastodon itself never retries.
	MaxAttempts      int
	BatchDeleteLimit int // S3_BATCH_DELETE_LIMIT: keys per DeleteObjects, 1..1000
	BatchDeleteRetry int // S3_BATCH_DELETE_RETRY: retries of keys a batch failed to delete

	AccessKeyID     string // AWS_ACCESS_KEY_ID, never printed
	SecretAccessKey string // AWS_SECRET_ACCESS_KEY, never printed

	PageSize   int32        // objects per list request, 1..1000; 0 = 1000
	HTTPClient *http.Client // nil = one built from OpenTimeout and ReadTimeout
	Logger     *slog.Logger // nil = discard
}

// ConfigError lists every S3_* variable that is missing or contradicts
// another. Its message never contains a key or a secret.
type ConfigError struct {
	Problems []Problem
}

// Problem is one bad variable.
type Problem struct {
	Var    string // the variable, e.g. S3_BUCKET
	Reason string
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("bad S3 settings: ")
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.Var + ": " + p.Reason)
	}
	return b.String()
}

// Vars returns the names of the bad variables, in order.
func (e *ConfigError) Vars() []string {
	var v []string
	for _, p := range e.Problems {
		v = append(v, p.Var)
	}
	return v
}

func (e *ConfigError) add(v, format string, args ...any) {
	e.Problems = append(e.Problems, Problem{v, fmt.Sprintf(format, args...)})
}

// ConfigFromEnv reads Mastodon's S3 settings through env ((*fediops.Env).Lookup,
// os.LookupEnv, fediops.MapLookup). It returns ErrDisabled unless S3_ENABLED
// is "true", and otherwise one *ConfigError naming every variable that is
// missing, malformed or contradicts another.
func ConfigFromEnv(env fediops.Lookup) (*Config, error) {
	get := func(k string) string { v, _ := env(k); return v }
	has := func(k string) bool { _, ok := env(k); return ok }
	if v, ok := env("S3_ENABLED"); !ok || v != "true" {
		return nil, ErrDisabled
	}
	e := &ConfigError{}
	c := &Config{
		Bucket:          get("S3_BUCKET"),
		Region:          DefaultRegion,
		Protocol:        DefaultProtocol,
		Endpoint:        get("S3_ENDPOINT"),
		KeyPrefix:       get("S3_KEY_PREFIX"),
		Permission:      DefaultPermission,
		StorageClass:    get("S3_STORAGE_CLASS"),
		AccessKeyID:     get("AWS_ACCESS_KEY_ID"),
		SecretAccessKey: get("AWS_SECRET_ACCESS_KEY"),
	}
	if v, ok := env("S3_REGION"); ok {
		c.Region = v
	}
	if v, ok := env("S3_PROTOCOL"); ok {
		c.Protocol = v
	}
	c.Hostname = "s3-" + c.Region + ".amazonaws.com"
	if v, ok := env("S3_HOSTNAME"); ok {
		c.Hostname = v
	}
	if v, ok := env("S3_PERMISSION"); ok {
		c.Permission = v
	}
	// Mastodon tests these with ENV.key?/ENV.fetch: set but empty, they
	// give URLs such as https:///key rather than the default.
	for _, k := range []string{"S3_PROTOCOL", "S3_HOSTNAME", "S3_ENDPOINT", "S3_ALIAS_HOST", "S3_CLOUDFRONT_HOST"} {
		if v, ok := env(k); ok && strings.TrimSpace(v) == "" {
			e.add(k, "set but empty; Mastodon would use the empty value: remove the line or give a value")
		}
	}
	c.PathStyle = has("S3_ENDPOINT") && get("S3_OVERRIDE_PATH_STYLE") != "true"
	if v := get("S3_OVERRIDE_PATH_STYLE"); v != "" && !has("S3_ENDPOINT") {
		e.add("S3_OVERRIDE_PATH_STYLE", "set but S3_ENDPOINT is not; Mastodon ignores it")
	}

	alias, aliasOK := env("S3_ALIAS_HOST")
	cf, cfOK := env("S3_CLOUDFRONT_HOST")
	switch {
	case aliasOK && cfOK && alias != cf:
		e.add("S3_CLOUDFRONT_HOST", "differs from S3_ALIAS_HOST, which wins; remove the legacy S3_CLOUDFRONT_HOST")
	case !aliasOK && cfOK:
		alias = cf
	}
	c.AliasHost = alias

	intVar := func(name string, def, min, max int64) int64 {
		v, ok := env(name)
		if !ok {
			return def
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			e.add(name, "%q is not a whole number", envfile.Redact(name, v))
			return def
		}
		if n < min || n > max {
			e.add(name, "%d is outside %d..%d", n, min, max)
			return def
		}
		return n
	}
	c.MultipartThreshold = intVar("S3_MULTIPART_THRESHOLD", DefaultMultipartThreshold, MinPartSize, 5<<30)
	c.OpenTimeout = time.Duration(intVar("S3_OPEN_TIMEOUT", 5, 1, 3600)) * time.Second
	c.ReadTimeout = time.Duration(intVar("S3_READ_TIMEOUT", 5, 1, 3600)) * time.Second
	if has("S3_RETRY_LIMIT") {
		c.MaxAttempts = int(intVar("S3_RETRY_LIMIT", 0, 0, 100)) + 1
	}
	c.BatchDeleteLimit = int(intVar("S3_BATCH_DELETE_LIMIT", DefaultBatchDeleteLimit, 1, 1000))
	c.BatchDeleteRetry = int(intVar("S3_BATCH_DELETE_RETRY", DefaultBatchDeleteRetry, 0, 100))
	if v, ok := env("S3_SIGNATURE_VERSION"); ok && v != "v4" {
		e.add("S3_SIGNATURE_VERSION", "%q: only v4 is supported (Spaces signs with v4)", v)
	}

	c.validate(e, map[string]string{
		"bucket": "S3_BUCKET", "region": "S3_REGION", "protocol": "S3_PROTOCOL", "hostname": "S3_HOSTNAME",
		"endpoint": "S3_ENDPOINT", "alias": aliasVar(aliasOK, cfOK), "permission": "S3_PERMISSION",
		"key": "AWS_ACCESS_KEY_ID", "secret": "AWS_SECRET_ACCESS_KEY", "prefix": "S3_KEY_PREFIX",
	})
	if len(e.Problems) > 0 {
		return nil, e
	}
	return c, nil
}

func aliasVar(alias, cf bool) string {
	if !alias && cf {
		return "S3_CLOUDFRONT_HOST"
	}
	return "S3_ALIAS_HOST"
}

// Validate checks a Config built by hand; problems are named by field.
func (c *Config) Validate() error {
	e := &ConfigError{}
	c.validate(e, map[string]string{
		"bucket": "Bucket", "region": "Region", "protocol": "Protocol", "hostname": "Hostname",
		"endpoint": "Endpoint", "alias": "AliasHost", "permission": "Permission",
		"key": "AccessKeyID", "secret": "SecretAccessKey", "prefix": "KeyPrefix",
	})
	if c.MultipartThreshold != 0 && c.MultipartThreshold < MinPartSize {
		e.add("MultipartThreshold", "%d is below the 5 MiB minimum part size", c.MultipartThreshold)
	}
	if c.BatchDeleteLimit < 0 || c.BatchDeleteLimit > 1000 {
		e.add("BatchDeleteLimit", "%d is outside 1..1000", c.BatchDeleteLimit)
	}
	if c.PageSize < 0 || c.PageSize > 1000 {
		e.add("PageSize", "%d is outside 1..1000", c.PageSize)
	}
	if len(e.Problems) > 0 {
		return e
	}
	return nil
}

var cannedACLs = map[string]bool{
	"": true, "private": true, "public-read": true, "public-read-write": true, "authenticated-read": true,
	"aws-exec-read": true, "bucket-owner-read": true, "bucket-owner-full-control": true,
}

// validate checks the fields shared by ConfigFromEnv and Validate; name maps
// a role to the variable or field to blame.
func (c *Config) validate(e *ConfigError, name map[string]string) {
	if c.Bucket == "" {
		e.add(name["bucket"], "missing")
	} else if !validBucket(c.Bucket) {
		e.add(name["bucket"], "%q is not a bucket name (3-63 of a-z 0-9 . -)", c.Bucket)
	}
	if c.AccessKeyID == "" {
		e.add(name["key"], "missing")
	}
	if c.SecretAccessKey == "" {
		e.add(name["secret"], "missing")
	}
	if c.Region == "" && name["region"] == "S3_REGION" {
		e.add(name["region"], "set but empty; Mastodon would use the empty value: remove the line or give a value")
	}
	if p := c.Protocol; p != "" && p != "http" && p != "https" {
		e.add(name["protocol"], "%q is neither http nor https", p)
	}
	if c.Hostname != "" && strings.ContainsAny(c.Hostname, "/:@ ") && !hostPort(c.Hostname) {
		e.add(name["hostname"], "%q must be a bare host name, without scheme or path", c.Hostname)
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
			e.add(name["endpoint"], "%q is not an http(s) URL such as https://nyc3.digitaloceanspaces.com", c.Endpoint)
		case u.User != nil:
			e.add(name["endpoint"], "must not carry credentials")
		case c.Bucket != "" && strings.HasPrefix(strings.ToLower(u.Hostname()), strings.ToLower(c.Bucket)+"."):
			e.add(name["endpoint"], "%q starts with the bucket name; use the region endpoint (https://%s)", c.Endpoint, u.Hostname()[len(c.Bucket)+1:])
		}
	} else if strings.HasSuffix(strings.ToLower(c.Hostname), ".digitaloceanspaces.com") {
		e.add(name["endpoint"], "missing while %s is a Spaces host: API calls would go to AWS", name["hostname"])
	}
	if a := c.AliasHost; a != "" {
		if strings.Contains(a, "://") {
			e.add(name["alias"], "%q must not include a scheme: URLs would read https://%s", a, a)
		} else if strings.ContainsAny(a, " ?#@") {
			e.add(name["alias"], "%q is not a host name", a)
		}
	}
	if !cannedACLs[c.Permission] {
		e.add(name["permission"], "%q is not a canned ACL (public-read, private, ...)", c.Permission)
	}
	if strings.HasPrefix(c.KeyPrefix, "/") {
		e.add(name["prefix"], "must not start with /")
	}
}

func hostPort(s string) bool {
	h, p, err := net.SplitHostPort(s)
	return err == nil && h != "" && p != "" && !strings.ContainsAny(h, "/@ ")
}

func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for _, r := range b {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-') {
			return false
		}
	}
	return true
}

// withDefaults returns a copy with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	if c.Protocol == "" {
		c.Protocol = DefaultProtocol
	}
	if c.Hostname == "" {
		c.Hostname = "s3-" + c.Region + ".amazonaws.com"
	}
	if c.MultipartThreshold == 0 {
		c.MultipartThreshold = DefaultMultipartThreshold
	}
	if c.OpenTimeout == 0 {
		c.OpenTimeout = DefaultOpenTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.BatchDeleteLimit == 0 {
		c.BatchDeleteLimit = DefaultBatchDeleteLimit
	}
	if c.BatchDeleteRetry == 0 {
		c.BatchDeleteRetry = DefaultBatchDeleteRetry
	}
	if c.PageSize == 0 {
		c.PageSize = DefaultPageSize
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// String describes the Config without its credentials.
func (c Config) String() string {
	return fmt.Sprintf("spaces.Config{Bucket:%q Region:%q Endpoint:%q PathStyle:%t AliasHost:%q AccessKeyID:%s SecretAccessKey:%s}",
		c.Bucket, c.Region, c.Endpoint, c.PathStyle, c.AliasHost,
		envfile.Redact("AWS_ACCESS_KEY_ID", c.AccessKeyID), envfile.Redact("AWS_SECRET_ACCESS_KEY", c.SecretAccessKey))
}

// GoString is String, so that %#v does not print the credentials either.
func (c Config) GoString() string { return c.String() }

// LogValue logs the Config without its credentials.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("bucket", c.Bucket), slog.String("region", c.Region),
		slog.String("endpoint", c.Endpoint), slog.Bool("path_style", c.PathStyle),
		slog.String("alias_host", c.AliasHost),
		slog.String("access_key_id", envfile.Redact("AWS_ACCESS_KEY_ID", c.AccessKeyID)),
		slog.String("secret_access_key", envfile.Redact("AWS_SECRET_ACCESS_KEY", c.SecretAccessKey)),
	)
}
