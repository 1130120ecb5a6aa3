package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/fediops/fediops/backup"
)

// console is stderr on a terminal: what is written to it (log lines,
// errors) goes above the progress bar, when one is shown. Without a
// terminal there is no console and no bar: a command that succeeds under
// cron or a timer prints nothing.
type console struct {
	w io.Writer

	mu  sync.Mutex
	bar *progressbar.ProgressBar
}

func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bar != nil {
		_ = c.bar.Clear()
	}
	n, err := c.w.Write(p)
	if c.bar != nil {
		_ = c.bar.RenderBlank()
	}
	return n, err
}

// meter is one progress bar: bytes (a known total shows a bar and the
// time left), their rate and a description with the objects done, in IEC
// units (KiB, MiB). Its Write only counts. A nil meter does nothing.
type meter struct {
	c    *console
	bar  *progressbar.ProgressBar
	n    atomic.Int64
	desc atomic.Value // string
	stop chan struct{}
	done chan struct{}
}

// start shows a bar for max bytes (-1: unknown) until the meter's finish.
func (c *console) start(max int64, desc string) *meter {
	if c == nil {
		return nil
	}
	m := &meter{c: c, stop: make(chan struct{}), done: make(chan struct{})}
	m.desc.Store(desc)
	c.mu.Lock()
	m.bar = progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(c.w),
		progressbar.OptionShowBytes(true),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSetWidth(24),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionSetRenderBlankState(true),
	)
	c.bar = m.bar
	c.mu.Unlock()
	go m.tick()
	return m
}

// tick redraws the bar five times a second.
func (m *meter) tick() {
	defer close(m.done)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			m.draw()
			return
		case <-t.C:
			m.draw()
		}
	}
}

func (m *meter) draw() {
	m.c.mu.Lock()
	defer m.c.mu.Unlock()
	m.bar.Describe(m.desc.Load().(string))
	_ = m.bar.Set64(m.n.Load())
}

func (m *meter) Write(p []byte) (int, error) {
	if m != nil {
		m.n.Add(int64(len(p)))
	}
	return len(p), nil
}

// describe changes the description (the objects done).
func (m *meter) describe(format string, a ...any) {
	if m != nil {
		m.desc.Store(fmt.Sprintf(format, a...))
	}
}

// finish draws the bar a last time and leaves it on its own line.
func (m *meter) finish() {
	if m == nil {
		return
	}
	close(m.stop)
	<-m.done
	m.c.mu.Lock()
	defer m.c.mu.Unlock()
	m.c.bar = nil
	fmt.Fprintln(m.c.w)
}

// meteredStore counts the bytes read from its objects into a meter
// (restore, verify): the downloads are what takes the time.
type meteredStore struct {
	backup.Store
	m *meter
}

func (s meteredStore) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	rc, err := s.Store.Open(ctx, name)
	if err != nil || s.m == nil {
		return rc, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.TeeReader(rc, s.m), rc}, nil
}
