// Package b2store is the Backblaze B2 backup.Store: Open a bucket with a
// Config (ConfigFromEnv reads B2_APPLICATION_KEY_ID, B2_APPLICATION_KEY and
// B2_BUCKET) and hand the *Store to backup.Runner.
//
// It talks to B2's native API through Backblaze/blazer, streaming uploads in
// ChunkSize parts (large files) with a bounded number of parts in memory:
// peak buffer memory is about (ConcurrentUploads + 2) × ChunkSize. A failed
// Put cancels its unfinished large file (blazer's writer never does), so a
// failed backup costs no storage and is never listed. b2.APIBase points it
// at a stand-in such as internal/b2fake.
package b2store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Backblaze/blazer/b2"
	"github.com/Backblaze/blazer/base"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/backup"
)

// Defaults for Config's zero values.
const (
	DefaultChunkSize           = 5_000_000 // bytes per part, B2's minimum: the least memory
	DefaultConcurrentUploads   = 1
	DefaultConcurrentDownloads = 2
	MinChunkSize               = 5_000_000
	DefaultRetryFor            = 2 * time.Minute
	// responseTimeout bounds the wait for an answer once a request is sent,
	// so that a connection that went silent is an error blazer retries.
	responseTimeout = 5 * time.Minute
)

// Config says which bucket to use and how much memory uploads may take.
type Config struct {
	KeyID  string // B2_APPLICATION_KEY_ID
	Key    string // B2_APPLICATION_KEY (never logged)
	Bucket string // B2_BUCKET

	// APIBase is the authorization endpoint; empty means Backblaze's
	// production API. Tests point it at internal/b2fake (B2_API_BASE).
	APIBase string

	ChunkSize           int // part size for uploads and downloads; 0 = DefaultChunkSize
	ConcurrentUploads   int // parts in flight; 0 = DefaultConcurrentUploads
	ConcurrentDownloads int // ranges in flight; 0 = DefaultConcurrentDownloads

	// RetryFor is how long an upload, a download or another call keeps
	// retrying while B2 gives no usable answer (connection errors, 5xx,
	// 429); blazer alone retries those for ever. 0 = DefaultRetryFor.
	RetryFor time.Duration

	Logger *slog.Logger // nil = slog.Default()
}

// ConfigFromEnv reads B2_APPLICATION_KEY_ID, B2_APPLICATION_KEY, B2_BUCKET,
// and optionally B2_API_BASE, B2_CHUNK_SIZE, B2_CONCURRENT_UPLOADS and
// B2_RETRY_FOR (a duration such as 2m) through env, then checks the result.
func ConfigFromEnv(env fediops.Lookup) (Config, error) {
	get := func(k string) string { v, _ := env(k); return v }
	c := Config{KeyID: get("B2_APPLICATION_KEY_ID"), Key: get("B2_APPLICATION_KEY"),
		Bucket: get("B2_BUCKET"), APIBase: get("B2_API_BASE")}
	for key, dst := range map[string]*int{"B2_CHUNK_SIZE": &c.ChunkSize, "B2_CONCURRENT_UPLOADS": &c.ConcurrentUploads} {
		if v := get(key); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return c, fmt.Errorf("b2store: %s=%q: not a number", key, v)
			}
			*dst = n
		}
	}
	if v := get("B2_RETRY_FOR"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return c, fmt.Errorf("b2store: B2_RETRY_FOR=%q: not a duration (such as 2m)", v)
		}
		c.RetryFor = d
	}
	return c, c.Validate()
}

// Validate names the first missing or bad field.
func (c Config) Validate() error {
	switch {
	case c.KeyID == "":
		return errors.New("b2store: B2_APPLICATION_KEY_ID (Config.KeyID) is empty")
	case c.Key == "":
		return errors.New("b2store: B2_APPLICATION_KEY (Config.Key) is empty")
	case c.Bucket == "":
		return errors.New("b2store: B2_BUCKET (Config.Bucket) is empty")
	case c.ChunkSize != 0 && c.ChunkSize < MinChunkSize:
		return fmt.Errorf("b2store: ChunkSize %d is below B2's minimum part size %d", c.ChunkSize, MinChunkSize)
	case c.ConcurrentUploads < 0 || c.ConcurrentDownloads < 0:
		return errors.New("b2store: ConcurrentUploads and ConcurrentDownloads must not be negative")
	case c.RetryFor < 0:
		return errors.New("b2store: RetryFor must not be negative")
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.ChunkSize == 0 {
		c.ChunkSize = DefaultChunkSize
	}
	if c.ConcurrentUploads == 0 {
		c.ConcurrentUploads = DefaultConcurrentUploads
	}
	if c.ConcurrentDownloads == 0 {
		c.ConcurrentDownloads = DefaultConcurrentDownloads
	}
	if c.RetryFor == 0 {
		c.RetryFor = DefaultRetryFor
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Store is a B2 bucket as a backup.Store.
type Store struct {
	cfg    Config
	bucket *b2.Bucket

	// listing uses blazer's base package: one b2_list_file_names call per
	// 1000 names with sizes and times, where b2.Bucket.List would need a
	// b2_get_file_info call per object.
	mu   sync.Mutex
	base *base.Bucket
}

var _ backup.Store = (*Store)(nil)
var _ backup.Canceler = (*Store)(nil)

// Open authorizes with B2 and finds the bucket (it does not create one),
// giving up after Config.RetryFor.
func Open(ctx context.Context, cfg Config, opts ...b2.ClientOption) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	// blazer retries connection errors for ever: an unreachable B2 must
	// fail the command, not keep it waiting.
	ctx, cancel := context.WithTimeout(ctx, cfg.RetryFor)
	defer cancel()
	if cfg.APIBase != "" {
		opts = append(opts, b2.APIBase(cfg.APIBase))
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = responseTimeout
	opts = append(opts, b2.UserAgent("fediops-backup"), b2.Transport(fatalWatch{tr}))
	c, err := b2.NewClient(ctx, cfg.KeyID, cfg.Key, opts...)
	if err != nil {
		return nil, fmt.Errorf("b2store: authorize key %s: %w", cfg.KeyID, err)
	}
	b, err := c.Bucket(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("b2store: bucket %q: %w", cfg.Bucket, err)
	}
	s := &Store{cfg: cfg, bucket: b}
	if err := s.authorizeBase(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Store) authorizeBase(ctx context.Context) error {
	opts := []base.AuthOption{base.UserAgent("fediops-backup"), base.Transport(http.DefaultTransport)}
	if s.cfg.APIBase != "" {
		opts = append(opts, base.SetAPIBase(s.cfg.APIBase))
	}
	a, err := base.AuthorizeAccount(ctx, s.cfg.KeyID, s.cfg.Key, opts...)
	if err != nil {
		return fmt.Errorf("b2store: authorize key %s: %w", s.cfg.KeyID, err)
	}
	bs, err := a.ListBuckets(ctx, s.cfg.Bucket)
	if err != nil {
		return fmt.Errorf("b2store: bucket %q: %w", s.cfg.Bucket, err)
	}
	for _, b := range bs {
		if b.Name == s.cfg.Bucket {
			s.mu.Lock()
			s.base = b
			s.mu.Unlock()
			return nil
		}
	}
	return fmt.Errorf("b2store: bucket %q not found", s.cfg.Bucket)
}

// listPage lists one page of names, authorizing again when the token
// expired and retrying transient errors a few times.
func (s *Store) listPage(ctx context.Context, cont, prefix string) ([]*base.File, string, error) {
	backoff := 250 * time.Millisecond
	for attempt := 0; ; attempt++ {
		s.mu.Lock()
		b := s.base
		s.mu.Unlock()
		files, next, err := b.ListFileNames(ctx, 1000, cont, prefix, "")
		if err == nil || attempt == 5 {
			return files, next, err
		}
		switch base.Action(err) {
		case base.ReAuthenticate:
			if aerr := s.authorizeBase(ctx); aerr != nil {
				return nil, "", aerr
			}
		case base.Retry:
			select {
			case <-ctx.Done():
				return nil, "", ctx.Err()
			case <-time.After(max(backoff, base.Backoff(err))):
			}
			backoff *= 2
		default:
			return nil, "", err
		}
	}
}

// Bucket is the underlying blazer bucket, for what the Store interface does
// not cover (lifecycle rules, server-side encryption settings).
func (s *Store) Bucket() *b2.Bucket { return s.bucket }

// Put streams r into name: one b2_upload_file below ChunkSize, a large file
// of ChunkSize parts above it. On any error the upload is abandoned and its
// unfinished large file cancelled.
func (s *Store) Put(ctx context.Context, name string, r io.Reader) (backup.ObjectInfo, error) {
	wctx, cancelCause := context.WithCancelCause(ctx)
	cancel := func() { cancelCause(context.Canceled) }
	defer cancel()
	wctx = context.WithValue(wctx, fatalKey{}, &watch{cancel: cancelCause, retryFor: s.cfg.RetryFor})
	w := s.bucket.Object(name).NewWriter(wctx)
	w.ChunkSize = s.cfg.ChunkSize
	w.ConcurrentUploads = s.cfg.ConcurrentUploads
	n, err := io.Copy(w, onlyReader{r})
	if cause := context.Cause(wctx); err != nil && cause != nil && cause != context.Canceled {
		err = cause
	}
	if err == nil {
		if err = w.Close(); err != nil {
			if cause := context.Cause(wctx); cause != nil && cause != context.Canceled {
				err = cause
			}
			err = fmt.Errorf("b2store: finish %s: %w", name, err)
		}
	} else {
		cancel() // the writer must not finish a half-written file
		_ = w.Close()
		err = fmt.Errorf("b2store: upload %s after %d bytes: %w", name, n, err)
	}
	if err != nil {
		cancel()
		if cerr := s.cancelName(ctx, name); cerr != nil {
			s.cfg.Logger.Warn("b2store: cancel unfinished large file", "name", name, "err", cerr)
		}
		return backup.ObjectInfo{}, err
	}
	return backup.ObjectInfo{Name: name, Size: n, Modified: time.Now()}, nil
}

// fatalKey carries a writer's *watch into its HTTP requests.
type fatalKey struct{}

// watch is one Put's or download's view of B2's answers.
type watch struct {
	cancel   context.CancelCauseFunc
	retryFor time.Duration
	download bool // a 4xx (416 past the end, 404) is an answer for blazer to handle, not a reason to stop

	mu           sync.Mutex
	failingSince time.Time // zero while B2 answers
}

// fatalWatch ends a writer or reader that blazer v0.7.2 would leave hanging:
//
//   - when an upload thread fails for good (a 4xx answer other than 401,
//     408, 429) it calls setErr, which waits for a lock that Write holds
//     while it waits for that same thread to take the next part;
//   - connection errors, 5xx and 429 are retried for ever (blazer maps a
//     transport error to "retry"), so a B2 that went away keeps the run
//     waiting at 0% CPU;
//   - a downloaded range whose body is cut short is downloaded again, for
//     ever.
//
// Cancelling the writer's or reader's context from the transport releases
// Write or Read, and Put or Read reports the answer as cause. Downloads
// watch for the last two cases.
type fatalWatch struct{ rt http.RoundTripper }

func (f fatalWatch) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := f.rt.RoundTrip(req)
	w, ok := req.Context().Value(fatalKey{}).(*watch)
	if !ok || req.Context().Err() != nil {
		return resp, err
	}
	method := req.Header.Get("X-Blazer-Method")
	if err != nil || resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests ||
		resp.StatusCode == http.StatusRequestTimeout {
		var what string
		if err != nil {
			what = err.Error()
		} else {
			what = "HTTP " + strconv.Itoa(resp.StatusCode)
		}
		w.failed(method, what)
		return resp, err
	}
	if w.download && req.Method == http.MethodGet && resp.StatusCode < 300 {
		// A range is an answer once its body is read whole: blazer
		// downloads a range cut short again, for ever.
		resp.Body = &watchedBody{ReadCloser: resp.Body, w: w, method: method}
		return resp, err
	}
	w.answered()
	if !w.download && resp.StatusCode >= 400 && resp.StatusCode != http.StatusUnauthorized {
		w.cancel(fmt.Errorf("b2store: %s refused with HTTP %d", method, resp.StatusCode))
	}
	return resp, err
}

// failed notes a call without a usable answer and ends the watched
// transfer when B2 has given none for retryFor.
func (w *watch) failed(method, what string) {
	w.mu.Lock()
	now := time.Now()
	if w.failingSince.IsZero() {
		w.failingSince = now
	}
	since := now.Sub(w.failingSince)
	w.mu.Unlock()
	if since >= w.retryFor {
		w.cancel(fmt.Errorf("b2store: %s: no usable answer from B2 for %s (last: %s)", method, since.Round(time.Second), what))
	}
}

func (w *watch) answered() {
	w.mu.Lock()
	w.failingSince = time.Time{}
	w.mu.Unlock()
}

// watchedBody reports a download's body to its watch: read to the end, it
// is an answer; cut short, a failure.
type watchedBody struct {
	io.ReadCloser
	w      *watch
	method string
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		b.w.answered()
	case err != nil && !errors.Is(err, context.Canceled):
		b.w.failed(b.method, "body cut short: "+err.Error())
	}
	return n, err
}

// onlyReader hides io.Seeker so that blazer always takes its buffered,
// bounded path and never reads a file twice.
type onlyReader struct{ io.Reader }

func (s *Store) cancelName(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	_, err := s.cancel(ctx, func(n string) bool { return n == name })
	return err
}

// CancelUnfinished cancels every unfinished large file under prefix, such
// as the ones a killed process left behind. It gives up after RetryFor.
func (s *Store) CancelUnfinished(ctx context.Context, prefix string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RetryFor)
	defer cancel()
	return s.cancel(ctx, func(n string) bool { return len(n) >= len(prefix) && n[:len(prefix)] == prefix })
}

func (s *Store) cancel(ctx context.Context, match func(string) bool) (int, error) {
	var objs []*b2.Object
	it := s.bucket.List(ctx, b2.ListUnfinished())
	for it.Next() {
		if match(it.Object().Name()) {
			objs = append(objs, it.Object())
		}
	}
	if err := it.Err(); err != nil && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("b2store: list unfinished large files: %w", err)
	}
	for i, o := range objs {
		if err := o.Cancel(ctx); err != nil {
			return i, fmt.Errorf("b2store: cancel %s: %w", o.Name(), err)
		}
	}
	return len(objs), nil
}

// Open streams an object with ConcurrentDownloads ranged reads of
// ChunkSize bytes. A download that gets no usable answer from B2 for
// RetryFor (connection errors, 5xx, 429: blazer alone retries those for
// ever) fails, and Read returns that cause.
func (s *Store) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if _, err := s.Stat(ctx, name); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancelCause(ctx)
	rctx = context.WithValue(rctx, fatalKey{}, &watch{cancel: cancel, retryFor: s.cfg.RetryFor, download: true})
	r := s.bucket.Object(name).NewReader(rctx)
	r.ChunkSize = s.cfg.ChunkSize
	r.ConcurrentDownloads = s.cfg.ConcurrentDownloads
	return &reader{r: r, ctx: rctx, cancel: cancel, name: name}, nil
}

// reader is a download that reports why fatalWatch ended it.
type reader struct {
	r      *b2.Reader
	ctx    context.Context
	cancel context.CancelCauseFunc
	name   string
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		if cause := context.Cause(r.ctx); cause != nil && cause != context.Canceled {
			err = cause
		}
		err = fmt.Errorf("b2store: download %s: %w", r.name, err)
	}
	return n, err
}

func (r *reader) Close() error {
	err := r.r.Close()
	r.cancel(context.Canceled)
	return err
}

// Stat reads an object's size and upload time.
func (s *Store) Stat(ctx context.Context, name string) (backup.ObjectInfo, error) {
	sctx, cancel := context.WithTimeout(ctx, s.cfg.RetryFor) // blazer retries connection errors for ever
	defer cancel()
	a, err := s.bucket.Object(name).Attrs(sctx)
	if err != nil {
		if b2.IsNotExist(err) {
			return backup.ObjectInfo{}, fmt.Errorf("b2store: %s: %w", name, backup.ErrNotExist)
		}
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no usable answer from B2 for %s: %w", s.cfg.RetryFor, err)
		}
		return backup.ObjectInfo{}, fmt.Errorf("b2store: stat %s: %w", name, err)
	}
	return backup.ObjectInfo{Name: name, Size: a.Size, Modified: a.UploadTimestamp}, nil
}

// List yields finished objects under prefix in name order, 1000 per
// b2_list_file_names call.
func (s *Store) List(ctx context.Context, prefix string) iter.Seq2[backup.ObjectInfo, error] {
	return func(yield func(backup.ObjectInfo, error) bool) {
		cont := ""
		for page := 0; page < 1_000_000; page++ {
			files, next, err := s.listPage(ctx, cont, prefix)
			if err != nil {
				yield(backup.ObjectInfo{}, fmt.Errorf("b2store: list %q: %w", prefix, err))
				return
			}
			for _, f := range files {
				if f.Status != "upload" || !strings.HasPrefix(f.Name, prefix) {
					continue
				}
				if !yield(backup.ObjectInfo{Name: f.Name, Size: f.Size, Modified: f.Timestamp}, nil) {
					return
				}
			}
			if next == "" || len(files) == 0 {
				return
			}
			cont = next
		}
	}
}

// Delete removes every version of name (B2 keeps old versions of a name).
func (s *Store) Delete(ctx context.Context, name string) error {
	for i := 0; i < 100; i++ {
		dctx, cancel := context.WithTimeout(ctx, s.cfg.RetryFor) // blazer retries connection errors for ever
		err := s.bucket.Object(name).Delete(dctx)
		cancel()
		if b2.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("b2store: delete %s: %w", name, err)
		}
	}
	return fmt.Errorf("b2store: delete %s: more than 100 versions", name)
}
