// Package b2fake is an in-process stand-in for the Backblaze B2 native API
// (v3) that blazer speaks: start one with New, point blazer at it with
// b2.APIBase(srv.URL) and the credentials srv.KeyID / srv.Key, then assert on
// srv.Files and inject faults with FailNext and ExpireTokens.
//
// It serves only loopback (httptest), keeps everything in memory, checks the
// SHA1 of every uploaded file and part as B2 does, and supports small files,
// large files (start, part URLs, parts, finish, cancel, list unfinished),
// listing names and versions, file info, deletion, hiding and ranged
// downloads by name.
package b2fake

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Server is a running B2 stand-in. Its exported fields are fixed at New.
type Server struct {
	URL       string // pass to b2.APIBase
	AccountID string
	KeyID     string // application key id accepted by b2_authorize_account
	Key       string // application key

	srv *httptest.Server

	mu      sync.Mutex
	seq     int
	tokens  map[string]bool // auth token -> valid
	buckets map[string]*bucket
	large   map[string]*largeFile // unfinished large files by id
	faults  []fault
	calls   map[string]int
	closing chan struct{} // closed by Close: stalled calls end
}

type bucket struct {
	id, name, typ string
	files         []*file // every version, in upload order
}

type file struct {
	id, name, action, contentType string
	data                          []byte
	sha1                          string
	info                          map[string]string
	uploaded                      time.Time
}

type largeFile struct {
	id, name, bucketID, contentType string
	info                            map[string]string
	parts                           map[int][]byte
	started                         time.Time
}

type fault struct {
	method string
	n      int
	status int
}

// File describes one stored file version as Files and Unfinished list it.
type File struct {
	Bucket      string
	Name        string
	ID          string
	Size        int64
	SHA1        string // hex; "none" for large files
	ContentType string
	Info        map[string]string
	Uploaded    time.Time
	Hidden      bool   // a hide marker is the newest version of this name
	Data        []byte // a copy of the stored bytes (nil for unfinished large files)
	Parts       int    // parts uploaded so far (unfinished large files)
}

// New starts a B2 stand-in on a loopback port. Close it when done.
func New() *Server {
	s := &Server{
		AccountID: "acct" + randHex(6),
		KeyID:     "key" + randHex(8),
		Key:       "K" + randHex(15),
		tokens:    map[string]bool{},
		buckets:   map[string]*bucket{},
		large:     map[string]*largeFile{},
		calls:     map[string]int{},
		closing:   make(chan struct{}),
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close stops the server (stalled calls end without an answer).
func (s *Server) Close() {
	s.mu.Lock()
	select {
	case <-s.closing:
	default:
		close(s.closing)
	}
	s.mu.Unlock()
	s.srv.Close()
}

// CreateBucket makes a private bucket (as b2_create_bucket would) and
// returns its id. Creating an existing name returns the existing id.
func (s *Server) CreateBucket(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.createBucket(name, "allPrivate").id
}

func (s *Server) createBucket(name, typ string) *bucket {
	if b, ok := s.buckets[name]; ok {
		return b
	}
	b := &bucket{id: s.newID("bkt"), name: name, typ: typ}
	s.buckets[name] = b
	return b
}

// FailNext makes the next n calls of the named B2 method (for example
// "b2_upload_part", "b2_upload_file", "b2_list_file_names",
// "b2_download_file_by_name", or "*" for any) answer with the HTTP status
// (500, 503, 429, 401 ...) and a B2 error body instead of doing the work.
// Calls add up; faults are used in the order they were added. The status
// Drop closes the connection without an answer, as a server that died
// mid-request does.
func (s *Server) FailNext(method string, n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{method: method, n: n, status: status})
}

// Drop, as FailNext's status, closes the client's connection without an
// answer (a transport error, not a B2 error).
const Drop = -1

// Stall, as FailNext's status, reads the request and then never answers
// (a server gone silent): the call waits until the client gives up or
// the server is closed.
const Stall = -2

// ExpireTokens makes every account and upload token issued so far expired:
// the next call with one gets 401 expired_auth_token, as B2 answers after
// 24 hours, and blazer must authorize again.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t := range s.tokens {
		s.tokens[t] = false
	}
}

// Calls reports how many requests of a B2 method (e.g. "b2_upload_part")
// the server received, failed ones included.
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// Files lists the newest version of every finished file in the bucket, by
// name, hidden ones marked. Data holds a copy of the bytes.
func (s *Server) Files(bucketName string) []File {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[bucketName]
	if b == nil {
		return nil
	}
	latest := map[string]*file{}
	for _, f := range b.files {
		latest[f.name] = f
	}
	var out []File
	for _, f := range latest {
		if f.action == "hide" {
			if prev := b.newestUpload(f.name); prev != nil {
				fi := prev.public(bucketName)
				fi.Hidden = true
				out = append(out, fi)
			}
			continue
		}
		out = append(out, f.public(bucketName))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Unfinished lists the large files started in the bucket and neither
// finished nor cancelled.
func (s *Server) Unfinished(bucketName string) []File {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []File
	for _, lf := range s.large {
		b := s.buckets[bucketName]
		if b == nil || lf.bucketID != b.id {
			continue
		}
		var size int64
		for _, p := range lf.parts {
			size += int64(len(p))
		}
		out = append(out, File{Bucket: bucketName, Name: lf.name, ID: lf.id, Size: size, SHA1: "none",
			ContentType: lf.contentType, Info: copyMap(lf.info), Uploaded: lf.started, Parts: len(lf.parts)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (b *bucket) newestUpload(name string) *file {
	for i := len(b.files) - 1; i >= 0; i-- {
		if f := b.files[i]; f.name == name && f.action == "upload" {
			return f
		}
	}
	return nil
}

func (f *file) public(bucket string) File {
	return File{Bucket: bucket, Name: f.name, ID: f.id, Size: int64(len(f.data)), SHA1: f.sha1,
		ContentType: f.contentType, Info: copyMap(f.info), Uploaded: f.uploaded,
		Data: append([]byte(nil), f.data...)}
}

// ---- HTTP ----

type b2error struct {
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(b2error{Status: status, Code: code, Message: msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	method, rest := route(r.URL.Path)
	s.mu.Lock()
	s.calls[method]++
	if st := s.takeFault(method); st != 0 {
		s.mu.Unlock()
		if st == Stall {
			_, _ = io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done():
			case <-s.closing:
			}
			panic(http.ErrAbortHandler)
		}
		if st == Drop {
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
					return
				}
			}
			panic(http.ErrAbortHandler) // not hijackable: the server aborts the connection
		}
		_, _ = io.Copy(io.Discard, r.Body) // as B2's front end does, so the client sees the answer
		code := map[int]string{500: "internal_error", 503: "service_unavailable", 429: "too_many_requests",
			401: "expired_auth_token", 408: "request_timeout"}[st]
		if code == "" {
			code = "injected"
		}
		writeErr(w, st, code, "b2fake: injected fault")
		return
	}
	s.mu.Unlock()
	if method == "b2_authorize_account" {
		s.authorize(w, r)
		return
	}
	if code, msg := s.checkToken(r.Header.Get("Authorization")); code != "" {
		writeErr(w, http.StatusUnauthorized, code, msg)
		return
	}
	switch method {
	case "b2_upload_file":
		s.uploadFile(w, r, rest)
	case "b2_upload_part":
		s.uploadPart(w, r, rest)
	case "b2_download_file_by_name":
		s.download(w, r, rest)
	case "":
		writeErr(w, http.StatusNotFound, "not_found", "b2fake: no such path "+r.URL.Path)
	default:
		s.api(w, r, method)
	}
}

func route(path string) (method, rest string) {
	switch {
	case strings.HasPrefix(path, "/b2api/v3/"):
		return strings.TrimPrefix(path, "/b2api/v3/"), ""
	case strings.HasPrefix(path, "/upload/"):
		return "b2_upload_file", strings.TrimPrefix(path, "/upload/")
	case strings.HasPrefix(path, "/upload_part/"):
		return "b2_upload_part", strings.TrimPrefix(path, "/upload_part/")
	case strings.HasPrefix(path, "/file/"):
		return "b2_download_file_by_name", strings.TrimPrefix(path, "/file/")
	}
	return "", ""
}

func (s *Server) takeFault(method string) int {
	for i := range s.faults {
		f := &s.faults[i]
		if f.n > 0 && (f.method == method || f.method == "*") {
			f.n--
			return f.status
		}
	}
	return 0
}

func (s *Server) checkToken(tok string) (code, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	valid, ok := s.tokens[tok]
	switch {
	case !ok:
		return "bad_auth_token", "b2fake: unknown authorization token"
	case !valid:
		return "expired_auth_token", "b2fake: authorization token expired"
	}
	return "", ""
}

func (s *Server) newToken(prefix string) string {
	t := prefix + randHex(12)
	s.tokens[t] = true
	return t
}

// accountToken checks b2_authorize_account's Basic credentials (both API
// versions) and issues an account token, or answers 401.
func (s *Server) accountToken(w http.ResponseWriter, r *http.Request) (string, bool) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Basic ")
	dec, err := base64.StdEncoding.DecodeString(raw)
	if !ok || err != nil || string(dec) != s.KeyID+":"+s.Key {
		writeErr(w, http.StatusUnauthorized, "unauthorized", "b2fake: bad application key id or key")
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newToken("acct_"), true
}

func (s *Server) newID(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s_%08d_%s", prefix, s.seq, randHex(4))
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	tok, ok := s.accountToken(w, r)
	if !ok {
		return
	}
	writeJSON(w, map[string]any{
		"accountId":          s.AccountID,
		"authorizationToken": tok,
		"apiInfo": map[string]any{"storageApi": map[string]any{
			"apiUrl": s.URL, "downloadUrl": s.URL, "s3ApiUrl": s.URL,
			"absoluteMinimumPartSize": 5_000_000, "recommendedPartSize": 100_000_000,
			"bucketId": nil, "bucketName": nil, "namePrefix": nil, "infoType": "storageApi",
			"capabilities": []string{"listBuckets", "writeBuckets", "listFiles", "readFiles", "writeFiles", "deleteFiles"},
		}},
	})
}

func (s *Server) api(w http.ResponseWriter, r *http.Request, method string) {
	var req map[string]any
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil && err != io.EOF {
		writeErr(w, http.StatusBadRequest, "bad_request", "b2fake: "+method+": "+err.Error())
		return
	}
	str := func(k string) string { v, _ := req[k].(string); return v }
	num := func(k string) int { v, _ := req[k].(float64); return int(v) }
	s.mu.Lock()
	defer s.mu.Unlock()
	bucketByID := func(id string) *bucket {
		for _, b := range s.buckets {
			if b.id == id {
				return b
			}
		}
		return nil
	}
	switch method {
	case "b2_list_buckets":
		var out []map[string]any
		for _, b := range s.buckets {
			if (str("bucketName") == "" || str("bucketName") == b.name) && (str("bucketId") == "" || str("bucketId") == b.id) {
				out = append(out, s.bucketJSON(b))
			}
		}
		writeJSON(w, map[string]any{"buckets": out})
	case "b2_create_bucket":
		if _, ok := s.buckets[str("bucketName")]; ok {
			writeErr(w, http.StatusBadRequest, "duplicate_bucket_name", "b2fake: bucket name already in use")
			return
		}
		writeJSON(w, s.bucketJSON(s.createBucket(str("bucketName"), str("bucketType"))))
	case "b2_get_upload_url":
		b := bucketByID(str("bucketId"))
		if b == nil {
			writeErr(w, http.StatusBadRequest, "bad_bucket_id", "b2fake: no such bucket")
			return
		}
		writeJSON(w, map[string]any{"bucketId": b.id, "uploadUrl": s.URL + "/upload/" + b.id, "authorizationToken": s.newToken("up_")})
	case "b2_start_large_file":
		b := bucketByID(str("bucketId"))
		if b == nil {
			writeErr(w, http.StatusBadRequest, "bad_bucket_id", "b2fake: no such bucket")
			return
		}
		lf := &largeFile{id: s.newID("large"), name: str("fileName"), bucketID: b.id, contentType: str("contentType"),
			info: stringMap(req["fileInfo"]), parts: map[int][]byte{}, started: time.Now()}
		s.large[lf.id] = lf
		writeJSON(w, map[string]any{"fileId": lf.id, "fileName": lf.name, "bucketId": b.id, "action": "start"})
	case "b2_get_upload_part_url":
		lf := s.large[str("fileId")]
		if lf == nil {
			writeErr(w, http.StatusBadRequest, "bad_request", "b2fake: no such unfinished large file")
			return
		}
		writeJSON(w, map[string]any{"fileId": lf.id, "uploadUrl": s.URL + "/upload_part/" + lf.id, "authorizationToken": s.newToken("up_")})
	case "b2_finish_large_file":
		lf := s.large[str("fileId")]
		if lf == nil {
			writeErr(w, http.StatusBadRequest, "bad_request", "b2fake: no such unfinished large file")
			return
		}
		hashes, _ := req["partSha1Array"].([]any)
		if len(hashes) != len(lf.parts) || len(hashes) == 0 {
			writeErr(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("b2fake: partSha1Array has %d entries, %d parts uploaded", len(hashes), len(lf.parts)))
			return
		}
		var buf bytes.Buffer
		for i := range hashes {
			p, ok := lf.parts[i+1]
			sum := sha1.Sum(p)
			if !ok || hashes[i] != hex.EncodeToString(sum[:]) {
				writeErr(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("b2fake: part %d missing or sha1 mismatch", i+1))
				return
			}
			if i+1 < len(hashes) && len(p) < 5_000_000 {
				writeErr(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("b2fake: part %d is %d bytes, below the 5 MB minimum", i+1, len(p)))
				return
			}
			buf.Write(p)
		}
		delete(s.large, lf.id)
		b := bucketByID(lf.bucketID)
		f := &file{id: lf.id, name: lf.name, action: "upload", contentType: lf.contentType, data: buf.Bytes(),
			sha1: "none", info: lf.info, uploaded: time.Now()}
		b.files = append(b.files, f)
		writeJSON(w, fileJSON(b, f))
	case "b2_cancel_large_file":
		lf := s.large[str("fileId")]
		if lf == nil {
			writeErr(w, http.StatusBadRequest, "bad_request", "b2fake: no such unfinished large file")
			return
		}
		delete(s.large, lf.id)
		writeJSON(w, map[string]any{"fileId": lf.id, "fileName": lf.name, "bucketId": lf.bucketID})
	case "b2_list_parts":
		lf := s.large[str("fileId")]
		if lf == nil {
			writeErr(w, http.StatusBadRequest, "bad_request", "b2fake: no such unfinished large file")
			return
		}
		var parts []map[string]any
		start, count := max(num("startPartNumber"), 1), num("maxPartCount")
		if count <= 0 {
			count = 100
		}
		next := 0
		for n := start; n <= 10000 && len(lf.parts) > 0; n++ {
			p, ok := lf.parts[n]
			if !ok {
				continue
			}
			if len(parts) == count {
				next = n
				break
			}
			sum := sha1.Sum(p)
			parts = append(parts, map[string]any{"fileId": lf.id, "partNumber": n, "contentLength": len(p), "contentSha1": hex.EncodeToString(sum[:])})
		}
		writeJSON(w, map[string]any{"parts": parts, "nextPartNumber": next})
	case "b2_list_unfinished_large_files":
		var files []map[string]any
		ids := make([]string, 0, len(s.large))
		for id, lf := range s.large {
			if lf.bucketID == str("bucketId") && id >= str("startFileId") {
				ids = append(ids, id)
			}
		}
		sort.Strings(ids)
		count, next := num("maxFileCount"), ""
		if count <= 0 {
			count = 100
		}
		for _, id := range ids {
			if len(files) == count {
				next = id
				break
			}
			lf := s.large[id]
			files = append(files, map[string]any{"fileId": lf.id, "fileName": lf.name, "bucketId": lf.bucketID,
				"contentType": lf.contentType, "fileInfo": lf.info, "action": "start", "uploadTimestamp": lf.started.UnixMilli()})
		}
		writeJSON(w, map[string]any{"files": files, "nextFileId": nilIfEmpty(next)})
	case "b2_list_file_names", "b2_list_file_versions":
		b := bucketByID(str("bucketId"))
		if b == nil {
			writeErr(w, http.StatusBadRequest, "bad_bucket_id", "b2fake: no such bucket")
			return
		}
		s.list(w, b, method == "b2_list_file_versions", str("prefix"), str("startFileName"), str("startFileId"), num("maxFileCount"))
	case "b2_get_file_info":
		for _, b := range s.buckets {
			for _, f := range b.files {
				if f.id == str("fileId") {
					writeJSON(w, fileJSON(b, f))
					return
				}
			}
		}
		writeErr(w, http.StatusNotFound, "not_found", "b2fake: no such file id")
	case "b2_delete_file_version":
		for _, b := range s.buckets {
			for i, f := range b.files {
				if f.id == str("fileId") && f.name == str("fileName") {
					b.files = append(b.files[:i], b.files[i+1:]...)
					writeJSON(w, map[string]any{"fileId": f.id, "fileName": f.name})
					return
				}
			}
		}
		writeErr(w, http.StatusBadRequest, "file_not_present", "b2fake: no such file version")
	case "b2_hide_file":
		b := bucketByID(str("bucketId"))
		if b == nil || b.newestUpload(str("fileName")) == nil {
			writeErr(w, http.StatusBadRequest, "no_such_file", "b2fake: no such file to hide")
			return
		}
		f := &file{id: s.newID("hide"), name: str("fileName"), action: "hide", uploaded: time.Now()}
		b.files = append(b.files, f)
		writeJSON(w, fileJSON(b, f))
	default:
		writeErr(w, http.StatusBadRequest, "bad_request", "b2fake: unsupported method "+method)
	}
}

func (s *Server) bucketJSON(b *bucket) map[string]any {
	return map[string]any{"accountId": s.AccountID, "bucketId": b.id, "bucketName": b.name, "bucketType": b.typ,
		"bucketInfo": map[string]string{}, "lifecycleRules": []any{}, "revision": 1}
}

func fileJSON(b *bucket, f *file) map[string]any {
	return map[string]any{"fileId": f.id, "fileName": f.name, "bucketId": b.id, "contentLength": len(f.data),
		"contentSha1": f.sha1, "contentType": f.contentType, "fileInfo": f.info, "action": f.action,
		"uploadTimestamp": f.uploaded.UnixMilli()}
}

// list implements b2_list_file_names (newest visible version per name) and
// b2_list_file_versions (every version, newest first within a name).
func (s *Server) list(w http.ResponseWriter, b *bucket, versions bool, prefix, startName, startID string, count int) {
	if count <= 0 || count > 10000 {
		count = 1000
	}
	type entry struct {
		f   *file
		idx int
	}
	var all []entry
	for i, f := range b.files {
		if strings.HasPrefix(f.name, prefix) {
			all = append(all, entry{f, i})
		}
	}
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].f.name != all[j].f.name {
			return all[i].f.name < all[j].f.name
		}
		return all[i].idx > all[j].idx // newest first
	})
	var out []map[string]any
	var nextName, nextID string
	seen := map[string]bool{}
	started := startName == ""
	for _, e := range all {
		if !started {
			if e.f.name < startName || (versions && startID != "" && e.f.name == startName && e.f.id != startID) {
				continue
			}
			started = true
		}
		if !versions {
			if seen[e.f.name] {
				continue
			}
			seen[e.f.name] = true
			if e.f.action == "hide" {
				continue
			}
		}
		if len(out) == count {
			nextName, nextID = e.f.name, e.f.id
			break
		}
		out = append(out, fileJSON(b, e.f))
	}
	res := map[string]any{"files": out, "nextFileName": nilIfEmpty(nextName)}
	if versions {
		res["nextFileId"] = nilIfEmpty(nextID)
	}
	writeJSON(w, res)
}

// readBody reads exactly Content-Length bytes and checks the SHA1 header.
func readBody(r *http.Request) ([]byte, string, error) {
	size, err := strconv.ParseInt(r.Header.Get("Content-Length"), 10, 64)
	if err != nil || size < 0 {
		return nil, "", fmt.Errorf("bad Content-Length %q", r.Header.Get("Content-Length"))
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, size+1))
	if err != nil {
		return nil, "", fmt.Errorf("read body: %w", err)
	}
	want := r.Header.Get("X-Bz-Content-Sha1")
	if want == "hex_digits_at_end" {
		if len(data) < 40 {
			return nil, "", fmt.Errorf("body shorter than its trailing sha1")
		}
		want, data = string(data[len(data)-40:]), data[:len(data)-40]
	}
	if int64(len(data)) != size && !(len(want) == 40 && int64(len(data)+40) == size) {
		return nil, "", fmt.Errorf("got %d bytes, Content-Length %d", len(data), size)
	}
	sum := sha1.Sum(data)
	got := hex.EncodeToString(sum[:])
	if want != "do_not_verify" && !strings.EqualFold(want, got) {
		return nil, "", fmt.Errorf("sha1 mismatch: header %s, body %s", want, got)
	}
	return data, got, nil
}

func (s *Server) uploadFile(w http.ResponseWriter, r *http.Request, bucketID string) {
	data, sum, err := readBody(r)
	if err != nil {
		writeErr(w, http.StatusBadRequest, "bad_request", "b2fake: b2_upload_file: "+err.Error())
		return
	}
	name, err := url.QueryUnescape(r.Header.Get("X-Bz-File-Name"))
	if err != nil || name == "" {
		writeErr(w, http.StatusBadRequest, "bad_request", "b2fake: bad X-Bz-File-Name")
		return
	}
	info := map[string]string{}
	for k, v := range r.Header {
		if key, ok := strings.CutPrefix(k, "X-Bz-Info-"); ok && len(v) > 0 {
			val, _ := url.QueryUnescape(v[0])
			info[strings.ToLower(key)] = val
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.buckets {
		if b.id == bucketID {
			f := &file{id: s.newID("file"), name: name, action: "upload", contentType: r.Header.Get("Content-Type"),
				data: data, sha1: sum, info: info, uploaded: time.Now()}
			b.files = append(b.files, f)
			writeJSON(w, fileJSON(b, f))
			return
		}
	}
	writeErr(w, http.StatusBadRequest, "bad_bucket_id", "b2fake: no such bucket")
}

func (s *Server) uploadPart(w http.ResponseWriter, r *http.Request, fileID string) {
	data, sum, err := readBody(r)
	if err != nil {
		writeErr(w, http.StatusBadRequest, "bad_request", "b2fake: b2_upload_part: "+err.Error())
		return
	}
	n, err := strconv.Atoi(r.Header.Get("X-Bz-Part-Number"))
	if err != nil || n < 1 || n > 10000 {
		writeErr(w, http.StatusBadRequest, "bad_request", "b2fake: bad X-Bz-Part-Number")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	lf := s.large[fileID]
	if lf == nil {
		writeErr(w, http.StatusBadRequest, "bad_request", "b2fake: no such unfinished large file (cancelled?)")
		return
	}
	lf.parts[n] = data
	writeJSON(w, map[string]any{"fileId": fileID, "partNumber": n, "contentLength": len(data), "contentSha1": sum})
}

func (s *Server) download(w http.ResponseWriter, r *http.Request, rest string) {
	bucketName, escName, ok := strings.Cut(strings.TrimPrefix(r.URL.EscapedPath(), "/file/"), "/")
	if !ok {
		writeErr(w, http.StatusBadRequest, "bad_request", "b2fake: bad download path "+rest)
		return
	}
	name, err := url.QueryUnescape(escName)
	if err != nil {
		writeErr(w, http.StatusBadRequest, "bad_request", "b2fake: bad file name")
		return
	}
	s.mu.Lock()
	b := s.buckets[bucketName]
	var f *file
	if b != nil {
		for i := len(b.files) - 1; i >= 0; i-- {
			if b.files[i].name == name {
				f = b.files[i]
				break
			}
		}
	}
	s.mu.Unlock()
	if f == nil || f.action != "upload" {
		writeErr(w, http.StatusNotFound, "not_found", "b2fake: file not present: "+name)
		return
	}
	data := f.data
	start, end := int64(0), int64(len(data))-1
	status := http.StatusOK
	if rng := r.Header.Get("Range"); rng != "" {
		spec, ok := strings.CutPrefix(rng, "bytes=")
		a, bb, ok2 := strings.Cut(spec, "-")
		s0, err0 := strconv.ParseInt(a, 10, 64)
		if !ok || !ok2 || err0 != nil {
			writeErr(w, http.StatusBadRequest, "bad_request", "b2fake: bad Range "+rng)
			return
		}
		if s0 >= int64(len(data)) {
			writeErr(w, http.StatusRequestedRangeNotSatisfiable, "range_not_satisfiable", "b2fake: range past the end")
			return
		}
		start = s0
		if bb != "" {
			if e, err := strconv.ParseInt(bb, 10, 64); err == nil && e < end {
				end = e
			}
		}
		status = http.StatusPartialContent
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, len(data)))
	}
	h := w.Header()
	h.Set("Content-Length", strconv.FormatInt(end-start+1, 10))
	h.Set("Content-Type", f.contentType)
	h.Set("X-Bz-File-Id", f.id)
	h.Set("X-Bz-File-Name", url.QueryEscape(f.name))
	h.Set("X-Bz-Content-Sha1", f.sha1)
	h.Set("X-Bz-Upload-Timestamp", strconv.FormatInt(f.uploaded.UnixMilli(), 10))
	for k, v := range f.info {
		h.Set("X-Bz-Info-"+k, url.QueryEscape(v))
	}
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(data[start : end+1])
}

func stringMap(v any) map[string]string {
	m, _ := v.(map[string]any)
	out := map[string]string{}
	for k, x := range m {
		if s, ok := x.(string); ok {
			out[k] = s
		}
	}
	return out
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
