package b2store

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
	"net/http"
	"sync"
	"time"

	"github.com/Backblaze/blazer/base"

	"github.com/fediops/fediops/backup"
)

const contentType = "b2/x-auto"

// Put stores everything r yields under name, whatever its length, and
// returns the new version. It holds at most (ConcurrentUploads + 1) ×
// ChunkSize bytes of r: up to ChunkSize it is one b2_upload_file, above it
// a large file of ChunkSize parts with ConcurrentUploads in flight. Each
// upload is retried from its buffer (a new upload URL each time) as B2
// advises, within RetryFor. When r fails, ctx ends or B2 refuses, the
// unfinished large file is cancelled: nothing is listed and nothing is
// left behind. Errors of r are wrapped, so errors.Is finds them.
func (c *Client) Put(ctx context.Context, name string, r io.Reader, info map[string]string) (File, error) {
	first := make([]byte, c.cfg.ChunkSize)
	n, err := io.ReadFull(r, first)
	if err == nil { // a large file needs two parts: is there more?
		var one [1]byte
		var k int
		k, err = io.ReadFull(r, one[:])
		if k == 1 {
			return c.putLarge(ctx, name, first, io.MultiReader(bytes.NewReader(one[:]), r), info)
		}
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return c.putSmall(ctx, name, first[:n], info)
	}
	return File{}, fmt.Errorf("read the data: %w", err)
}

// putSmall uploads data with b2_upload_file, retrying.
func (c *Client) putSmall(ctx context.Context, name string, data []byte, info map[string]string) (File, error) {
	var f File
	err := c.retry(ctx, "", func(ctx context.Context, b *base.Bucket) error {
		u, err := c.uploadURL(ctx, b)
		if err != nil {
			return err
		}
		got, err := u.UploadFile(ctx, newSHA1Trailer(bytes.NewReader(data)), len(data)+40, name, contentType, "hex_digits_at_end", info)
		if err != nil {
			return err // the URL may be spoiled: not reused
		}
		c.putURL(u)
		f = fileOf(got)
		f.Size = int64(len(data)) // blazer counts the SHA1 after the body
		return nil
	})
	return f, err
}

// part is one buffered part of a Put.
type part struct {
	num  int
	data []byte
}

// putLarge uploads first, then the rest of r (at least one byte), as a
// large file.
func (c *Client) putLarge(ctx context.Context, name string, first []byte, r io.Reader, info map[string]string) (File, error) {
	id, err := c.startLarge(ctx, name, info)
	if err != nil {
		return File{}, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	workers := c.cfg.ConcurrentUploads
	parts := make(chan part)
	free := make(chan []byte, workers+1)
	var mu sync.Mutex // guards sums, size
	sums := map[int]string{}
	var size int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var fc *base.FileChunk // this worker's part URL
			for p := range parts {
				sum, err := c.uploadPart(ctx, name, id, &fc, p)
				if err != nil {
					cancel(err) // the sender stops; the other workers drain
					continue
				}
				mu.Lock()
				sums[p.num], size = sum, size+int64(len(p.data))
				mu.Unlock()
				free <- p.data[:cap(p.data)]
			}
		}()
	}
	send := func(p part) bool {
		select {
		case parts <- p:
			return true
		case <-ctx.Done():
			return false
		}
	}
	readErr := func() error {
		num := 1
		if !send(part{num, first}) {
			return nil
		}
		for bufs := 1; ; {
			var buf []byte
			if bufs < workers+1 {
				buf, bufs = make([]byte, c.cfg.ChunkSize), bufs+1
			} else {
				select {
				case buf = <-free:
				case <-ctx.Done():
					return nil
				}
			}
			n, err := io.ReadFull(r, buf)
			switch {
			case n == 0 && err == io.EOF:
				return nil
			case err != nil && err != io.ErrUnexpectedEOF:
				return fmt.Errorf("read the data after %d parts: %w", num, err)
			case num == maxParts:
				return fmt.Errorf("more than %d parts of %d bytes: raise ChunkSize", maxParts, c.cfg.ChunkSize)
			}
			if num++; !send(part{num, buf[:n]}) || err != nil {
				return nil
			}
		}
	}()
	close(parts)
	wg.Wait()
	err = readErr
	if err == nil {
		err = context.Cause(ctx)
	}
	if err == nil {
		var f File
		f, err = c.finishLarge(ctx, name, id, size, sums)
		if err == nil {
			return f, nil
		}
	}
	cctx, ccancel := backup.CleanupContext(ctx, 2*time.Minute)
	defer ccancel()
	if cerr := c.cancelLarge(cctx, name, id); cerr != nil {
		c.cfg.Logger.Warn("cancel an unfinished large file", "name", name, "err", cerr)
	}
	return File{}, err
}

func (c *Client) startLarge(ctx context.Context, name string, info map[string]string) (string, error) {
	var id string
	err := c.retry(ctx, "start large file", func(ctx context.Context, b *base.Bucket) error {
		lf, err := b.StartLargeFile(ctx, name, contentType, info)
		if err == nil {
			id = lf.ID
		}
		return err
	})
	return id, err
}

func (c *Client) finishLarge(ctx context.Context, name, id string, size int64, sums map[int]string) (File, error) {
	var f File
	err := c.retry(ctx, "finish large file", func(ctx context.Context, b *base.Bucket) error {
		got, err := b.File(id, name).CompileParts(size, sums).FinishLargeFile(ctx)
		if err == nil {
			f = fileOf(got)
		}
		return err
	})
	return f, err
}

// partURL gets an upload URL for one part uploader of large file id.
func partURL(ctx context.Context, b *base.Bucket, name, id string) (*base.FileChunk, error) {
	return b.File(id, name).CompileParts(0, nil).GetUploadPartURL(ctx)
}

// uploadPart uploads one buffered part, retrying with a new part URL, and
// returns its SHA1.
func (c *Client) uploadPart(ctx context.Context, name, id string, fc **base.FileChunk, p part) (string, error) {
	var sum string
	err := c.retry(ctx, fmt.Sprintf("upload part %d", p.num), func(ctx context.Context, b *base.Bucket) error {
		if *fc == nil {
			u, err := partURL(ctx, b, name, id)
			if err != nil {
				return err
			}
			*fc = u
		}
		tr := newSHA1Trailer(bytes.NewReader(p.data))
		if _, err := (*fc).UploadPart(ctx, tr, "hex_digits_at_end", len(p.data)+40, p.num); err != nil {
			*fc = nil
			return err
		}
		sum = tr.sum()
		return nil
	})
	return sum, err
}

// SizedOptions adjust PutSized.
type SizedOptions struct {
	Info map[string]string // file info (X-Bz-Info-*)
	// LargeAbove sends objects larger than this as a large file of
	// PartSize parts; 0 = never.
	LargeAbove int64
	PartSize   int64 // at least MinChunkSize
}

// PutSized streams exactly size bytes of r to name without buffering them
// (each upload's SHA1 goes after its body) and returns the new version. It
// makes one attempt: r cannot be read twice, so the caller retries with a
// new r when Retryable(err). B2's other calls (upload URLs, starting and
// finishing a large file) are retried as in Put; a failed large file is
// cancelled. An r that yields more or fewer bytes than size is an error.
func (c *Client) PutSized(ctx context.Context, name string, r io.Reader, size int64, opt SizedOptions) (File, error) {
	src := &exactReader{r: r, left: size}
	if opt.LargeAbove > 0 && size > opt.LargeAbove {
		return c.putSizedLarge(ctx, name, src, size, opt)
	}
	var u *base.URL
	if err := c.retry(ctx, "", func(ctx context.Context, b *base.Bucket) error {
		var err error
		u, err = c.uploadURL(ctx, b)
		return err
	}); err != nil {
		return File{}, err
	}
	var got *base.File
	if err := once(ctx, func(ctx context.Context) error {
		var err error
		got, err = u.UploadFile(ctx, newSHA1Trailer(src), int(size)+40, name, contentType, "hex_digits_at_end", opt.Info)
		return err
	}); err != nil {
		return File{}, err // the URL may be spoiled: not reused
	}
	c.putURL(u)
	f := fileOf(got)
	f.Size = size // blazer counts the SHA1 after the body
	return f, nil
}

func (c *Client) putSizedLarge(ctx context.Context, name string, src io.Reader, size int64, opt SizedOptions) (f File, err error) {
	if opt.PartSize < MinChunkSize {
		return File{}, fmt.Errorf("part size %d is below B2's minimum %d", opt.PartSize, MinChunkSize)
	}
	id, err := c.startLarge(ctx, name, opt.Info)
	if err != nil {
		return File{}, err
	}
	defer func() {
		if err != nil {
			cctx, cancel := backup.CleanupContext(ctx, time.Minute)
			defer cancel()
			_ = c.cancelLarge(cctx, name, id)
		}
	}()
	var fc *base.FileChunk
	if err := c.retry(ctx, "", func(ctx context.Context, b *base.Bucket) error {
		var err error
		fc, err = partURL(ctx, b, name, id)
		return err
	}); err != nil {
		return File{}, err
	}
	sums := map[int]string{}
	for num, off := 1, int64(0); off < size; num++ {
		n := min(opt.PartSize, size-off)
		tr := newSHA1Trailer(io.LimitReader(src, n))
		if err := once(ctx, func(ctx context.Context) error {
			_, err := fc.UploadPart(ctx, tr, "hex_digits_at_end", int(n)+40, num)
			return err
		}); err != nil {
			return File{}, fmt.Errorf("upload part %d: %w", num, err)
		}
		sums[num] = tr.sum()
		off += n
	}
	return c.finishLarge(ctx, name, id, size, sums)
}

func (c *Client) uploadURL(ctx context.Context, b *base.Bucket) (*base.URL, error) {
	select {
	case u := <-c.urls:
		return u, nil
	default:
	}
	return b.GetUploadURL(ctx)
}

func (c *Client) putURL(u *base.URL) {
	select {
	case c.urls <- u:
	default:
	}
}

// sha1Trailer yields r and then the 40 hex digits of its SHA1, the body
// B2 wants with X-Bz-Content-Sha1: hex_digits_at_end.
type sha1Trailer struct {
	r    io.Reader
	h    hash.Hash
	tail []byte
	hex  string
}

func newSHA1Trailer(r io.Reader) *sha1Trailer { return &sha1Trailer{r: r, h: sha1.New()} }

func (s *sha1Trailer) Read(p []byte) (int, error) {
	if s.tail == nil {
		n, err := s.r.Read(p)
		s.h.Write(p[:n])
		if err != io.EOF {
			return n, err
		}
		s.hex = hex.EncodeToString(s.h.Sum(nil))
		s.tail = []byte(s.hex)
		if n > 0 {
			return n, nil
		}
	}
	if len(s.tail) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.tail)
	s.tail = s.tail[n:]
	return n, nil
}

// sum is the SHA1 of everything read, once it was read to the end.
func (s *sha1Trailer) sum() string { return s.hex }

// errLength is returned when a source yields fewer or more bytes than it
// announced (an object that changed while being read).
var errLength = errors.New("the source's length differs from the size announced")

type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left <= 0 {
		var one [1]byte
		if n, _ := e.r.Read(one[:]); n > 0 {
			return 0, errLength
		}
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		return n, errLength
	}
	if err == io.EOF {
		err = nil
	}
	return n, err
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
			return nil, fmt.Errorf("add SSE-B2 to b2_start_large_file: %w", err)
		}
		m["serverSideEncryption"] = map[string]string{"mode": "SSE-B2", "algorithm": "AES256"}
		body, _ = json.Marshal(m)
		r = r.Clone(r.Context())
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	return t.next.RoundTrip(r)
}

// once makes one attempt of a call that cannot be retried from here (its
// body streams from the caller), with the errors retry would give: an
// Unreachable B2 as such, B2's answer described.
func once(ctx context.Context, call func(context.Context) error) error {
	octx, st := withOp(ctx)
	err := call(octx)
	if err == nil {
		return nil
	}
	if u := st.unreachable(); u != nil && ctx.Err() == nil {
		return u
	}
	return describe(err)
}
