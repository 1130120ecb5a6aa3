package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/fediops/fediops/backup"
)

// The first signal (ctx cancelled with its cause) bounds what follows:
// cleanup by half the grace, notifications before its end, and a command
// that ignores the cancellation is ended with status 1 at the grace.
func TestStopGraceBoundsThenExits(t *testing.T) {
	exited := make(chan int, 1)
	exit = func(code int) { exited <- code }
	t.Cleanup(func() { exit = osExit })
	parent, cancel := context.WithCancelCause(context.Background())
	ctx, disarm := withStopGrace(parent, 400*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer disarm()
	cleanup, cancelCleanup := backup.CleanupContext(ctx, time.Minute)
	defer cancelCleanup()
	notify, cancelNotify := backup.NotifyContext(ctx, time.Minute)
	defer cancelNotify()
	if ctx.Err() != nil || cleanup.Err() != nil {
		t.Fatal("cancelled before any signal")
	}
	t0 := time.Now()
	cancel(errors.New("terminated signal received"))
	if cause := context.Cause(ctx); cause == nil || errors.Is(cause, context.Canceled) {
		t.Errorf("cause %v, want the signal", cause)
	}
	<-cleanup.Done()
	if d := time.Since(t0); d < 150*time.Millisecond || d > 350*time.Millisecond {
		t.Errorf("cleanup cut after %s, want about 200ms", d)
	}
	<-notify.Done()
	if d := time.Since(t0); d < 300*time.Millisecond || d > 400*time.Millisecond {
		t.Errorf("notification cut after %s, want about 360ms", d)
	}
	select {
	case code := <-exited:
		if code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a command that ignores the cancelled context is not ended after the grace")
	}
}

func TestStopGraceDisarmEndsQuietly(t *testing.T) {
	exited := make(chan int, 1)
	exit = func(code int) { exited <- code }
	t.Cleanup(func() { exit = osExit })
	parent, cancel := context.WithCancel(context.Background())
	_, disarm := withStopGrace(parent, 50*time.Millisecond, nil)
	disarm()
	cancel()
	select {
	case code := <-exited:
		t.Fatalf("exit(%d) after the command ended", code)
	case <-time.After(200 * time.Millisecond):
	}
}
