package b2store

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/backup/internal/endpoint"
)

// Defaults for Config's zero values.
const (
	DefaultChunkSize           = 5_000_000 // bytes per part, B2's minimum: the least memory
	DefaultConcurrentUploads   = 1
	DefaultConcurrentDownloads = 2
	MinChunkSize               = 5_000_000
	DefaultRetryFor            = 2 * time.Minute
	DefaultBackoff             = time.Second
	// responseTimeout bounds the wait for an answer once a request is sent,
	// so that a connection that went silent is an error that is retried.
	responseTimeout = 5 * time.Minute
	maxParts        = 10_000 // B2's limit per large file
)

// Config says which bucket to use, how much memory transfers may take and
// how long to keep trying. Zero values mean the documented defaults;
// Validate names the first bad field.
type Config struct {
	KeyID  string // B2_APPLICATION_KEY_ID
	Key    string // B2_APPLICATION_KEY (never logged, never in an error)
	Bucket string // B2_BUCKET

	// APIBase is the authorization endpoint; empty means Backblaze's
	// production API. Tests point it at internal/b2fake (B2_API_BASE). It
	// must be https unless it is on loopback.
	APIBase string

	ChunkSize           int // Put's part size and Download's range size; 0 = DefaultChunkSize
	ConcurrentUploads   int // parts of one Put in flight; 0 = DefaultConcurrentUploads
	ConcurrentDownloads int // ranges of one Download in flight; 0 = DefaultConcurrentDownloads

	// RetryFor is how long a call keeps being retried while B2 gives no
	// usable answer (connection errors, 5xx, 429, bodies cut short),
	// counted from its first failure. 0 = DefaultRetryFor.
	RetryFor time.Duration
	// Backoff is the first wait before a retry, doubled each time up to
	// 30 s (B2's Retry-After wins). 0 = DefaultBackoff.
	Backoff time.Duration

	// ServerSideEncryption asks B2 to encrypt uploads at rest with its
	// own keys (SSE-B2). Backups are encrypted already; the media mirror
	// asks for it.
	ServerSideEncryption bool
	Transport            http.RoundTripper // nil = a pooled transport with a 5-minute response timeout
	UserAgent            string            // "" = "fediops"
	Logger               *slog.Logger      // nil = slog.Default()
}

// ConfigFromEnv reads B2_APPLICATION_KEY_ID, B2_APPLICATION_KEY, B2_BUCKET,
// and optionally B2_API_BASE, B2_CHUNK_SIZE, B2_CONCURRENT_UPLOADS and
// B2_RETRY_FOR (a duration such as 2m) through env, then checks the result.
func ConfigFromEnv(env fediops.Lookup) (Config, error) {
	get := func(k string) string { v, _ := env(k); return v }
	c := Config{KeyID: get("B2_APPLICATION_KEY_ID"), Key: get("B2_APPLICATION_KEY"),
		Bucket: get("B2_BUCKET"), APIBase: get("B2_API_BASE")}
	for _, x := range []struct {
		key string
		dst *int
	}{{"B2_CHUNK_SIZE", &c.ChunkSize}, {"B2_CONCURRENT_UPLOADS", &c.ConcurrentUploads}} {
		if v := get(x.key); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return c, fmt.Errorf("%s=%q: not a number", x.key, v)
			}
			*x.dst = n
		}
	}
	if v := get("B2_RETRY_FOR"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return c, fmt.Errorf("B2_RETRY_FOR=%q: not a duration (such as 2m)", v)
		}
		c.RetryFor = d
	}
	return c, c.Validate()
}

// Validate names the first missing or bad field.
func (c Config) Validate() error {
	switch {
	case c.KeyID == "":
		return errors.New("B2_APPLICATION_KEY_ID (Config.KeyID) is empty")
	case c.Key == "":
		return errors.New("B2_APPLICATION_KEY (Config.Key) is empty")
	case c.Bucket == "":
		return errors.New("B2_BUCKET (Config.Bucket) is empty")
	case c.ChunkSize != 0 && c.ChunkSize < MinChunkSize:
		return fmt.Errorf("ChunkSize %d is below B2's minimum part size %d", c.ChunkSize, MinChunkSize)
	case c.ConcurrentUploads < 0 || c.ConcurrentDownloads < 0:
		return errors.New("ConcurrentUploads and ConcurrentDownloads must not be negative")
	case c.RetryFor < 0 || c.Backoff < 0:
		return errors.New("RetryFor and Backoff must not be negative")
	}
	return endpoint.RequireTLS("B2_API_BASE (Config.APIBase)", c.APIBase)
}

func (c *Config) setDefaults() {
	c.ChunkSize = cmp.Or(c.ChunkSize, DefaultChunkSize)
	c.ConcurrentUploads = cmp.Or(c.ConcurrentUploads, DefaultConcurrentUploads)
	c.ConcurrentDownloads = cmp.Or(c.ConcurrentDownloads, DefaultConcurrentDownloads)
	c.RetryFor = cmp.Or(c.RetryFor, DefaultRetryFor)
	c.Backoff = cmp.Or(c.Backoff, DefaultBackoff)
	c.UserAgent = cmp.Or(c.UserAgent, "fediops")
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Transport == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.ResponseHeaderTimeout = responseTimeout
		tr.MaxIdleConnsPerHost = 8
		c.Transport = tr
	}
	if c.ServerSideEncryption {
		c.Transport = sseTransport{next: c.Transport}
	}
	c.Transport = watch{next: c.Transport, stall: c.RetryFor}
}
