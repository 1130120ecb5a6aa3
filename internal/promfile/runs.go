package promfile

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Result is one source's outcome in one run of a cron job: a database dump
// of a backup run, a bucket of a mirror run.
type Result struct {
	Source   string        // "postgres", "redis", "mysql", "media"...
	Start    time.Time     // when the source's work began
	Duration time.Duration // how long it took
	Bytes    int64         // bytes written to the store (after compression and encryption)
	Objects  int64         // objects written (1 for a dump; files copied for a mirror)
	Failures int64         // objects that failed; a failed dump counts 1
	Err      error         // nil when the source succeeded; a failure even if Failures is 0
}

// OK reports whether the source succeeded.
func (r Result) OK() bool { return r.Err == nil && r.Failures == 0 }

// Runs holds the metrics of one cron job (backup, mirror) per source, with
// the names the deploy/ dashboards and rules use, for job "backup":
//
//	fediops_backup_last_run_timestamp_seconds{source}
//	fediops_backup_last_success_timestamp_seconds{source}
//	fediops_backup_success{source}            1 when the last run succeeded, else 0
//	fediops_backup_duration_seconds{source}   of the last run
//	fediops_backup_bytes{source}              written in the last run
//	fediops_backup_objects{source}            written in the last run
//	fediops_backup_failures{source}           objects that failed in the last run
//
// A run rarely covers every source, and a failed one has no new success
// time, so Write keeps what the previous run wrote for the sources (and the
// success times) this run did not renew: in the textfile by reading it
// back, at the Pushgateway by pushing each source as its own group.
type Runs struct {
	job string

	mu       sync.Mutex
	reg      *prometheus.Registry
	vecs     map[string]*prometheus.GaugeVec // by metric name
	observed map[string]bool                 // sources of this run: true when they succeeded
}

// NewRuns makes the metrics of job ("backup", "mirror"), registered with a
// registry of their own (Gatherer).
func NewRuns(job string) (*Runs, error) {
	if !jobRE.MatchString(job) {
		return nil, ErrJobName
	}
	r := &Runs{job: job, reg: prometheus.NewRegistry(), vecs: map[string]*prometheus.GaugeVec{}, observed: map[string]bool{}}
	for _, m := range []struct{ suffix, help string }{
		{"last_run_timestamp_seconds", "Unix time the source's last run started."},
		{"last_success_timestamp_seconds", "Unix time the source's last successful run started."},
		{"success", "1 if the source's last run succeeded, 0 if it failed."},
		{"duration_seconds", "How long the source's last run took."},
		{"bytes", "Bytes the source's last run wrote to the store."},
		{"objects", "Objects the source's last run wrote to the store."},
		{"failures", "Objects that failed in the source's last run (a failed dump counts 1)."},
	} {
		name := r.name(m.suffix)
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: m.help}, []string{"source"})
		if err := r.reg.Register(v); err != nil {
			return nil, fmt.Errorf("register %s: %w", name, err)
		}
		r.vecs[name] = v
	}
	return r, nil
}

func (r *Runs) name(suffix string) string { return "fediops_" + r.job + "_" + suffix }

// Gatherer returns the registry holding the metrics.
func (r *Runs) Gatherer() prometheus.Gatherer { return r.reg }

// Observe records one source's result.
func (r *Runs) Observe(res Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	src := res.Source
	ok := res.OK()
	failures := res.Failures
	if !ok && failures == 0 {
		failures = 1
	}
	start := float64(res.Start.UnixNano()) / 1e9
	r.vecs[r.name("last_run_timestamp_seconds")].WithLabelValues(src).Set(start)
	r.vecs[r.name("duration_seconds")].WithLabelValues(src).Set(res.Duration.Seconds())
	r.vecs[r.name("bytes")].WithLabelValues(src).Set(float64(res.Bytes))
	r.vecs[r.name("objects")].WithLabelValues(src).Set(float64(res.Objects))
	r.vecs[r.name("failures")].WithLabelValues(src).Set(float64(failures))
	if ok {
		r.vecs[r.name("success")].WithLabelValues(src).Set(1)
		r.vecs[r.name("last_success_timestamp_seconds")].WithLabelValues(src).Set(start)
	} else {
		r.vecs[r.name("success")].WithLabelValues(src).Set(0)
		// A success time from this process's earlier run stays.
	}
	r.observed[src] = ok
}

// Write sends the run's metrics where c says. The textfile keeps, from the
// file the previous run wrote, every sample of the sources this run did not
// observe and the last success time of those that failed. The Pushgateway
// gets one group per source (job=fediops_<job>, source=<source>, POST):
// the previous success time stays when a source failed.
func (r *Runs) Write(ctx context.Context, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	var errs []error
	if c.Dir != "" {
		errs = append(errs, r.writeFile(c.File(r.job)))
	}
	if c.PushURL != "" {
		errs = append(errs, r.push(ctx, c))
	}
	return errors.Join(errs...)
}

func (r *Runs) writeFile(name string) error {
	old, err := ReadFile(name)
	if err != nil {
		// A damaged file is replaced; the success times in it are lost.
		old = nil
	}
	r.mu.Lock()
	for fname, mf := range old {
		vec := r.vecs[fname]
		if vec == nil {
			continue
		}
		for _, m := range mf.GetMetric() {
			src := label(m, "source")
			ok, seen := r.observed[src]
			if seen && (ok || fname != r.name("last_success_timestamp_seconds")) {
				continue // renewed by this run
			}
			if seen && hasSample(r.reg, fname, src) {
				continue // this process saw a success earlier
			}
			if m.GetGauge() != nil {
				vec.WithLabelValues(src).Set(m.GetGauge().GetValue())
			}
		}
	}
	r.mu.Unlock()
	mfs, err := r.reg.Gather()
	if err != nil {
		return fmt.Errorf("gather %s: %w", r.job, err)
	}
	return WriteFile(name, mfs)
}

func (r *Runs) push(ctx context.Context, c Config) error {
	mfs, err := r.reg.Gather()
	if err != nil {
		return fmt.Errorf("gather %s: %w", r.job, err)
	}
	r.mu.Lock()
	var sources []string
	for s := range r.observed {
		sources = append(sources, s)
	}
	r.mu.Unlock()
	sort.Strings(sources)
	var errs []error
	for _, src := range sources {
		part := bySource(mfs, src)
		errs = append(errs, c.push(ctx, "fediops_"+r.job, map[string]string{"source": src}, part, true))
	}
	return errors.Join(errs...)
}

// bySource keeps the samples of one source, without the source label (the
// Pushgateway adds it from the grouping key).
func bySource(mfs []*dto.MetricFamily, src string) []*dto.MetricFamily {
	var out []*dto.MetricFamily
	for _, mf := range mfs {
		var ms []*dto.Metric
		for _, m := range mf.GetMetric() {
			if label(m, "source") != src {
				continue
			}
			c := &dto.Metric{Gauge: m.Gauge, Counter: m.Counter, Untyped: m.Untyped, TimestampMs: m.TimestampMs}
			for _, lp := range m.GetLabel() {
				if lp.GetName() != "source" {
					c.Label = append(c.Label, lp)
				}
			}
			ms = append(ms, c)
		}
		if len(ms) > 0 {
			out = append(out, &dto.MetricFamily{Name: mf.Name, Help: mf.Help, Type: mf.Type, Metric: ms})
		}
	}
	return out
}

// Gauge is the value of family name's gauge labelled source=src in mfs
// (as ReadFile returns them), and whether there is one.
func Gauge(mfs map[string]*dto.MetricFamily, name, src string) (float64, bool) {
	for _, m := range mfs[name].GetMetric() {
		if label(m, "source") == src {
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

func label(m *dto.Metric, name string) string {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}

func hasSample(g prometheus.Gatherer, name, src string) bool {
	mfs, err := g.Gather()
	if err != nil {
		return false
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label(m, "source") == src {
				return true
			}
		}
	}
	return false
}
