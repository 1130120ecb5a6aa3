package spaces

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/fediops/fediops/internal/s3fake"
)

// stallingReader gives size bytes; once past at, it waits until the fake
// holds a stored part of an unfinished upload, then calls at (once) and
// goes on giving bytes.
type stallingReader struct {
	t        *testing.T
	s3       *s3.Client
	size, at int64
	pos      int64
	hit      func() error // nil: keep going
	done     bool
}

func (r *stallingReader) Read(p []byte) (int, error) {
	if r.pos >= r.size {
		return 0, io.EOF
	}
	if r.pos >= r.at && !r.done {
		r.done = true
		r.waitForPart()
		if err := r.hit(); err != nil {
			return 0, err
		}
	}
	n := int(min(int64(len(p)), r.size-r.pos))
	if r.pos < r.at {
		n = int(min(int64(n), r.at-r.pos))
	}
	clear(p[:n])
	r.pos += int64(n)
	return n, nil
}

func (r *stallingReader) waitForPart() {
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ups, err := r.s3.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("media")})
		if err == nil && len(ups.Uploads) == 1 {
			parts, err := r.s3.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("media"), Key: ups.Uploads[0].Key, UploadId: ups.Uploads[0].UploadId})
			if err == nil && len(parts.Parts) > 0 {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.t.Error("no part was stored within 20 s")
}

func uploadsLeft(t *testing.T, c *Client) int {
	t.Helper()
	out, err := c.S3.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String("media")})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Uploads)
}

// An upload that ends half-way (its context cancelled, as on SIGTERM, or its
// reader failing) is aborted on the server, so no stored part is left to be
// billed; the error says why the upload ended.
func TestInterruptedUploadIsAborted(t *testing.T) {
	readErr := errors.New("pg_dump exited 1")
	for _, tc := range []struct {
		name string
		hit  func(cancel context.CancelFunc) error
		want error
	}{
		{"cancelled", func(cancel context.CancelFunc) error { cancel(); return nil }, context.Canceled},
		{"reader failed", func(context.CancelFunc) error { return readErr }, readErr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, cfg := newFake(t, s3fake.Strict())
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(ctxT(t))
			defer cancel()
			body := &stallingReader{t: t, s3: c.S3, size: 4 * MinPartSize, at: MinPartSize + MinPartSize/2}
			body.hit = func() error { return tc.hit(cancel) }
			_, err = c.Put(ctx, "backups/big.bin", body, nil)
			if !errors.Is(err, tc.want) || !strings.HasPrefix(err.Error(), "put media/backups/big.bin: ") {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			t.Logf("error: %v", err)
			if n := uploadsLeft(t, c); n != 0 {
				t.Errorf("%d multipart uploads left on the server", n)
			}
			got := ops(srv.Requests())
			if got["AbortMultipartUpload"] != 1 || got["CompleteMultipartUpload"] != 0 || got["UploadPart"] < 1 {
				t.Errorf("requests: %v", got)
			}
			if _, err := c.Head(context.Background(), "backups/big.bin"); !errors.Is(err, ErrNotFound) {
				t.Errorf("head after the aborted upload: %v", err)
			}
		})
	}
}
