package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Runner is one scheduled run: back up every source through the pipeline,
// prune each source that succeeded, and send one report to every notifier.
type Runner struct {
	Pipeline
	Sources   []Source
	Retention Retention
	NoPrune   bool       // skip retention entirely
	Notifiers []Notifier // one message per run
}

// Result is one source's outcome in a run.
type Result struct {
	Source      string
	Object      string
	DumpBytes   int64
	StoredBytes int64
	Duration    time.Duration
	Pruned      int
	Err         error
}

// Report is a whole run.
type Report struct {
	Host     string
	Started  time.Time
	Finished time.Time
	Results  []Result
}

// Failed reports whether any source failed.
func (r Report) Failed() bool {
	for _, x := range r.Results {
		if x.Err != nil {
			return true
		}
	}
	return false
}

// Err joins the sources' errors (each names its source).
func (r Report) Err() error {
	var errs []error
	for _, x := range r.Results {
		if x.Err != nil {
			errs = append(errs, x.Err)
		}
	}
	return errors.Join(errs...)
}

// Run backs up every source in order, then notifies. It returns the
// report and a non-nil error when any source, prune or notifier failed.
func (r *Runner) Run(ctx context.Context) (Report, error) {
	rep := Report{Host: r.Host, Started: r.now()}
	if rep.Host == "" {
		rep.Host, _ = os.Hostname()
	}
	if len(r.Sources) == 0 {
		return rep, errors.New("no sources configured")
	}
	for _, src := range r.Sources {
		rep.Results = append(rep.Results, r.one(ctx, src))
	}
	rep.Finished = r.now()
	err := NotifyAll(ctx, r.Notifiers, func(ctx context.Context, n Notifier) error { return n.Notify(ctx, rep) })
	return rep, errors.Join(rep.Err(), err)
}

// NotifyAll has send tell every notifier, each within 30 seconds of its
// own that ctx's end does not cut short (a run stopped by SIGTERM still
// reports how far it got), and joins their errors, each naming its
// notifier's type.
func NotifyAll[N any](ctx context.Context, notifiers []N, send func(context.Context, N) error) error {
	var errs []error
	for _, n := range notifiers {
		nctx, cancel := NotifyContext(ctx, 30*time.Second)
		if err := send(nctx, n); err != nil {
			errs = append(errs, fmt.Errorf("notify %s: %w", strings.TrimPrefix(fmt.Sprintf("%T", n), "*"), err))
		}
		cancel()
	}
	return errors.Join(errs...)
}

func (r *Runner) one(ctx context.Context, src Source) Result {
	res := Result{Source: src.Name()}
	t0 := time.Now()
	if c, ok := r.Store.(Canceler); ok {
		if n, err := c.CancelUnfinished(ctx, r.Prefix+src.Name()+"/"); err != nil {
			r.logger().Warn("cancel unfinished uploads", "source", src.Name(), "err", err)
		} else if n > 0 {
			r.logger().Info("cancelled unfinished uploads of an earlier run", "source", src.Name(), "count", n)
		}
	}
	m, err := r.Backup(ctx, src)
	res.Duration = time.Since(t0)
	res.Object, res.DumpBytes, res.StoredBytes = m.Object, m.DumpBytes, m.StoredBytes
	if err != nil {
		res.Err = err
		r.logger().Error("backup failed", "source", src.Name(), "err", err)
		return res
	}
	if r.NoPrune {
		return res
	}
	pr, err := Prune(ctx, r.Store, r.Prefix, src.Name(), r.Retention, r.now(), false)
	res.Pruned = len(pr.Deleted)
	if err != nil {
		res.Err = fmt.Errorf("prune %s after storing %s: %w", src.Name(), m.Object, err)
		r.logger().Error("prune failed", "source", src.Name(), "err", err)
	}
	return res
}
