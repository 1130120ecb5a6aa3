// Package s3fake starts an in-process S3 server (gofakes3 with its memory
// backend) on a loopback port, for tests and the demo: call New, CreateBucket,
// point an S3 client at URL, and Close when done.
//
// Besides path-style requests (http://127.0.0.1:PORT/bucket/key) it can answer
// virtual-host requests (bucket.BASE) and alias hosts (a CDN's custom domain
// that serves one bucket), and it can refuse what DigitalOcean Spaces refuses
// (Strict). Client returns an *http.Client that dials this server whatever
// host name a URL names, so that such names never reach DNS.
//
// Like S3, it checks the integrity header of every DeleteObjects request: a
// Content-MD5 (or, outside Strict, an x-amz-checksum-crc32) that does not
// match the body is refused, and so is a request that carries neither.
package s3fake

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"encoding/xml"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// Server is a running fake S3 server.
type Server struct {
	// URL is the path-style endpoint, http://127.0.0.1:PORT.
	URL string
	// Addr is the listening address, 127.0.0.1:PORT.
	Addr string

	backend *s3mem.Backend
	srv     *httptest.Server
	opts    options
	conns   atomic.Int64

	mu   sync.Mutex
	reqs []Request
}

// Request is one request the server received, as recorded by Requests.
type Request struct {
	Method string
	Host   string // as sent, port included
	Path   string // before virtual-host or alias rewriting
	Query  string // raw query
	Header http.Header
	// Refused is set when the server refused the request before handling
	// it (Strict, an integrity check, NoBatchDelete); Code is the S3 error
	// code it answered (InvalidArgument, InvalidRequest, BadDigest ...).
	Refused bool
	Code    string
}

// Op names the S3 operation of a request in the words of the API
// (PutObject, UploadPart, DeleteObjects, ListObjectsV2, ...), "" when unsure.
func (r Request) Op() string {
	q := r.Query
	has := func(k string) bool {
		for _, p := range strings.Split(q, "&") {
			if p == k || strings.HasPrefix(p, k+"=") {
				return true
			}
		}
		return false
	}
	switch {
	case r.Method == http.MethodPost && has("delete"):
		return "DeleteObjects"
	case r.Method == http.MethodPost && has("uploads"):
		return "CreateMultipartUpload"
	case r.Method == http.MethodPut && has("uploadId"):
		return "UploadPart"
	case r.Method == http.MethodPost && has("uploadId"):
		return "CompleteMultipartUpload"
	case r.Method == http.MethodDelete && has("uploadId"):
		return "AbortMultipartUpload"
	case r.Method == http.MethodGet && has("uploadId"):
		return "ListParts"
	case r.Method == http.MethodGet && has("uploads"):
		return "ListMultipartUploads"
	case r.Method == http.MethodGet && has("list-type"):
		return "ListObjectsV2"
	case r.Method == http.MethodPut:
		return "PutObject"
	case r.Method == http.MethodGet:
		return "GetObject"
	case r.Method == http.MethodHead:
		return "HeadObject"
	case r.Method == http.MethodDelete:
		return "DeleteObject"
	}
	return ""
}

type options struct {
	strict        bool
	noBatchDelete bool
	vhosts        []string
	aliases       map[string]string
}

// Option changes what New starts.
type Option func(*options)

// Strict makes the server refuse what DigitalOcean Spaces refused from
// aws-sdk-go-v2's s3 v1.73 and later: with 400 InvalidArgument every request
// that carries an x-amz-checksum-* or x-amz-sdk-checksum-algorithm header,
// an x-amz-trailer, or an aws-chunked / STREAMING-* body; and with 400
// InvalidRequest ("Missing required header for this request: Content-MD5",
// S3's answer) a DeleteObjects without Content-MD5. A client configured with
// checksums "when required" passes everything but DeleteObjects, to which
// the SDK adds a CRC32 checksum and no Content-MD5.
func Strict() Option { return func(o *options) { o.strict = true } }

// NoBatchDelete makes the server answer every DeleteObjects with 501
// NotImplemented, as S3 stand-ins without multi-object delete do.
func NoBatchDelete() Option { return func(o *options) { o.noBatchDelete = true } }

// VirtualHosts serves virtual-host-style requests: a request for
// "<bucket>.<base>" (port ignored) reaches bucket.
func VirtualHosts(base ...string) Option {
	return func(o *options) { o.vhosts = append(o.vhosts, base...) }
}

// Alias serves bucket's objects, unsigned, at http://host:PORT/<key>, as a
// CDN endpoint with a custom domain does.
func Alias(host, bucket string) Option {
	return func(o *options) {
		if o.aliases == nil {
			o.aliases = map[string]string{}
		}
		o.aliases[strings.ToLower(host)] = bucket
	}
}

// New starts a server on 127.0.0.1. With a non-nil t it is closed when the
// test ends; with nil (a nil *testing.T too) the caller must call Close.
func New(t testing.TB, opts ...Option) *Server {
	s := &Server{backend: s3mem.New()}
	for _, o := range opts {
		o(&s.opts)
	}
	fake := gofakes3.New(s.backend, gofakes3.WithTimeSkewLimit(0))
	s.srv = httptest.NewUnstartedServer(s.wrap(fake.Server()))
	s.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.srv.Start()
	s.URL = s.srv.URL
	s.Addr = s.srv.Listener.Addr().String()
	if t != nil && !(reflect.ValueOf(t).Kind() == reflect.Pointer && reflect.ValueOf(t).IsNil()) {
		t.Cleanup(s.Close)
	}
	return s
}

// CreateBucket makes an empty bucket; it fails if the bucket exists.
func (s *Server) CreateBucket(name string) error { return s.backend.CreateBucket(name) }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Client returns an HTTP client whose every connection goes to this server,
// whatever host the URL names (virtual hosts, alias hosts).
func (s *Server) Client() *http.Client {
	var d net.Dialer
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, s.Addr)
		},
	}}
}

// Conns returns how many TCP connections the server has accepted so far.
func (s *Server) Conns() int64 { return s.conns.Load() }

// Requests returns the requests received so far, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

func (s *Server) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := Request{Method: r.Method, Host: r.Host, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone()}
		if e := s.refuse(r, rec.Op()); e != nil {
			rec.Refused, rec.Code = true, e.code
			s.record(rec)
			writeError(w, e.status, e.code, e.msg)
			return
		}
		s.record(rec)
		host := strings.ToLower(r.Host)
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if b, ok := s.opts.aliases[host]; ok {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "alias hosts serve GET and HEAD only")
				return
			}
			r.URL.Path = "/" + b + r.URL.Path
			r.URL.RawPath = ""
		} else {
			for _, base := range s.opts.vhosts {
				base = "." + strings.ToLower(strings.Trim(base, "."))
				if b, ok := strings.CutSuffix(host, base); ok && b != "" && !strings.Contains(b, ".") {
					r.URL.Path = "/" + b + r.URL.Path
					r.URL.RawPath = ""
					break
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) record(r Request) {
	s.mu.Lock()
	s.reqs = append(s.reqs, r)
	s.mu.Unlock()
}

type refusal struct {
	status    int
	code, msg string
}

// maxDeleteBody bounds the DeleteObjects body read for its integrity check:
// 1,000 keys of at most 1,024 bytes and their XML.
const maxDeleteBody = 2 << 20

// refuse returns why the server refuses r before handling it, or nil. For
// DeleteObjects it reads the body and puts it back for the handler.
func (s *Server) refuse(r *http.Request, op string) *refusal {
	if s.opts.strict {
		if why := checksumHeader(r.Header); why != "" {
			return &refusal{http.StatusBadRequest, "InvalidArgument", why}
		}
	}
	if op != "DeleteObjects" {
		return nil
	}
	if s.opts.noBatchDelete {
		return &refusal{http.StatusNotImplemented, "NotImplemented", "DeleteObjects is not implemented"}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxDeleteBody+1))
	r.Body.Close()
	if err != nil {
		return &refusal{http.StatusBadRequest, "IncompleteBody", err.Error()}
	}
	if len(body) > maxDeleteBody {
		return &refusal{http.StatusBadRequest, "MalformedXML", "the DeleteObjects body is too large"}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return deleteIntegrity(r.Header, body, s.opts.strict)
}

// deleteIntegrity checks a DeleteObjects body against its Content-MD5 and
// x-amz-checksum-crc32 headers. S3 and Spaces require Content-MD5 (S3 now
// takes an x-amz-checksum-* header instead; strict, as Spaces, does not).
func deleteIntegrity(h http.Header, body []byte, strict bool) *refusal {
	md5s, hasMD5 := h["Content-Md5"]
	if hasMD5 {
		want, err := base64.StdEncoding.DecodeString(strings.Join(md5s, ""))
		if err != nil || len(want) != md5.Size {
			return &refusal{http.StatusBadRequest, "InvalidDigest", "The Content-MD5 you specified is not valid."}
		}
		if sum := md5.Sum(body); !bytes.Equal(sum[:], want) {
			return &refusal{http.StatusBadRequest, "BadDigest", "The Content-MD5 you specified did not match what we received."}
		}
	}
	hasChecksum := false
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), "x-amz-checksum-") {
			hasChecksum = true
		}
	}
	if v := h.Get("X-Amz-Checksum-Crc32"); v != "" {
		sum := binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(body))
		if v != base64.StdEncoding.EncodeToString(sum) {
			return &refusal{http.StatusBadRequest, "BadDigest", "The CRC32 you specified did not match the calculated checksum."}
		}
	}
	switch {
	case strict && !hasMD5:
		return &refusal{http.StatusBadRequest, "InvalidRequest", "Missing required header for this request: Content-MD5"}
	case !hasMD5 && !hasChecksum:
		return &refusal{http.StatusBadRequest, "InvalidRequest", "Missing required header for this request: Content-MD5 OR x-amz-checksum-*"}
	}
	return nil
}

// checksumHeader names what Strict refuses in h, or returns "".
func checksumHeader(h http.Header) string {
	for k := range h {
		lk := strings.ToLower(k)
		switch {
		case strings.HasPrefix(lk, "x-amz-checksum-"), lk == "x-amz-sdk-checksum-algorithm", lk == "x-amz-trailer":
			return "unsupported header " + k
		}
	}
	if strings.Contains(strings.ToLower(h.Get("Content-Encoding")), "aws-chunked") {
		return "unsupported Content-Encoding aws-chunked"
	}
	if strings.HasPrefix(h.Get("X-Amz-Content-Sha256"), "STREAMING-") {
		return "unsupported streaming payload"
	}
	return ""
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_ = xml.NewEncoder(w).Encode(struct {
		XMLName xml.Name `xml:"Error"`
		Code    string
		Message string
	}{Code: code, Message: msg})
}
