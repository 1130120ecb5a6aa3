package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// Check is one health check of a tier. Run returns a short detail for the
// report and nil when healthy, a *Warning (see Warn) when degraded, any
// other error when failing. Run must honour ctx; Run (the function) also
// stops waiting for it when the per-check timeout passes.
type Check interface {
	Name() string
	Run(ctx context.Context) (detail string, err error)
}

// CheckFunc adapts a function, such as a package's ping or health method,
// to a Check.
func CheckFunc(name string, run func(ctx context.Context) (string, error)) Check {
	return funcCheck{name, run}
}

// ErrCheck adapts a function that only returns an error.
func ErrCheck(name string, run func(ctx context.Context) error) Check {
	return funcCheck{name, func(ctx context.Context) (string, error) { return "", run(ctx) }}
}

type funcCheck struct {
	name string
	run  func(ctx context.Context) (string, error)
}

func (f funcCheck) Name() string                            { return f.name }
func (f funcCheck) Run(ctx context.Context) (string, error) { return f.run(ctx) }

// Warning marks a check result as degraded rather than failed.
type Warning struct{ Err error }

func (w *Warning) Error() string { return w.Err.Error() }
func (w *Warning) Unwrap() error { return w.Err }

// Warn wraps err so that the check reports StatusWarn.
func Warn(err error) error {
	if err == nil {
		return nil
	}
	return &Warning{err}
}

// Status of a check.
type Status string

// Statuses, from good to bad.
const (
	StatusOK   Status = "ok"
	StatusWarn Status = "warn"
	StatusFail Status = "fail"
)

// ErrCheckTimeout is the error of a check that did not return in time.
var ErrCheckTimeout = errors.New("check timed out")

// Result is one check's outcome.
type Result struct {
	Name    string        `json:"name"`
	Status  Status        `json:"status"`
	Latency time.Duration `json:"latency_ns"`
	Detail  string        `json:"detail,omitempty"`
	Err     error         `json:"-"`
	Error   string        `json:"error,omitempty"`
}

// Report is the outcome of Run.
type Report struct {
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
	Results  []Result      `json:"results"`
}

// OK reports whether no check failed (warnings are OK).
func (r Report) OK() bool {
	for _, res := range r.Results {
		if res.Status == StatusFail {
			return false
		}
	}
	return true
}

// Run runs every check concurrently, each under its own timeout
// (0 means 10 s), and returns the results in the order of checks. A check
// that ignores its context is abandoned at the timeout and reported as
// failed with ErrCheckTimeout.
func Run(ctx context.Context, timeout time.Duration, checks ...Check) Report {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	rep := Report{Started: time.Now(), Results: make([]Result, len(checks))}
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep.Results[i] = runOne(ctx, timeout, c)
		}()
	}
	wg.Wait()
	rep.Duration = time.Since(rep.Started)
	return rep
}

func runOne(ctx context.Context, timeout time.Duration, c Check) Result {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type out struct {
		detail string
		err    error
	}
	done := make(chan out, 1)
	start := time.Now()
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- out{err: fmt.Errorf("panic: %v", p)}
			}
		}()
		d, err := c.Run(ctx)
		done <- out{d, err}
	}()
	var o out
	select {
	case o = <-done:
	case <-ctx.Done():
		o.err = fmt.Errorf("%w after %v", ErrCheckTimeout, timeout)
	}
	r := Result{Name: c.Name(), Status: StatusOK, Latency: time.Since(start), Detail: o.detail, Err: o.err}
	if o.err != nil {
		r.Error = o.err.Error()
		r.Status = StatusFail
		var w *Warning
		if errors.As(o.err, &w) {
			r.Status = StatusWarn
		}
	}
	return r
}

// WriteJSON writes the report as indented JSON (durations in ns).
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes the report as an aligned table.
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "CHECK\tSTATUS\tLATENCY\tDETAIL\n")
	for _, res := range r.Results {
		detail := res.Detail
		if res.Error != "" {
			detail = strings.TrimSpace(strings.Join([]string{detail, res.Error}, " "))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", res.Name, res.Status, res.Latency.Round(100*time.Microsecond), detail)
	}
	return tw.Flush()
}

// HTTPCheck GETs URL and expects Status (0 means 200) and, when Body is
// set, a body equal to it after trimming space. Mastodon answers
// GET /health with 200 "OK" on the web tier and
// GET /api/v1/streaming/health with 200 "OK" on the streaming tier.
type HTTPCheck struct {
	CheckName string
	URL       string
	Status    int
	Body      string
	// Host overrides the Host header (checking a node by IP behind the
	// load balancer's name).
	Host   string
	Client *http.Client
}

// WebHealth checks a Mastodon web (Puma) node, e.g. base
// "http://10.118.0.2:3000".
func WebHealth(name, base string) *HTTPCheck {
	return &HTTPCheck{CheckName: name, URL: strings.TrimRight(base, "/") + "/health", Body: "OK"}
}

// StreamingHealth checks a Mastodon streaming node, e.g. base
// "http://10.118.0.2:4000".
func StreamingHealth(name, base string) *HTTPCheck {
	return &HTTPCheck{CheckName: name, URL: strings.TrimRight(base, "/") + "/api/v1/streaming/health", Body: "OK"}
}

// Name implements Check.
func (h *HTTPCheck) Name() string { return h.CheckName }

// Run implements Check.
func (h *HTTPCheck) Run(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
	if err != nil {
		return "", fmt.Errorf("%s: %w", h.CheckName, err)
	}
	if h.Host != "" {
		req.Host = h.Host
	}
	c := h.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", h.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	want := h.Status
	if want == 0 {
		want = http.StatusOK
	}
	got := strings.TrimSpace(string(body))
	if resp.StatusCode != want {
		return "", fmt.Errorf("GET %s: status %d, want %d: %q", h.URL, resp.StatusCode, want, truncate(got, 120))
	}
	if h.Body != "" && got != h.Body {
		return "", fmt.Errorf("GET %s: body %q, want %q", h.URL, truncate(got, 120), h.Body)
	}
	return fmt.Sprintf("%d %s", resp.StatusCode, truncate(got, 40)), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
