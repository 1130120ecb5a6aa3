package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics exports the latest Report to Prometheus:
//
//	fediops_check_up{check}               1 ok or warn, 0 fail
//	fediops_check_status{check}           0 ok, 1 warn, 2 fail
//	fediops_check_latency_seconds{check}
//	fediops_check_last_run_timestamp_seconds
type Metrics struct {
	up, status, latency *prometheus.GaugeVec
	last                prometheus.Gauge
}

// NewMetrics registers the gauges with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "fediops_check_up",
			Help: "1 if the check passed (ok or warn) in the last run, 0 if it failed."}, []string{"check"}),
		status: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "fediops_check_status",
			Help: "Result of the check in the last run: 0 ok, 1 warn, 2 fail."}, []string{"check"}),
		latency: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "fediops_check_latency_seconds",
			Help: "How long the check took in the last run."}, []string{"check"}),
		last: prometheus.NewGauge(prometheus.GaugeOpts{Name: "fediops_check_last_run_timestamp_seconds",
			Help: "Unix time the last run started."}),
	}
	for _, c := range []prometheus.Collector{m.up, m.status, m.latency, m.last} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register check metrics: %w", err)
		}
	}
	return m, nil
}

// Observe sets the gauges from r; checks absent from r are dropped.
func (m *Metrics) Observe(r Report) {
	m.up.Reset()
	m.status.Reset()
	m.latency.Reset()
	for _, res := range r.Results {
		up, st := 1.0, 0.0
		switch res.Status {
		case StatusWarn:
			st = 1
		case StatusFail:
			up, st = 0, 2
		}
		m.up.WithLabelValues(res.Name).Set(up)
		m.status.WithLabelValues(res.Name).Set(st)
		m.latency.WithLabelValues(res.Name).Set(res.Latency.Seconds())
	}
	m.last.Set(float64(r.Started.UnixNano()) / 1e9)
}

// Summary is a one-line account of r: "ok: 8 checks" or
// "fail: db, redis; warn: search".
func (r Report) Summary() string {
	var fail, warn []string
	for _, res := range r.Results {
		switch res.Status {
		case StatusFail:
			fail = append(fail, res.Name)
		case StatusWarn:
			warn = append(warn, res.Name)
		}
	}
	var parts []string
	if len(fail) > 0 {
		parts = append(parts, "fail: "+strings.Join(fail, ", "))
	}
	if len(warn) > 0 {
		parts = append(parts, "warn: "+strings.Join(warn, ", "))
	}
	if len(parts) == 0 {
		return fmt.Sprintf("ok: %d checks", len(r.Results))
	}
	return strings.Join(parts, "; ")
}

// PushUptimeKuma reports r to an Uptime Kuma push monitor:
// GET pushURL?status=up|down&msg=<Summary>&ping=<duration ms>. Query
// parameters already in pushURL (Kuma's default "?status=up&msg=OK&ping=")
// are replaced. The push token is part of the URL path, so errors name
// only the host.
func PushUptimeKuma(ctx context.Context, client *http.Client, pushURL string, r Report) error {
	u, err := url.Parse(pushURL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("push URL is not an absolute URL")
	}
	q := u.Query()
	status := "up"
	if !r.OK() {
		status = "down"
	}
	q.Set("status", status)
	q.Set("msg", r.Summary())
	q.Set("ping", strconv.FormatInt(r.Duration.Milliseconds(), 10))
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("push to %s: %w", u.Host, err)
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		// *url.Error quotes the URL, whose path is the monitor's token:
		// keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			return fmt.Errorf("push to %s: %w", u.Host, ue.Err)
		}
		return fmt.Errorf("push to %s: request failed", u.Host)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("push to %s: status %d: %s", u.Host, resp.StatusCode, truncate(strings.TrimSpace(string(body)), 120))
	}
	// Kuma answers {"ok":true} or {"ok":false,"msg":"Monitor not found or not active."}.
	if strings.Contains(string(body), `"ok":false`) {
		return fmt.Errorf("push to %s: refused: %s", u.Host, truncate(strings.TrimSpace(string(body)), 120))
	}
	return nil
}
