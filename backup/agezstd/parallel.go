package agezstd

import (
	"io"

	"github.com/klauspost/compress/zstd"
)

// parallelZstd compresses independent segments on several goroutines and
// writes them, in order, as concatenated zstd frames (a valid zstd stream:
// any decoder reads it as one). Memory: about workers+1 segments of input,
// their outputs, and one encoder per worker.
type parallelZstd struct {
	w       io.Writer
	seg     int
	buf     []byte
	encs    chan *zstd.Encoder
	pending chan *segment
	free    chan *segment
	err     error
}

type segment struct {
	in, out []byte
	done    chan struct{}
}

func newParallelZstd(w io.Writer, level zstd.EncoderLevel, workers, seg int) (*parallelZstd, error) {
	p := &parallelZstd{w: w, seg: seg, encs: make(chan *zstd.Encoder, workers),
		pending: make(chan *segment, workers), free: make(chan *segment, workers+1)}
	for i := 0; i < workers; i++ {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(seg), zstd.WithZeroFrames(true))
		if err != nil {
			return nil, err
		}
		p.encs <- enc
	}
	return p, nil
}

func (p *parallelZstd) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		if p.err != nil {
			return n, p.err
		}
		if p.buf == nil {
			p.buf = p.take().in[:0]
		}
		k := min(len(b), p.seg-len(p.buf))
		p.buf = append(p.buf, b[:k]...)
		b, n = b[k:], n+k
		if len(p.buf) == p.seg {
			p.dispatch()
		}
	}
	return n, p.err
}

// take returns a free segment buffer, reusing old ones.
func (p *parallelZstd) take() *segment {
	select {
	case s := <-p.free:
		return s
	default:
		return &segment{in: make([]byte, 0, p.seg)}
	}
}

func (p *parallelZstd) dispatch() {
	s := &segment{in: p.buf, done: make(chan struct{})}
	p.buf = nil
	if len(p.pending) == cap(p.pending) {
		p.flushOne()
	}
	enc := <-p.encs
	go func() {
		s.out = enc.EncodeAll(s.in, nil)
		p.encs <- enc
		close(s.done)
	}()
	p.pending <- s
}

// flushOne writes the oldest segment once it is compressed.
func (p *parallelZstd) flushOne() {
	s := <-p.pending
	<-s.done
	if p.err == nil {
		_, p.err = p.w.Write(s.out)
	}
	s.out = nil
	select {
	case p.free <- s:
	default:
	}
}

// Close compresses the last partial segment and writes everything out.
func (p *parallelZstd) Close() error {
	if len(p.buf) > 0 {
		p.dispatch()
	}
	for len(p.pending) > 0 {
		p.flushOne()
	}
	return p.err
}
