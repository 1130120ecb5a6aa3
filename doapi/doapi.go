// Package doapi is the one way fediops talks to the DigitalOcean API: call
// New(Options{Token: os.Getenv("DIGITALOCEAN_TOKEN")}) and hand the godo
// client it returns to pgpool.Manager, spaces.NewCDN or the droplets
// package.
//
// The client carries the token in an OAuth2 transport (godo's retries need
// exactly that transport), retries answers 429 and 5xx a bounded number of
// times, honouring Retry-After, and bounds every request in time. Retries
// repeat POSTs too, so whoever creates something through it makes the
// create idempotent by name. The API's base URL must be https unless its
// host is loopback (a local stand-in): the token never travels in clear.
//
// Wrap turns godo's errors into *Error, which names the operation, the HTTP
// status, DigitalOcean's message and, when DO sent one, the request id;
// errors.Is(err, ErrNotFound) tells a 404. No error contains the token.
package doapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/digitalocean/godo"
	"github.com/hashicorp/go-retryablehttp"
	"golang.org/x/oauth2"

	"github.com/fediops/fediops"
)

// DefaultBaseURL is DigitalOcean's API.
const DefaultBaseURL = "https://api.digitalocean.com/"

// The settings OptionsFromEnv reads.
const (
	EnvToken  = "DIGITALOCEAN_TOKEN"   // the API token
	EnvAPIURL = "DIGITALOCEAN_API_URL" // another base URL (a local stand-in)
)

// Defaults of Options.
const (
	DefaultRetries      = 4
	DefaultRetryWaitMin = time.Second
	DefaultRetryWaitMax = 30 * time.Second
	DefaultTimeout      = 30 * time.Second
)

// ErrNoToken says no API token was given.
var ErrNoToken = errors.New("no DigitalOcean API token")

// ErrInsecureURL says the base URL would send the token in clear.
var ErrInsecureURL = errors.New("the API URL must be https unless its host is loopback")

// Options configure New. Zero values mean the defaults above.
type Options struct {
	// Token is the API token (DIGITALOCEAN_TOKEN). Required. It is sent
	// in the Authorization header only and never appears in an error.
	Token string
	// BaseURL is the API endpoint; "" means DefaultBaseURL. It must be
	// https unless its host is loopback.
	BaseURL string
	// Retries is how often an answer 429 or 5xx (or a connection that
	// failed or timed out) is retried; a refused connection or a host name
	// that does not resolve ends the call at once. 0 means DefaultRetries, negative none. A 429's
	// Retry-After is waited for as sent (DO's hourly limit can ask for
	// minutes): bound calls with their context.
	Retries int
	// RetryWaitMin and RetryWaitMax bound the backoff between retries
	// without Retry-After; 0 means 1 s and 30 s.
	RetryWaitMin, RetryWaitMax time.Duration
	// Timeout bounds one HTTP request (each attempt); 0 means 30 s.
	Timeout time.Duration
}

// OptionsFromEnv reads DIGITALOCEAN_TOKEN (required) and
// DIGITALOCEAN_API_URL (optional) from env, checked as New checks them.
func OptionsFromEnv(env fediops.Lookup) (Options, error) {
	tok, _ := env(EnvToken)
	o := Options{Token: strings.TrimSpace(tok)}
	o.BaseURL, _ = env(EnvAPIURL)
	if o.Token == "" {
		return Options{}, fmt.Errorf("%s: %w", EnvToken, ErrNoToken)
	}
	if _, err := baseURL(o.BaseURL); err != nil {
		return Options{}, fmt.Errorf("%s: %w", EnvAPIURL, err)
	}
	return o, nil
}

// WithDefaults returns o with the defaults in place of zero values.
func (o Options) WithDefaults() Options {
	if o.Retries == 0 {
		o.Retries = DefaultRetries
	}
	if o.RetryWaitMin <= 0 {
		o.RetryWaitMin = DefaultRetryWaitMin
	}
	if o.RetryWaitMax <= 0 {
		o.RetryWaitMax = DefaultRetryWaitMax
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	return o
}

// baseURL checks u and returns it with a trailing slash (godo resolves
// paths against it).
func baseURL(u string) (string, error) {
	if u == "" {
		return DefaultBaseURL, nil
	}
	p, err := url.Parse(u)
	if err != nil || p.Host == "" || (p.Scheme != "https" && p.Scheme != "http") {
		return "", fmt.Errorf("API URL %q: want https://host[/path]", redact(u))
	}
	if p.User != nil {
		return "", fmt.Errorf("API URL %s: no user or password in it: the token is sent in a header", p.Redacted())
	}
	if p.Scheme == "http" && !Loopback(p.Hostname()) {
		return "", fmt.Errorf("API URL %s: %w", p.Redacted(), ErrInsecureURL)
	}
	if !strings.HasSuffix(p.Path, "/") {
		p.Path += "/"
	}
	return p.String(), nil
}

func redact(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.Redacted()
	}
	if i := strings.LastIndex(u, "@"); i >= 0 {
		return "…" + u[i:]
	}
	return u
}

// Loopback reports whether host is localhost or a loopback address.
func Loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// New returns a godo client for o: the token in an OAuth2 transport, each
// request bounded by o.Timeout, answers 429 and 5xx retried o.Retries
// times (Retry-After honoured).
func New(o Options) (*godo.Client, error) {
	if strings.TrimSpace(o.Token) == "" {
		return nil, fmt.Errorf("DigitalOcean client: %w", ErrNoToken)
	}
	base, err := baseURL(o.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("DigitalOcean client: %w", err)
	}
	o = o.WithDefaults()
	hc := oauth2.NewClient(context.Background(), oauth2.StaticTokenSource(&oauth2.Token{AccessToken: o.Token, TokenType: "Bearer"}))
	hc.Timeout = o.Timeout
	opts := []godo.ClientOpt{godo.SetBaseURL(base), godo.SetUserAgent("fediops")}
	if o.Retries < 0 {
		// http.Client cuts a request at Timeout through the transport's
		// legacy CancelRequest when it has one, and oauth2's logs a
		// deprecation line for it. (godo's retries need the transport
		// itself: they take its token source.)
		hc.Transport = onlyRoundTrip{hc.Transport}
	}
	if o.Retries > 0 {
		opts = append(opts, godo.WithRetryAndBackoffs(godo.RetryConfig{RetryMax: o.Retries,
			RetryWaitMin: godo.PtrTo(o.RetryWaitMin.Seconds()), RetryWaitMax: godo.PtrTo(o.RetryWaitMax.Seconds())}))
	}
	c, err := godo.New(hc, opts...)
	if err != nil {
		return nil, fmt.Errorf("DigitalOcean client: %w", err)
	}
	failFast(c)
	return c, nil
}

// onlyRoundTrip hides every method of a RoundTripper but RoundTrip.
type onlyRoundTrip struct{ http.RoundTripper }

// failFast makes godo's retries give up at once on a refused connection
// or a name that does not resolve: no retry brings the API there, and
// waiting out the backoff (over a minute by default) only hides the cause.
func failFast(c *godo.Client) {
	ot, ok := c.HTTPClient.Transport.(*oauth2.Transport)
	if !ok {
		return
	}
	rt, ok := ot.Base.(*retryablehttp.RoundTripper)
	if !ok {
		return
	}
	next := rt.Client.CheckRetry
	rt.Client.CheckRetry = func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		if unreachable(err) {
			return false, err
		}
		return next(ctx, resp, err)
	}
}

// unreachable reports whether err is a refused connection or a name that
// does not resolve (a timeout or a reset may pass; these do not).
func unreachable(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns.IsNotFound
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// ErrNotFound is what errors.Is finds in an *Error for a 404.
var ErrNotFound = errors.New("not found")

// Error is an answer of the DigitalOcean API that was not a success,
// after any retries.
type Error struct {
	// Op is what was asked ("create pool p1 in <cluster>").
	Op string
	// Status is the HTTP status.
	Status int
	// ID and Message are DO's error id ("not_found") and message.
	ID, Message string
	// RequestID is DO's id of the request, "" when it sent none.
	RequestID string
	// Attempts is how many times the request was sent.
	Attempts int
	// RetryAfter is the wait a 429 asked for, 0 without one.
	RetryAfter time.Duration
	// Err is godo's error.
	Err error
}

// Error reads "<op>: API <status>: <message> (request <id>, <n> attempts)",
// the parenthesis holding only what is known: a request id when DO sent
// one, the attempts when there was more than one.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: API %d", e.Op, e.Status)
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	var extra []string
	if e.RequestID != "" {
		extra = append(extra, "request "+e.RequestID)
	}
	if e.Attempts > 1 {
		extra = append(extra, strconv.Itoa(e.Attempts)+" attempts")
	}
	if len(extra) > 0 {
		b.WriteString(" (" + strings.Join(extra, ", ") + ")")
	}
	return b.String()
}

// Unwrap returns godo's error.
func (e *Error) Unwrap() error { return e.Err }

// Is reports a 404 as ErrNotFound.
func (e *Error) Is(target error) bool {
	return target == ErrNotFound && e.Status == http.StatusNotFound
}

// Wrap names the operation op in err: a *godo.ErrorResponse becomes an
// *Error, anything else (a cancelled context, a refused connection) is
// wrapped as "op: err". Wrap(op, nil) is nil.
func Wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var er *godo.ErrorResponse
	if !errors.As(err, &er) || er.Response == nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	e := &Error{Op: op, Status: er.Response.StatusCode, Message: er.Message, RequestID: er.RequestID, Attempts: max(er.Attempts, 1), Err: err}
	if e.RequestID == "" {
		e.RequestID = er.Response.Header.Get("X-Request-Id")
	}
	if e.Status == http.StatusTooManyRequests {
		e.RetryAfter = retryAfter(er.Response.Header)
	}
	return e
}

// Status is the HTTP status of a DigitalOcean API error in err's chain
// (*Error or godo's *ErrorResponse), 0 when there is none.
func Status(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	var er *godo.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return er.Response.StatusCode
	}
	return 0
}

// IsStatus reports whether err is a DigitalOcean API answer with status.
func IsStatus(err error, status int) bool { return Status(err) == status }

// RetryAfter is the wait a 429 answer asks for: its Retry-After, else the
// rate limit's reset when it is less than 10 minutes away, else fallback.
func RetryAfter(resp *godo.Response, fallback time.Duration) time.Duration {
	if resp == nil || resp.Response == nil {
		return fallback
	}
	if d := retryAfter(resp.Header); d > 0 {
		return d
	}
	if !resp.Rate.Reset.IsZero() {
		if d := time.Until(resp.Rate.Reset.Time); d > 0 && d < 10*time.Minute {
			return d
		}
	}
	return fallback
}

func retryAfter(h http.Header) time.Duration {
	if s, err := strconv.Atoi(strings.TrimSpace(h.Get("Retry-After"))); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	return 0
}

// MaxPages bounds every listing All follows.
const MaxPages = 1000

// All calls list page after page (200 items a page) until the last and
// returns every item. list is a godo method such as
// client.Snapshots.ListDroplet, or a closure around one that needs more
// arguments. Errors come back as list gave them; wrap them with the
// operation.
func All[T any](ctx context.Context, list func(context.Context, *godo.ListOptions) ([]T, *godo.Response, error)) ([]T, error) {
	var all []T
	opt := &godo.ListOptions{Page: 1, PerPage: 200}
	for range MaxPages {
		items, resp, err := list(ctx, opt)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		if resp == nil || resp.Links == nil || resp.Links.IsLastPage() || len(items) == 0 {
			return all, nil
		}
		opt.Page++
	}
	return nil, fmt.Errorf("more than %d pages", MaxPages)
}
