package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
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

// Err joins the sources' errors.
func (r Report) Err() error {
	var errs []error
	for _, x := range r.Results {
		if x.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", x.Source, x.Err))
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
		return rep, errors.New("backup: no sources configured")
	}
	for _, src := range r.Sources {
		rep.Results = append(rep.Results, r.one(ctx, src))
	}
	rep.Finished = r.now()
	err := rep.Err()
	for _, n := range r.Notifiers {
		nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		if nerr := n.Notify(nctx, rep); nerr != nil {
			err = errors.Join(err, fmt.Errorf("backup: notify: %w", nerr))
		}
		cancel()
	}
	return rep, err
}

func (r *Runner) one(ctx context.Context, src Source) Result {
	res := Result{Source: src.Name()}
	t0 := time.Now()
	if c, ok := r.Store.(Canceler); ok {
		if n, err := c.CancelUnfinished(ctx, r.Prefix+src.Name()+"/"); err != nil {
			r.logger().Warn("backup: cancel unfinished uploads", "source", src.Name(), "err", err)
		} else if n > 0 {
			r.logger().Info("backup: cancelled unfinished uploads of an earlier run", "source", src.Name(), "count", n)
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
		res.Err = fmt.Errorf("backup stored, prune failed: %w", err)
		r.logger().Error("prune failed", "source", src.Name(), "err", err)
	}
	return res
}
