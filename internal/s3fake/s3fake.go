// Package s3fake starts an in-process S3 server (gofakes3 with its memory
// backend) on a loopback port, for tests and the demo: call New, CreateBucket,
// point an S3 client at URL, and Close when done.
//
// Besides path-style requests (http://127.0.0.1:PORT/bucket/key) it can answer
// virtual-host requests (bucket.BASE) and alias hosts (a CDN's custom domain
// that serves one bucket), and it can refuse what DigitalOcean Spaces refuses
// (Strict). Client returns an *http.Client that dials this server whatever
// host name a URL names, so that such names never reach DNS.
package s3fake

import (
	"context"
	"encoding/xml"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
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
	// Refused is set when Strict refused the request.
	Refused bool
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
	strict  bool
	vhosts  []string
	aliases map[string]string
}

// Option changes what New starts.
type Option func(*options)

// Strict makes the server refuse, with 400 InvalidArgument, every request
// that carries what DigitalOcean Spaces rejected from aws-sdk-go-v2's s3
// v1.73 and later: an x-amz-checksum-* or x-amz-sdk-checksum-algorithm
// header, an x-amz-trailer, or an aws-chunked / STREAMING-* body. A client
// configured with checksums "when required" passes, except DeleteObjects,
// which always carries a checksum.
func Strict() Option { return func(o *options) { o.strict = true } }

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
	s.srv = httptest.NewServer(s.wrap(fake.Server()))
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

// Requests returns the requests received so far, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

func (s *Server) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := Request{Method: r.Method, Host: r.Host, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone()}
		if s.opts.strict {
			if why := refused(r.Header); why != "" {
				rec.Refused = true
				s.record(rec)
				writeError(w, http.StatusBadRequest, "InvalidArgument", why)
				return
			}
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

func refused(h http.Header) string {
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
