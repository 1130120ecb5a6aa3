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
	// Failure is why the run as a whole failed: it could not start (the
	// store unreachable, its key refused, a recipient refused, the lock
	// held: see Abort) or it was stopped (a signal). Nil when it ran to
	// its end, whatever its sources did.
	Failure error
}

// Failed reports whether the run or any source failed.
func (r Report) Failed() bool {
	if r.Failure != nil {
		return true
	}
	for _, x := range r.Results {
		if x.Err != nil {
			return true
		}
	}
	return false
}

// Err joins the run's Failure and the sources' errors (each names its
// source); a source that did not run because of the Failure adds nothing.
func (r Report) Err() error {
	var errs []error
	if r.Failure != nil {
		errs = append(errs, r.Failure)
	}
	for _, x := range r.Results {
		if x.Err != nil && !errors.Is(x.Err, ErrNotRun) {
			errs = append(errs, x.Err)
		}
	}
	return errors.Join(errs...)
}

// ErrNotRun is the error of a source that a run's Failure kept from
// running (Abort, or a stop before its turn).
var ErrNotRun = errors.New("not backed up")

// Run backs up every source in order, then notifies. A ctx cancelled on
// the way (SIGTERM) makes the report's Failure its cause and the sources
// not yet run ErrNotRun. It returns the report and a non-nil error when
// the run, any source, prune or notifier failed; a notifier's failure is
// a *NotifyError, so that a caller can tell "no backup" (rep.Failed())
// from "no notification".
func (r *Runner) Run(ctx context.Context) (Report, error) {
	rep := Report{Host: r.host(), Started: r.now()}
	if len(r.Sources) == 0 {
		return rep, errors.New("no sources configured")
	}
	for _, src := range r.Sources {
		if ctx.Err() != nil {
			rep.Results = append(rep.Results, Result{Source: src.Name(), Err: fmt.Errorf("%w: %w", ErrNotRun, context.Cause(ctx))})
			continue
		}
		rep.Results = append(rep.Results, r.one(ctx, src))
	}
	if ctx.Err() != nil {
		rep.Failure = fmt.Errorf("interrupted: %w", context.Cause(ctx))
	}
	rep.Finished = r.now()
	err := NotifyAll(ctx, r.Notifiers, func(ctx context.Context, n Notifier) error { return n.Notify(ctx, rep) })
	return rep, errors.Join(rep.Err(), err)
}

// Abort reports a run that failed before its first dump (the store
// unreachable or its key refused, a recipient refused, the lock held):
// every one of sources (names; nil = the Runner's Sources) is ErrNotRun,
// the report's Failure is cause, and every notifier hears of it, so that
// the failure alerts as a failed backup does. It returns the report and
// the notifiers' *NotifyError, if any.
func (r *Runner) Abort(ctx context.Context, sources []string, cause error) (Report, error) {
	now := r.now()
	rep := Report{Host: r.host(), Started: now, Finished: now, Failure: cause}
	if sources == nil {
		for _, s := range r.Sources {
			sources = append(sources, s.Name())
		}
	}
	for _, name := range sources {
		rep.Results = append(rep.Results, Result{Source: name, Err: fmt.Errorf("%w: %w", ErrNotRun, cause)})
	}
	return rep, NotifyAll(ctx, r.Notifiers, func(ctx context.Context, n Notifier) error { return n.Notify(ctx, rep) })
}

func (r *Runner) host() string {
	if r.Host != "" {
		return r.Host
	}
	h, _ := os.Hostname()
	return h
}

// NotifyError is a notifier that failed: whatever the run stored stands,
// but someone may not have heard of it.
type NotifyError struct {
	Notifier string // its type, e.g. "slacknotify.Notifier"
	Err      error
}

// Error is the notifier's own error, which names what it did ("post to
// the Slack webhook: ...").
func (e *NotifyError) Error() string { return e.Err.Error() }
func (e *NotifyError) Unwrap() error { return e.Err }

// NotifyAll has send tell every notifier, each within 30 seconds of its
// own that ctx's end does not cut short (a run stopped by SIGTERM still
// reports how far it got) but ctx's StopBounds.Notify does, and joins
// their errors, each a *NotifyError naming its notifier's type.
func NotifyAll[N any](ctx context.Context, notifiers []N, send func(context.Context, N) error) error {
	var errs []error
	for _, n := range notifiers {
		nctx, cancel := NotifyContext(ctx, 30*time.Second)
		if err := send(nctx, n); err != nil {
			errs = append(errs, &NotifyError{Notifier: strings.TrimPrefix(fmt.Sprintf("%T", n), "*"), Err: err})
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
