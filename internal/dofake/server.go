package dofake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/digitalocean/godo"
	"github.com/getkin/kin-openapi/routers"
)

// DefaultToken is the API token the fake accepts unless Options.Token says
// otherwise.
const DefaultToken = "dop_v1_fake_0123456789abcdef0123456789abcdef"

// Options configure a Server. The zero value is a fake that accepts
// DefaultToken and pages by DO's largest page (200).
type Options struct {
	// Token is the bearer token the fake accepts; "" means DefaultToken.
	Token string
	// PerPage caps the page size of listings; 0 means 200. Tests set it
	// low to make clients follow pages.
	PerPage int
	// AllowDeprecated accepts request fields the specification marks
	// deprecated (private_networking beside vpc_uuid). DO accepts them
	// too; the fake refuses them by default so that nothing sent relies
	// on a field DO may drop.
	AllowDeprecated bool
}

// Fault is an answer the fake gives instead of its own, once per queued
// Fault (Server.Fail).
type Fault struct {
	// Status is the HTTP status, e.g. 404, 422, 429 or 500.
	Status int
	// RetryAfter is sent as the Retry-After header when set (seconds).
	RetryAfter string
	// ID and Message make DO's error body {"id", "message"}; "" means a
	// generic id for Status and "injected <status>".
	ID, Message string
	// RequestID is sent as request_id (and x-request-id) when set; DO
	// sends one with most errors, not all.
	RequestID string
	// Body replaces the error body (e.g. a stale 200 answer).
	Body string
	// After lets the fake do the work first and then answers with the
	// fault: a change whose answer was lost.
	After bool
}

// Call is one request the fake received.
type Call struct {
	Method string
	// URI is the path and query as sent ("/v2/droplets?page=1&per_page=200&tag_name=web").
	URI string
	// Route is the specification's "METHOD path" ("GET /v2/droplets"), ""
	// for a path DO does not have.
	Route string
	// Status is the answer's status.
	Status int
	// Refused is why the specification refused the request, "" when it
	// passed (or was not checked).
	Refused string
}

func (c Call) String() string { return c.Method + " " + c.URI }

// Server is a stateful stand-in for the DigitalOcean API endpoints fediops
// calls. It is an http.Handler: serve it with httptest.NewServer or Listen.
type Server struct {
	opt Options

	mu        sync.Mutex
	nextID    int
	clusters  map[string]*cluster
	endpoints []godo.CDN
	flushes   [][]string
	droplets  map[int]*godo.Droplet
	actions   map[int]*action
	snapshots map[string]*godo.Snapshot
	lbs       map[string]*godo.LoadBalancer
	tags      map[string]bool
	faults    map[string][]Fault
	calls     []Call
	checked   int
	// actionPolls is how many polls of an action answer in-progress
	// before actionResult; negative: never done.
	actionPolls  int
	actionResult string
}

// New returns an empty fake.
func New(o Options) *Server {
	if o.Token == "" {
		o.Token = DefaultToken
	}
	if o.PerPage <= 0 || o.PerPage > 200 {
		o.PerPage = 200
	}
	return &Server{opt: o, nextID: 1000, clusters: map[string]*cluster{}, droplets: map[int]*godo.Droplet{},
		actions: map[int]*action{}, snapshots: map[string]*godo.Snapshot{}, lbs: map[string]*godo.LoadBalancer{},
		tags: map[string]bool{}, faults: map[string][]Fault{}, actionPolls: 1, actionResult: godo.ActionCompleted}
}

// Token is the bearer token the fake accepts.
func (s *Server) Token() string { return s.opt.Token }

// Start serves the fake on a loopback port for the test and stops it at
// its end; it returns the base URL ("http://127.0.0.1:port").
func (s *Server) Start(tb interface{ Cleanup(func()) }) string {
	srv := httptest.NewServer(s)
	tb.Cleanup(srv.Close)
	return srv.URL
}

// RefuseNothing makes the test fail at its end for every request the
// specification refused: the tests of code that must only send what DO
// accepts call it.
func (s *Server) RefuseNothing(tb interface {
	Cleanup(func())
	Errorf(string, ...any)
}) {
	tb.Cleanup(func() {
		for _, c := range s.Calls() {
			if c.Refused != "" {
				tb.Errorf("DigitalOcean's specification refuses %s: %s", c, c.Refused)
			}
		}
	})
}

// checkedAll counts the requests every Server of the process checked.
var checkedAll atomic.Int64

// CheckedAll returns how many requests all fakes of this process checked
// against the specification: a test binary prints it from TestMain.
func CheckedAll() int64 { return checkedAll.Load() }

// Listen serves the fake on addr, which must be a loopback address
// ("127.0.0.1:0" picks a port), until ctx ends. It returns the base URL.
func (s *Server) Listen(ctx context.Context, addr string) (string, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("listen %s: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", fmt.Errorf("listen %s: not a loopback address", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	context.AfterFunc(ctx, func() { srv.Close() })
	return "http://" + ln.Addr().String(), nil
}

// UUID returns the n-th of a fixed series of RFC 4122 UUIDs, for IDs the
// specification wants as UUIDs (clusters, CDN endpoints, load balancers).
func UUID(n int) string {
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", n, n)
}

// Fail queues faults for a route of the specification, "METHOD path" with
// the specification's parameter names ("POST /v2/droplets",
// "GET /v2/actions/{action_id}"). It panics on a route the fake does not
// serve, so that a typo does not leave a test without its fault.
func (s *Server) Fail(route string, f ...Fault) {
	method, p, _ := strings.Cut(route, " ")
	sp, err := loadSpec()
	if err != nil {
		panic(err)
	}
	pi := sp.doc.Paths.Find(p)
	if pi == nil || pi.GetOperation(method) == nil || handlers[pi.GetOperation(method).OperationID] == nil {
		panic("dofake: no route " + route)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[route] = append(s.faults[route], f...)
}

// Calls returns the requests received so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// Count returns how many requests began with prefix, matched against
// "METHOD /path?query" ("POST /v2/droplets", "GET /v2/actions/").
func (s *Server) Count(prefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if strings.HasPrefix(c.String(), prefix) {
			n++
		}
	}
	return n
}

// Checked returns how many requests were checked against DigitalOcean's
// specification and how many of them it refused.
func (s *Server) Checked() (checked, refused int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.calls {
		if c.Refused != "" {
			refused++
		}
	}
	return s.checked, refused
}

// handler serves one operation of the specification, with s.mu held.
type handler func(s *Server, w http.ResponseWriter, r *http.Request, p map[string]string)

// handlers by the specification's operationId.
var handlers = map[string]handler{}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &statusWriter{ResponseWriter: w}
	call := Call{Method: r.Method, URI: r.URL.RequestURI()}
	defer func() {
		call.Status = rec.status
		s.mu.Lock()
		s.calls = append(s.calls, call)
		s.mu.Unlock()
	}()
	if r.Header.Get("Authorization") != "Bearer "+s.opt.Token {
		apiError(rec, http.StatusUnauthorized, "unauthorized", "Unable to authenticate you", "")
		return
	}
	sp, err := loadSpec()
	if err != nil {
		apiError(rec, http.StatusInternalServerError, "server_error", err.Error(), "")
		return
	}
	route, params, err := sp.router.FindRoute(r)
	if err != nil {
		status := http.StatusNotFound
		if errors.Is(err, routers.ErrMethodNotAllowed) {
			status = http.StatusMethodNotAllowed
		}
		apiError(rec, status, "not_found", "The resource you were accessing could not be found.", "")
		return
	}
	call.Route = r.Method + " " + route.Path
	h := handlers[route.Operation.OperationID]
	if h == nil {
		apiError(rec, http.StatusNotImplemented, "not_implemented", "the fake does not serve "+route.Operation.OperationID, "")
		return
	}
	checkedAll.Add(1)
	s.mu.Lock()
	s.checked++
	var ft *Fault
	if q := s.faults[call.Route]; len(q) > 0 {
		ft, s.faults[call.Route] = &q[0], q[1:]
	}
	s.mu.Unlock()
	if err := sp.check(r, route, params, s.opt.AllowDeprecated); err != nil {
		var inv *Invalid
		errors.As(err, &inv)
		call.Refused = inv.Message
		apiError(rec, inv.Status, errorID(inv.Status), inv.Message, s.requestID())
		return
	}
	if ft != nil && !ft.After {
		ft.write(rec)
		return
	}
	s.mu.Lock()
	if ft != nil {
		h(s, httptest.NewRecorder(), r, params)
		s.mu.Unlock()
		ft.write(rec)
		return
	}
	h(s, rec, r, params)
	s.mu.Unlock()
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (f *Fault) write(w http.ResponseWriter) {
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	if f.Body != "" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.Status)
		fmt.Fprint(w, f.Body)
		return
	}
	id, msg := f.ID, f.Message
	if id == "" {
		id = errorID(f.Status)
	}
	if msg == "" {
		msg = fmt.Sprintf("injected %d", f.Status)
	}
	apiError(w, f.Status, id, msg, f.RequestID)
}

// requestID is the id the fake gives an error of its own (s.mu not held).
func (s *Server) requestID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	return "fake-" + strconv.Itoa(s.nextID)
}

func errorID(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "bad_request"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusConflict:
		return "conflict"
	case http.StatusUnprocessableEntity:
		return "unprocessable_entity"
	case http.StatusTooManyRequests:
		return "too_many_requests"
	}
	return "server_error"
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// apiError writes DO's error body; requestID "" leaves request_id out.
func apiError(w http.ResponseWriter, status int, id, msg, requestID string) {
	body := map[string]string{"id": id, "message": msg}
	if requestID != "" {
		body["request_id"] = requestID
		w.Header().Set("X-Request-Id", requestID)
	}
	reply(w, status, body)
}

func notFound(w http.ResponseWriter) {
	apiError(w, http.StatusNotFound, "not_found", "The resource you were accessing could not be found.", "")
}

func unprocessable(w http.ResponseWriter, msg string) {
	apiError(w, http.StatusUnprocessableEntity, "unprocessable_entity", msg, "")
}

// decode reads the JSON body the specification already accepted.
func decode(r *http.Request, v any) {
	_ = json.NewDecoder(r.Body).Decode(v)
}

// page cuts items by the request's page and per_page and returns the
// links and meta DO sends with a listing.
func page[T any](s *Server, r *http.Request, items []T) ([]T, map[string]any, map[string]any) {
	p, _ := strconv.Atoi(r.URL.Query().Get("page"))
	per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
	p, per = max(p, 1), min(max(per, 1), s.opt.PerPage)
	if r.URL.Query().Get("per_page") == "" {
		per = min(20, s.opt.PerPage)
	}
	lo, hi := min((p-1)*per, len(items)), min(p*per, len(items))
	link := func(n int) string {
		u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path}
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(n))
		u.RawQuery = q.Encode()
		return u.String()
	}
	pages := map[string]string{}
	if hi < len(items) {
		pages["next"], pages["last"] = link(p+1), link((len(items)+per-1)/per)
	}
	if p > 1 {
		pages["prev"], pages["first"] = link(p-1), link(1)
	}
	links := map[string]any{}
	if len(pages) > 0 {
		links["pages"] = pages
	}
	return items[lo:hi], links, map[string]any{"total": len(items)}
}

func sortedKeys[K interface{ ~int | ~string }, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
