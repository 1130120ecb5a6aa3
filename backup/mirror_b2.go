package backup

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	b2base "github.com/Backblaze/blazer/base"
)

// b2Target is the mirror's side of B2, on blazer's base package (the
// native API call by call): it needs what blazer's b2 package hides —
// listings with sizes and file info in one call per 1000 names, deleting
// one version by its file id, and uploads that stream straight from the
// source with the SHA1 sent after the body ("hex_digits_at_end"), so no
// object is buffered.
type b2Target struct {
	cfg    *MirrorConfig
	mu     sync.Mutex // guards b2 re-authorization
	b2     *b2base.B2
	bucket *b2base.Bucket
	urls   chan *b2base.URL // idle upload URLs (one upload at a time each)
}

// sseTransport adds SSE-B2 to every upload: the X-Bz-Server-Side-Encryption
// header on b2_upload_file, the serverSideEncryption field on
// b2_start_large_file. blazer v0.7.2 has no per-file option for it.
type sseTransport struct{ next http.RoundTripper }

func (t sseTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	switch r.Header.Get("X-Blazer-Method") {
	case "b2_upload_file":
		r = r.Clone(r.Context())
		r.Header.Set("X-Bz-Server-Side-Encryption", "AES256")
	case "b2_start_large_file":
		body, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, fmt.Errorf("backup: mirror: add SSE-B2 to b2_start_large_file: %w", err)
		}
		m["serverSideEncryption"] = map[string]string{"mode": "SSE-B2", "algorithm": "AES256"}
		body, _ = json.Marshal(m)
		r = r.Clone(r.Context())
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	return t.next.RoundTrip(r)
}

// requireTLS refuses a plain-http endpoint unless it is on loopback (the
// local stand-ins of tests and benchmarks).
func requireTLS(field, raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("backup: mirror: %s %q: %w", field, raw, err)
	}
	if u.Scheme == "https" {
		return nil
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); u.Scheme == "http" && (host == "localhost" || (ip != nil && ip.IsLoopback())) {
		return nil
	}
	return fmt.Errorf("backup: mirror: %s %q is not https (TLS in transit is required; plain http only on loopback)", field, raw)
}

func openB2Target(ctx context.Context, cfg *MirrorConfig) (*b2Target, error) {
	if err := requireTLS("B2 API base", cfg.B2APIBase); err != nil {
		return nil, err
	}
	t := &b2Target{cfg: cfg, urls: make(chan *b2base.URL, cfg.Workers+2)}
	if err := t.authorize(ctx); err != nil {
		return nil, err
	}
	bs, err := t.b2.ListBuckets(ctx, cfg.B2Bucket)
	if err != nil {
		return nil, fmt.Errorf("backup: mirror: find B2 bucket %q: %w", cfg.B2Bucket, err)
	}
	if len(bs) == 0 {
		return nil, fmt.Errorf("backup: mirror: B2 bucket %q: not found (or the key may not see it)", cfg.B2Bucket)
	}
	t.bucket = bs[0]
	return t, nil
}

func (t *b2Target) authorize(ctx context.Context) error {
	rt := t.cfg.Transport
	if rt == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 2*t.cfg.Workers + 4
		tr.ResponseHeaderTimeout = 2 * time.Minute
		rt = tr
	}
	if !t.cfg.NoSSE {
		rt = sseTransport{next: rt}
	}
	opts := []b2base.AuthOption{b2base.Transport(rt), b2base.UserAgent("fediops-mirror")}
	if t.cfg.B2APIBase != "" {
		opts = append(opts, b2base.SetAPIBase(t.cfg.B2APIBase))
	}
	n, err := b2base.AuthorizeAccount(ctx, t.cfg.B2KeyID, t.cfg.B2Key, opts...)
	if err != nil {
		return fmt.Errorf("backup: mirror: authorize B2 key %s: %w", t.cfg.B2KeyID, err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.b2 == nil {
		t.b2 = n
	} else {
		t.b2.Update(n) // the bucket and files hold this pointer
	}
	return nil
}

// retry runs op until it succeeds, fails for good, or attempts run out,
// following blazer's advice (b2base.Action) on each error.
func (t *b2Target) retry(ctx context.Context, what string, op func() error) error {
	var err error
	for attempt := 1; ; attempt++ {
		if err = op(); err == nil {
			return nil
		}
		if ctx.Err() != nil || attempt >= t.cfg.Attempts {
			return fmt.Errorf("%s: %w", what, err)
		}
		switch b2base.Action(err) {
		case b2base.ReAuthenticate:
			if aerr := t.authorize(ctx); aerr != nil {
				return fmt.Errorf("%s: %w (re-authorize: %v)", what, err, aerr)
			}
		case b2base.Retry, b2base.AttemptNewUpload:
			if werr := t.cfg.backoff(ctx, attempt, b2base.Backoff(err)); werr != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		default:
			return fmt.Errorf("%s: %w", what, err)
		}
	}
}

// b2File is one version in B2 as the mirror sees it.
type b2File struct {
	Name, ID, Action string
	Size             int64
	Info             map[string]string
}

// versions lists every version of every file under prefix (newest first
// within a name), one b2_list_file_versions call per 1000 versions.
func (t *b2Target) versions(ctx context.Context, prefix string, each func(b2File) error) error {
	var name, id string
	for {
		var files []*b2base.File
		var nn, ni string
		err := t.retry(ctx, "backup: mirror: list B2 file versions", func() error {
			var err error
			files, nn, ni, err = t.bucket.ListFileVersions(ctx, 1000, name, id, prefix, "")
			return err
		})
		if err != nil {
			return err
		}
		for _, f := range files {
			bf := b2File{Name: f.Name, ID: f.ID, Action: f.Status, Size: f.Size}
			if f.Info != nil {
				bf.Info = f.Info.Info
			}
			if err := each(bf); err != nil {
				return err
			}
		}
		if nn == "" {
			return nil
		}
		name, id = nn, ni
	}
}

// cancelUnfinished cancels the unfinished large files under prefix that a
// killed run left behind (they cost storage and are never listed).
func (t *b2Target) cancelUnfinished(ctx context.Context, prefix string) (int, error) {
	var todo []*b2base.File
	cont := ""
	for range 10_000 {
		var files []*b2base.File
		var next string
		err := t.retry(ctx, "backup: mirror: list unfinished large files", func() error {
			var err error
			files, next, err = t.bucket.ListUnfinishedLargeFiles(ctx, 100, cont)
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
		if err := t.retry(ctx, "backup: mirror: cancel unfinished "+f.Name, func() error {
			return f.AsLargeFile().CancelLargeFile(ctx)
		}); err != nil {
			return i, err
		}
	}
	return len(todo), nil
}

// deleteVersion removes one file version; one that is already gone is not
// an error.
func (t *b2Target) deleteVersion(ctx context.Context, name, id string) error {
	err := t.retry(ctx, "backup: mirror: delete "+name, func() error {
		return t.bucket.File(id, name).DeleteFileVersion(ctx)
	})
	if err != nil {
		if code, msg, _ := b2base.MsgCode(errors.Unwrap(err)); code == 400 && msg == "file_not_present" || code == 404 {
			return nil
		}
	}
	return err
}

func (t *b2Target) uploadURL(ctx context.Context) (*b2base.URL, error) {
	select {
	case u := <-t.urls:
		return u, nil
	default:
	}
	var u *b2base.URL
	err := t.retry(ctx, "backup: mirror: b2_get_upload_url", func() error {
		var err error
		u, err = t.bucket.GetUploadURL(ctx)
		return err
	})
	return u, err
}

func (t *b2Target) putURL(u *b2base.URL) {
	select {
	case t.urls <- u:
	default:
	}
}

// sha1Trailer yields r and then the 40 hex digits of its SHA1, the body
// B2 wants with X-Bz-Content-Sha1: hex_digits_at_end.
type sha1Trailer struct {
	r    io.Reader
	h    hash.Hash
	n    int64
	tail []byte
}

func newSHA1Trailer(r io.Reader) *sha1Trailer { return &sha1Trailer{r: r, h: sha1.New()} }

func (s *sha1Trailer) Read(p []byte) (int, error) {
	if s.tail == nil {
		n, err := s.r.Read(p)
		s.h.Write(p[:n])
		s.n += int64(n)
		if err == io.EOF {
			s.tail = []byte(hex.EncodeToString(s.h.Sum(nil)))
			if n > 0 {
				return n, nil
			}
		} else {
			return n, err
		}
	}
	if len(s.tail) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.tail)
	s.tail = s.tail[n:]
	return n, nil
}

// errShort is returned when the source yielded fewer or more bytes than it
// announced (the object changed while being read).
var errShort = errors.New("source length differs from its Content-Length")

type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left <= 0 {
		var one [1]byte
		if n, _ := e.r.Read(one[:]); n > 0 {
			return 0, errShort
		}
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		return n, errShort
	}
	if err == io.EOF {
		err = nil
	}
	return n, err
}

// uploadOnce streams size bytes of r to name. It makes one attempt: the
// caller retries with a fresh source stream. Objects above PartSize go up
// as a large file of PartSize parts, each streamed with its SHA1 at the
// end; a failed large file is cancelled.
func (t *b2Target) uploadOnce(ctx context.Context, name string, r io.Reader, size int64, info map[string]string) (string, error) {
	if size > t.cfg.LargeFileThreshold {
		return t.uploadLarge(ctx, name, r, size, info)
	}
	u, err := t.uploadURL(ctx)
	if err != nil {
		return "", err
	}
	f, err := u.UploadFile(ctx, newSHA1Trailer(&exactReader{r: r, left: size}), int(size)+40, name, "b2/x-auto", "hex_digits_at_end", info)
	if err != nil {
		return "", err // the URL may be spoiled: not reused
	}
	t.putURL(u)
	return f.ID, nil
}

func (t *b2Target) uploadLarge(ctx context.Context, name string, r io.Reader, size int64, info map[string]string) (id string, err error) {
	var lf *b2base.LargeFile
	if err := t.retry(ctx, "backup: mirror: start large file "+name, func() error {
		var err error
		lf, err = t.bucket.StartLargeFile(ctx, name, "b2/x-auto", info)
		return err
	}); err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			_ = lf.CancelLargeFile(cctx)
		}
	}()
	var fc *b2base.FileChunk
	if err := t.retry(ctx, "backup: mirror: b2_get_upload_part_url", func() error {
		var err error
		fc, err = lf.GetUploadPartURL(ctx)
		return err
	}); err != nil {
		return "", err
	}
	src := &exactReader{r: r, left: size}
	for part, off := 1, int64(0); off < size; part++ {
		n := min(t.cfg.PartSize, size-off)
		if _, err := fc.UploadPart(ctx, newSHA1Trailer(io.LimitReader(src, n)), "hex_digits_at_end", int(n)+40, part); err != nil {
			return "", fmt.Errorf("part %d: %w", part, err)
		}
		off += n
	}
	var f *b2base.File
	if err := t.retry(ctx, "backup: mirror: finish large file "+name, func() error {
		var err error
		f, err = lf.FinishLargeFile(ctx)
		return err
	}); err != nil {
		return "", err
	}
	return f.ID, nil
}

// putSmall uploads an in-memory blob (the state file) with retries.
func (t *b2Target) putSmall(ctx context.Context, name string, data []byte) (string, error) {
	var id string
	err := t.retry(ctx, "backup: mirror: upload "+name, func() error {
		var err error
		id, err = t.uploadOnce(ctx, name, bytes.NewReader(data), int64(len(data)), nil)
		return err
	})
	return id, err
}

// download reads a whole small file (the state) by name; a missing file
// gives ErrNotExist.
func (t *b2Target) download(ctx context.Context, name string, limit int64) ([]byte, string, error) {
	var data []byte
	var id string
	err := t.retry(ctx, "backup: mirror: download "+name, func() error {
		fr, err := t.bucket.DownloadFileByName(ctx, name, 0, 0, false)
		if err != nil {
			return err
		}
		defer fr.Close()
		id = fr.ID
		data, err = io.ReadAll(io.LimitReader(fr, limit))
		return err
	})
	if err != nil {
		if code, _ := b2base.Code(errors.Unwrap(err)); code == http.StatusNotFound {
			return nil, "", fmt.Errorf("backup: mirror: %s: %w", name, ErrNotExist)
		}
		return nil, "", err
	}
	return data, id, nil
}

func strconvMillis(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixMilli(), 10)
}
