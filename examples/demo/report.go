package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is how a step ended.
type Result string

// Results of a step.
const (
	OK      Result = "ok"
	Failed  Result = "FAIL"
	Skipped Result = "skipped" // an earlier step it needs failed
)

// Step is one timed part of the run.
type Step struct {
	Name     string
	Result   Result
	Duration time.Duration
	Numbers  string // the key numbers, one line
	Err      error
}

// Report is the outcome of the job: every step in order.
type Report struct {
	Steps []Step
	Took  time.Duration
}

// OK reports whether every step passed.
func (r *Report) OK() bool {
	for _, s := range r.Steps {
		if s.Result != OK {
			return false
		}
	}
	return len(r.Steps) > 0
}

// Err joins the errors of the failed steps, each prefixed with its step.
func (r *Report) Err() error {
	var errs []error
	for _, s := range r.Steps {
		if s.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.Name, s.Err))
		}
	}
	return errors.Join(errs...)
}

// Step returns the named step.
func (r *Report) Step(name string) (Step, bool) {
	for _, s := range r.Steps {
		if s.Name == name {
			return s, true
		}
	}
	return Step{}, false
}

// WriteTable writes the report as an aligned table: step, result, duration,
// key numbers; a failed step's error follows on its own line.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tRESULT\tDURATION\tNUMBERS")
	for _, s := range r.Steps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, s.Result, round(s.Duration), s.Numbers)
		if s.Err != nil {
			fmt.Fprintf(tw, "\t\t\terror: %s\n", oneLine(s.Err.Error()))
		}
	}
	verdict := "all steps passed"
	if !r.OK() {
		verdict = "FAILED"
	}
	fmt.Fprintf(tw, "total\t%s\t%s\n", verdict, round(r.Took))
	return tw.Flush()
}

func round(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(time.Millisecond).String()
	default:
		return d.Round(time.Microsecond).String()
	}
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
