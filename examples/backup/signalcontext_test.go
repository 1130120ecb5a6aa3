package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"
)

func TestSignalContextCancelsThenExits(t *testing.T) {
	exited := make(chan int, 1)
	exit = func(code int) { exited <- code }
	t.Cleanup(func() { exit = osExit })
	ctx, stop := signalContext(300*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer stop()
	if ctx.Err() != nil {
		t.Fatal("cancelled before any signal")
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("SIGTERM did not cancel the context")
	}
	if cause := context.Cause(ctx); cause == nil || errors.Is(cause, context.Canceled) {
		t.Errorf("cause %v, want the signal", cause)
	}
	select {
	case code := <-exited:
		if code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a run that ignores the cancelled context is not ended after the grace period")
	}
}

func TestSignalContextStopEndsQuietly(t *testing.T) {
	exited := make(chan int, 1)
	exit = func(code int) { exited <- code }
	t.Cleanup(func() { exit = osExit })
	ctx, stop := signalContext(50*time.Millisecond, nil)
	stop()
	stop() // twice is fine
	if ctx.Err() == nil {
		t.Error("stop did not cancel the context")
	}
	select {
	case code := <-exited:
		t.Fatalf("exit(%d) after a normal stop", code)
	case <-time.After(200 * time.Millisecond):
	}
}
