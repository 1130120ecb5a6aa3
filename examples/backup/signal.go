package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// defaultStopGrace is how long a run may clean up after SIGTERM or SIGINT
// (cancel its unfinished upload, notify) before signalContext ends the
// process; systemd's default TimeoutStopSec is 90 s.
const defaultStopGrace = 30 * time.Second

// exit ends the process when the grace period is over (a test replaces it).
var exit = osExit

var osExit = os.Exit

// signalContext returns a context that SIGINT or SIGTERM cancels. The first signal cancels the context and starts the
// grace period: if the process is still running when it is over, it logs
// that and exits with status 1, so that a run stuck on a dead connection
// never holds its Lock for long. A second signal ends the process at once
// (the signal's default action). stop releases the signals; call it when
// the work is done.
func signalContext(grace time.Duration, log *slog.Logger) (ctx context.Context, stop func()) {
	if grace <= 0 {
		grace = defaultStopGrace
	}
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	var once sync.Once
	stop = func() {
		once.Do(func() {
			signal.Stop(sigs)
			close(done)
			cancel(context.Canceled)
		})
	}
	go func() {
		var sig os.Signal
		select {
		case <-done:
			return
		case sig = <-sigs:
		}
		cancel(fmt.Errorf("%v received", sig))
		signal.Stop(sigs) // the next signal takes its default action: the process ends
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			log.Error("still running after the stop signal's grace period, exiting", "signal", sig.String(), "grace", grace)
			exit(1)
		}
	}()
	return ctx, stop
}
