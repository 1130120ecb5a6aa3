package b2store

import (
	"context"
	"fmt"
	"io"

	"github.com/Backblaze/blazer/base"
)

// Reader streams one file version, ChunkSize bytes per ranged
// b2_download_file_by_name call with ConcurrentDownloads in flight, so it
// holds at most (ConcurrentDownloads + 1) × ChunkSize bytes. A range that
// fails or whose body is cut short is downloaded again, within RetryFor;
// after that Read returns the cause. Close it.
type Reader struct {
	File File // the version being read: Name, ID, Size, Info

	c      *Client
	ctx    context.Context
	cancel context.CancelCauseFunc
	ranges chan *chunk
	free   chan []byte
	cur    *chunk
	off    int
	err    error
}

// chunk is one range: data once done is closed, or err.
type chunk struct {
	data []byte
	err  error
	done chan struct{}
}

// Download opens the newest version of name for reading; a missing name
// is backup.ErrNotExist.
func (c *Client) Download(ctx context.Context, name string) (*Reader, error) {
	f, err := c.Stat(ctx, name)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancelCause(ctx)
	r := &Reader{File: f, c: c, ctx: rctx, cancel: cancel,
		ranges: make(chan *chunk, c.cfg.ConcurrentDownloads), free: make(chan []byte, c.cfg.ConcurrentDownloads+1)}
	go r.fetchAll()
	return r, nil
}

// fetchAll starts one download per range, at most ConcurrentDownloads
// ahead of the reader.
func (r *Reader) fetchAll() {
	defer close(r.ranges)
	chunkSize := int64(r.c.cfg.ChunkSize)
	for off := int64(0); off < r.File.Size; off += chunkSize {
		ch := &chunk{done: make(chan struct{})}
		select {
		case r.ranges <- ch:
		case <-r.ctx.Done():
			return
		}
		var buf []byte
		select {
		case buf = <-r.free:
		default:
			buf = make([]byte, chunkSize)
		}
		go func(off int64, buf []byte) {
			defer close(ch.done)
			ch.data, ch.err = r.fetch(off, buf[:min(chunkSize, r.File.Size-off)])
		}(off, buf)
	}
}

// fetch downloads buf's length of bytes at off into buf.
func (r *Reader) fetch(off int64, buf []byte) ([]byte, error) {
	err := r.c.retry(r.ctx, fmt.Sprintf("download bytes %d-%d", off, off+int64(len(buf))-1), func(ctx context.Context, b *base.Bucket) error {
		fr, err := b.DownloadFileByName(ctx, r.File.Name, off, int64(len(buf)), false)
		if err != nil {
			return err
		}
		defer fr.Close()
		if fr.ContentLength != len(buf) {
			return cutShort{fmt.Errorf("%d bytes announced for a range of %d", fr.ContentLength, len(buf))}
		}
		if _, err := io.ReadFull(fr, buf); err != nil {
			return cutShort{err}
		}
		return nil
	})
	return buf, err
}

// Read reads the file in order.
func (r *Reader) Read(p []byte) (int, error) {
	for r.err == nil {
		if r.cur != nil && r.off < len(r.cur.data) {
			n := copy(p, r.cur.data[r.off:])
			r.off += n
			return n, nil
		}
		if r.cur != nil { // used up: its buffer serves a later range
			select {
			case r.free <- r.cur.data[:cap(r.cur.data)]:
			default:
			}
			r.cur = nil
		}
		ch, ok := <-r.ranges
		if !ok {
			r.err = io.EOF
			if err := context.Cause(r.ctx); err != nil {
				r.err = err
			}
			break
		}
		select {
		case <-ch.done:
		case <-r.ctx.Done():
			r.err = context.Cause(r.ctx)
			return 0, r.err
		}
		if ch.err != nil {
			r.err = ch.err
			r.cancel(ch.err)
			break
		}
		r.cur, r.off = ch, 0
	}
	return 0, r.err
}

// Close stops the downloads in flight.
func (r *Reader) Close() error {
	r.cancel(context.Canceled)
	return nil
}
