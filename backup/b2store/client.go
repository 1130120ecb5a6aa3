package b2store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/Backblaze/blazer/base"

	"github.com/fediops/fediops/backup"
)

// Client is one B2 bucket through the native API, call by call (blazer's
// base package): what Store and backup/mirror share. It authorizes again
// when B2 says the token expired, retries what B2 says may succeed later
// until RetryFor has passed since the first failure, and never retries
// what B2 refused for good. Dial makes one.
type Client struct {
	cfg Config

	mu     sync.Mutex // guards bucket: a re-authorization replaces it
	bucket *base.Bucket

	urls chan *base.URL // idle upload URLs (one upload at a time each)
}

// File is one file version in B2.
type File struct {
	Name     string
	ID       string
	Size     int64
	Action   string // "upload", "hide", "start" (unfinished large file) or "folder"
	Uploaded time.Time
	Info     map[string]string // file info (X-Bz-Info-*)
}

func fileOf(f *base.File) File {
	out := File{Name: f.Name, ID: f.ID, Size: f.Size, Action: f.Status, Uploaded: f.Timestamp}
	if f.Info != nil {
		out.Info = f.Info.Info
	}
	return out
}

// Dial checks cfg, authorizes and finds the bucket (it does not create
// one), giving up after Config.RetryFor.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	c := &Client{cfg: cfg, urls: make(chan *base.URL, 64)}
	if err := c.retry(ctx, "", func(ctx context.Context, _ *base.Bucket) error { return c.authorize(ctx) }); err != nil {
		return nil, err
	}
	return c, nil
}

// Config is the client's configuration, defaults filled in.
func (c *Client) Config() Config { return c.cfg }

// authorize gets a new account token and the bucket bound to it.
func (c *Client) authorize(ctx context.Context) error {
	opts := []base.AuthOption{base.Transport(c.cfg.Transport), base.UserAgent(c.cfg.UserAgent)}
	if c.cfg.APIBase != "" {
		opts = append(opts, base.SetAPIBase(c.cfg.APIBase))
	}
	acct, err := base.AuthorizeAccount(ctx, c.cfg.KeyID, c.cfg.Key, opts...)
	if err != nil {
		return fmt.Errorf("authorize key %s: %w", c.cfg.KeyID, describe(err))
	}
	bs, err := acct.ListBuckets(ctx, c.cfg.Bucket)
	if err != nil {
		return fmt.Errorf("find bucket %s: %w", c.cfg.Bucket, describe(err))
	}
	for _, b := range bs {
		if b.Name == c.cfg.Bucket {
			c.mu.Lock()
			c.bucket = b
			c.mu.Unlock()
			return nil
		}
	}
	return fmt.Errorf("find bucket %s: %w (or the key may not see it)", c.cfg.Bucket, errNoBucket)
}

var errNoBucket = errors.New("not found")

func (c *Client) current() *base.Bucket {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bucket
}

// cutShort is a body that ended before its Content-Length: retried.
type cutShort struct{ err error }

func (e cutShort) Error() string { return "body cut short: " + e.err.Error() }
func (e cutShort) Unwrap() error { return e.err }

// action is blazer's advice on err, which may be wrapped (blazer's own
// Action looks at the outermost error only). Errors that are not B2's
// answers are the network's (a connection reset while an answer was
// read) and worth a retry, except a certificate B2's cannot be, a missing
// bucket and a cancelled context.
func action(err error) base.ErrAction {
	var cut cutShort
	var gone *Unreachable
	var unknownCA x509.UnknownAuthorityError
	var badCert *tls.CertificateVerificationError
	switch {
	case errors.As(err, &cut):
		return base.Retry
	case errors.As(err, &gone), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, errNoBucket),
		errors.As(err, &unknownCA), errors.As(err, &badCert):
		return base.Punt
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if code, _ := base.Code(e); code != 0 || base.Backoff(e) > 0 {
			return base.Action(e)
		}
	}
	return base.Retry
}

// backoffHint is B2's Retry-After, if any, of a wrapped error.
func backoffHint(err error) time.Duration {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if d := base.Backoff(e); d > 0 {
			return d
		}
	}
	return 0
}

// RetryAfter is the wait B2 asked for (Retry-After) in err, or 0.
func RetryAfter(err error) time.Duration { return backoffHint(err) }

// Retryable reports whether err (from any Client call) is one that a
// later attempt may not get: a server error, an expired token, a
// connection that failed or a body cut short, as opposed to a request B2
// refused for good.
func Retryable(err error) bool { return action(err) != base.Punt }

// describe turns a blazer error into one that says the call, the HTTP
// status and B2's reason, or for a call that got no answer, the call and
// the network's error; others stay as they are. Action and Code still see
// blazer's error inside.
func describe(err error) error {
	if code, kind, msg := base.MsgCode(err); code != 0 {
		method := strings.SplitN(err.Error(), ":", 2)[0]
		return &APIError{Method: method, Status: code, Code: kind, Message: msg, err: err}
	}
	if base.Backoff(err) > 0 {
		return noAnswer{err}
	}
	return err
}

// noAnswer is blazer's error for a call that got no answer, which names
// the call (the transport, watch) after blazer's "b2 error: ".
type noAnswer struct{ err error }

func (e noAnswer) Error() string { return strings.TrimPrefix(e.err.Error(), "b2 error: ") }
func (e noAnswer) Unwrap() error { return e.err }

// APIError is B2's answer to one call that failed.
type APIError struct {
	Method  string // e.g. "b2_upload_part"
	Status  int    // HTTP status
	Code    string // B2's code, e.g. "service_unavailable"
	Message string
	err     error
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("%s: HTTP %d", e.Method, e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Unwrap returns blazer's error, which its Action and Code understand.
func (e *APIError) Unwrap() error { return e.err }

// retry runs op (with the current bucket and a context that op must pass
// to blazer) until it succeeds, B2 refuses for good, B2 cannot be reached
// (a refused connection, a name that does not resolve: at once, with that
// cause), ctx ends, or RetryFor has passed since the call began: each
// call, its retries and waits included, is bounded as a whole (an attempt
// still moving bytes is not cut; one that moves none for RetryFor is). An
// expired token is renewed on the way. Each retry is logged at info with
// its cause. Its errors start with "<what>: " when what is set; the B2
// call is named by the error itself.
func (c *Client) retry(ctx context.Context, what string, op func(context.Context, *base.Bucket) error) error {
	if what != "" {
		if err := c.retry(ctx, "", op); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
	start := time.Now()
	for attempt := 0; ; attempt++ {
		octx, st := withOp(ctx)
		err := op(octx, c.current())
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if u := st.unreachable(); u != nil {
			return u
		}
		act := action(err)
		if act == base.Punt {
			return describe(err)
		}
		now := time.Now()
		if now.Sub(start) >= c.cfg.RetryFor {
			return fmt.Errorf("no usable answer from B2 for %s: %w", c.cfg.RetryFor, describe(err))
		}
		if act == base.ReAuthenticate {
			if aerr := c.authorize(octx); aerr == nil {
				continue
			} else if u := st.unreachable(); u != nil {
				return u
			} else if action(aerr) == base.Punt {
				return describe(aerr)
			}
		}
		wait := backoffHint(err)
		if wait <= 0 {
			wait = c.cfg.Backoff << min(attempt, 5)
			wait = min(wait, 30*time.Second)
			wait += time.Duration(rand.Int64N(int64(wait)/4 + 1))
		}
		// Try once more when the bound is reached, not long after it.
		wait = max(min(wait, start.Add(c.cfg.RetryFor).Sub(now)), time.Millisecond)
		c.cfg.Logger.InfoContext(ctx, "B2 gave no usable answer; retrying", "err", describe(err), "attempt", attempt+1,
			"wait", wait.Round(time.Millisecond), "gives_up_in", start.Add(c.cfg.RetryFor).Sub(now).Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		case <-t.C:
		}
	}
}

// list pages through b2_list_file_names (versions false: the newest
// version of each name) or b2_list_file_versions (every version, newest
// first within a name), 1000 per call.
func (c *Client) list(ctx context.Context, prefix string, versions bool) iter.Seq2[File, error] {
	return func(yield func(File, error) bool) {
		var name, id string
		for page := 0; page < 1_000_000; page++ {
			var files []*base.File
			var nextName, nextID string
			err := c.retry(ctx, "", func(ctx context.Context, b *base.Bucket) error {
				var err error
				if versions {
					files, nextName, nextID, err = b.ListFileVersions(ctx, 1000, name, id, prefix, "")
				} else {
					files, nextName, err = b.ListFileNames(ctx, 1000, name, prefix, "")
				}
				return err
			})
			if err != nil {
				yield(File{}, err)
				return
			}
			for _, f := range files {
				if !strings.HasPrefix(f.Name, prefix) {
					continue
				}
				if !yield(fileOf(f), nil) {
					return
				}
			}
			if nextName == "" || len(files) == 0 {
				return
			}
			name, id = nextName, nextID
		}
	}
}

// List yields the newest version of every name under prefix, in name
// order, hide markers included (Action "hide").
func (c *Client) List(ctx context.Context, prefix string) iter.Seq2[File, error] {
	return c.list(ctx, prefix, false)
}

// Versions yields every version of every name under prefix, in name
// order and newest first within a name.
func (c *Client) Versions(ctx context.Context, prefix string) iter.Seq2[File, error] {
	return c.list(ctx, prefix, true)
}

// CancelUnfinished cancels the unfinished large files under prefix (those
// a killed process left behind: they cost storage and are never listed)
// and reports how many it cancelled.
func (c *Client) CancelUnfinished(ctx context.Context, prefix string) (int, error) {
	var todo []*base.File
	cont := ""
	for range 10_000 {
		var files []*base.File
		var next string
		err := c.retry(ctx, "", func(ctx context.Context, b *base.Bucket) error {
			var err error
			files, next, err = b.ListUnfinishedLargeFiles(ctx, 100, cont)
			return err
		})
		if err != nil {
			return 0, err
		}
		for _, f := range files {
			if strings.HasPrefix(f.Name, prefix) {
				todo = append(todo, f)
			}
		}
		if next == "" || len(files) == 0 {
			break
		}
		cont = next
	}
	for i, f := range todo {
		if err := c.cancelLarge(ctx, f.Name, f.ID); err != nil {
			return i, err
		}
	}
	return len(todo), nil
}

func (c *Client) cancelLarge(ctx context.Context, name, id string) error {
	return c.retry(ctx, "cancel unfinished large file "+name, func(ctx context.Context, b *base.Bucket) error {
		return b.File(id, name).AsLargeFile().CancelLargeFile(ctx)
	})
}

// notPresent reports whether B2 answered that a file (version) is not
// there.
func notPresent(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if code, kind, _ := base.MsgCode(e); code == http.StatusNotFound || code == http.StatusBadRequest && kind == "file_not_present" {
			return true
		}
	}
	return false
}

// DeleteVersion removes one file version; one that is already gone is not
// an error.
func (c *Client) DeleteVersion(ctx context.Context, name, id string) error {
	err := c.retry(ctx, "", func(ctx context.Context, b *base.Bucket) error {
		return b.File(id, name).DeleteFileVersion(ctx)
	})
	if notPresent(err) {
		return nil
	}
	return err
}

// Delete removes every version of name (B2 keeps old versions of a name);
// a name with none is not an error.
func (c *Client) Delete(ctx context.Context, name string) error {
	for range 100 {
		var ids []string
		err := c.retry(ctx, "", func(ctx context.Context, b *base.Bucket) error {
			files, _, _, err := b.ListFileVersions(ctx, 100, name, "", name, "")
			ids = ids[:0]
			for _, f := range files {
				if f.Name == name {
					ids = append(ids, f.ID)
				}
			}
			return err
		})
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		for _, id := range ids {
			if err := c.DeleteVersion(ctx, name, id); err != nil {
				return err
			}
		}
	}
	return errors.New("more than 10,000 versions")
}

// Stat describes the newest version of name, or returns
// backup.ErrNotExist.
func (c *Client) Stat(ctx context.Context, name string) (File, error) {
	var f File
	err := c.retry(ctx, "", func(ctx context.Context, b *base.Bucket) error {
		// The version's id, then what it is (a HEAD's Content-Length is a
		// proxy's to change).
		fr, err := b.DownloadFileByName(ctx, name, 0, 0, true)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, fr)
		fr.Close()
		fi, err := b.File(fr.ID, name).GetFileInfo(ctx)
		if err != nil {
			return err
		}
		f = File{Name: name, ID: fr.ID, Size: fi.Size, Action: fi.Status, Uploaded: fi.Timestamp, Info: fi.Info}
		return nil
	})
	if notPresent(err) {
		return File{}, backup.ErrNotExist
	}
	return f, err
}
