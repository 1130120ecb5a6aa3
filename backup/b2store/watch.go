package b2store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// watch is the client's transport: it names the B2 call in a transport
// error (blazer passes such errors on as text), ends a request that moves
// no byte for stall (a server that accepted the connection and went
// silent: blazer would wait for ever, Go's transport for its
// ResponseHeaderTimeout), and records in the call's opState a failure
// that no retry mends, which blazer's text would hide.
type watch struct {
	next  http.RoundTripper
	stall time.Duration
}

// errStall is a request that moved no byte for the stall window.
type errStall struct {
	method, host string
	after        time.Duration
}

func (e *errStall) Error() string {
	return fmt.Sprintf("no answer from %s for %s", e.host, e.after)
}

// Unreachable is a failure no retry mends: the connection was refused,
// B2's host name does not resolve or its address is malformed. Client calls end with it at once.
type Unreachable struct {
	Method string // the B2 call, e.g. "b2_authorize_account"
	Err    error  // the network's error (*net.OpError, *net.DNSError)
}

func (e *Unreachable) Error() string { return e.Method + ": " + e.Err.Error() }
func (e *Unreachable) Unwrap() error { return e.Err }

// unreachable reports whether err is a refused connection or a name that
// does not resolve (as opposed to a timeout or a reset, which a retry may
// mend).
func unreachable(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns.IsNotFound || !dns.IsTimeout && !dns.IsTemporary
	}
	var addr *net.AddrError // "dial tcp: address 99999: invalid port"
	return errors.As(err, &addr) || errors.Is(err, syscall.ECONNREFUSED)
}

// opState is one Client call (with its retries), carried in its context
// for the transport.
type opState struct {
	mu    sync.Mutex
	fatal *Unreachable
}

type opKey struct{}

func withOp(ctx context.Context) (context.Context, *opState) {
	st := &opState{}
	return context.WithValue(ctx, opKey{}, st), st
}

func (st *opState) setFatal(u *Unreachable) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.fatal == nil {
		st.fatal = u
	}
}

func (st *opState) unreachable() *Unreachable {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.fatal
}

func (t watch) RoundTrip(r *http.Request) (*http.Response, error) {
	method := r.Header.Get("X-Blazer-Method")
	ctx, cancel := context.WithCancelCause(r.Context())
	stalled := &errStall{method: method, host: r.URL.Host, after: t.stall}
	timer := time.AfterFunc(t.stall, func() { cancel(stalled) })
	if r.Body != nil && r.Body != http.NoBody {
		r2 := r.Clone(ctx)
		r2.Body = &progressBody{ReadCloser: r.Body, timer: timer, stall: t.stall}
		r = r2
	} else {
		r = r.WithContext(ctx)
	}
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		timer.Stop()
		cancel(nil)
		switch {
		case r.Context().Err() != nil && errors.Is(context.Cause(ctx), stalled):
			err = stalled
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			return nil, err // blazer knows these as they are
		case unreachable(err):
			u := &Unreachable{Method: method, Err: err}
			if st, ok := r.Context().Value(opKey{}).(*opState); ok {
				st.setFatal(u)
			}
			return nil, u
		}
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	timer.Reset(t.stall) // an answer: the body has its own window
	resp.Body = &watchedBody{ReadCloser: resp.Body, timer: timer, stall: t.stall, ctx: ctx, cancel: cancel, stalled: stalled}
	return resp, nil
}

// progressBody restarts the stall window whenever the request's body
// yields bytes (they are on their way to B2).
type progressBody struct {
	io.ReadCloser
	timer *time.Timer
	stall time.Duration
}

func (b *progressBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.timer.Reset(b.stall)
	}
	return n, err
}

// watchedBody is an answer's body: each byte read restarts the stall
// window, and a read cut by it says so.
type watchedBody struct {
	io.ReadCloser
	timer   *time.Timer
	stall   time.Duration
	ctx     context.Context
	cancel  context.CancelCauseFunc
	stalled *errStall
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.timer.Reset(b.stall)
	}
	if err != nil && err != io.EOF && errors.Is(context.Cause(b.ctx), b.stalled) {
		err = fmt.Errorf("%s: %w", b.stalled.method, b.stalled)
	}
	return n, err
}

func (b *watchedBody) Close() error {
	b.timer.Stop()
	err := b.ReadCloser.Close()
	b.cancel(nil)
	return err
}
