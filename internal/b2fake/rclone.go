package b2fake

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// V1 starts a second loopback endpoint that speaks the B2 native API v1
// the way rclone 1.60's b2 backend calls it (`--b2-endpoint URL`), over
// the same buckets and files as s: b2_authorize_account answers v1's
// flat shape, b2_list_file_names honours the delimiter (rclone lists
// directory by directory unless --fast-list) and reports "size", and every
// other call goes to the v3 handler. Faults (FailNext) and Calls apply.
// Stop it with the returned function.
func (s *Server) V1() (endpoint string, stop func()) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method, ok := strings.CutPrefix(r.URL.Path, "/b2api/v1/")
		if !ok {
			s.serve(w, r) // uploads and downloads use the v3 server's URLs anyway
			return
		}
		switch method {
		case "b2_authorize_account":
			s.authorizeV1(w, r, "http://"+r.Host)
		case "b2_list_file_names":
			s.listNamesV1(w, r)
		case "b2_copy_file":
			s.copyFileV1(w, r)
		case "b2_download_file_by_id":
			s.downloadByIDV1(w, r)
		default:
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/b2api/v3/" + method
			s.serve(w, r2)
		}
	}))
	return srv.URL, srv.Close
}

func (s *Server) authorizeV1(w http.ResponseWriter, r *http.Request, self string) {
	s.mu.Lock()
	s.calls["b2_authorize_account"]++
	st := s.takeFault("b2_authorize_account")
	s.mu.Unlock()
	if st != 0 {
		writeErr(w, st, "injected", "b2fake: injected fault")
		return
	}
	tok, ok := s.accountToken(w, r)
	if !ok {
		return
	}
	writeJSON(w, map[string]any{
		"accountId": s.AccountID, "authorizationToken": tok, "apiUrl": self, "downloadUrl": self,
		"recommendedPartSize": 100_000_000, "absoluteMinimumPartSize": 5_000_000,
		"allowed": map[string]any{"bucketId": nil, "bucketName": nil, "namePrefix": nil,
			"capabilities": []string{"listBuckets", "writeBuckets", "listFiles", "readFiles", "writeFiles", "deleteFiles"}},
	})
}

// copyFileV1 is b2_copy_file within a bucket (rclone uses it to set a
// modification time): a new version with the source's bytes and, with
// metadataDirective REPLACE, the given file info.
func (s *Server) copyFileV1(w http.ResponseWriter, r *http.Request) {
	if !s.enterV1(w, r, "b2_copy_file") {
		return
	}
	var req struct {
		SourceFileID      string            `json:"sourceFileId"`
		FileName          string            `json:"fileName"`
		MetadataDirective string            `json:"metadataDirective"`
		ContentType       string            `json:"contentType"`
		FileInfo          map[string]string `json:"fileInfo"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, "bad_request", "b2fake: b2_copy_file: "+err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.buckets {
		for _, f := range b.files {
			if f.id != req.SourceFileID || f.action != "upload" {
				continue
			}
			nf := &file{id: s.newID("file"), name: req.FileName, action: "upload", contentType: f.contentType,
				data: f.data, sha1: f.sha1, info: copyMap(f.info), uploaded: time.Now()}
			if req.MetadataDirective == "REPLACE" {
				nf.contentType, nf.info = req.ContentType, copyMap(req.FileInfo)
			}
			b.files = append(b.files, nf)
			out := fileJSON(b, nf)
			out["size"] = len(nf.data)
			writeJSON(w, out)
			return
		}
	}
	writeErr(w, http.StatusNotFound, "not_found", "b2fake: b2_copy_file: no such source file")
}

// downloadByIDV1 is b2_download_file_by_id (GET or HEAD, whole file).
func (s *Server) downloadByIDV1(w http.ResponseWriter, r *http.Request) {
	if !s.enterV1(w, r, "b2_download_file_by_id") {
		return
	}
	id := r.URL.Query().Get("fileId")
	s.mu.Lock()
	var f *file
	for _, b := range s.buckets {
		for _, x := range b.files {
			if x.id == id && x.action == "upload" {
				f = x
			}
		}
	}
	s.mu.Unlock()
	if f == nil {
		writeErr(w, http.StatusNotFound, "not_found", "b2fake: no such file id")
		return
	}
	h := w.Header()
	h.Set("Content-Length", strconv.Itoa(len(f.data)))
	h.Set("Content-Type", f.contentType)
	h.Set("X-Bz-File-Id", f.id)
	h.Set("X-Bz-File-Name", url.QueryEscape(f.name))
	h.Set("X-Bz-Content-Sha1", f.sha1)
	h.Set("X-Bz-Upload-Timestamp", strconv.FormatInt(f.uploaded.UnixMilli(), 10))
	for k, v := range f.info {
		h.Set("X-Bz-Info-"+k, url.QueryEscape(v))
	}
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(f.data)
}

// enterV1 counts the call, applies an injected fault and checks the token.
func (s *Server) enterV1(w http.ResponseWriter, r *http.Request, method string) bool {
	s.mu.Lock()
	s.calls[method]++
	st := s.takeFault(method)
	s.mu.Unlock()
	if st != 0 {
		writeErr(w, st, "injected", "b2fake: injected fault")
		return false
	}
	if code, msg := s.checkToken(r.Header.Get("Authorization")); code != "" {
		writeErr(w, http.StatusUnauthorized, code, msg)
		return false
	}
	return true
}

// listNamesV1 is b2_list_file_names with the delimiter: names with the
// delimiter after the prefix collapse into one "folder" entry.
func (s *Server) listNamesV1(w http.ResponseWriter, r *http.Request) {
	if !s.enterV1(w, r, "b2_list_file_names") {
		return
	}
	var req struct {
		BucketID      string `json:"bucketId"`
		StartFileName string `json:"startFileName"`
		MaxFileCount  int    `json:"maxFileCount"`
		Prefix        string `json:"prefix"`
		Delimiter     string `json:"delimiter"`
	}
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &req); err != nil {
		writeErr(w, http.StatusBadRequest, "bad_request", "b2fake: b2_list_file_names: "+err.Error())
		return
	}
	if req.MaxFileCount <= 0 || req.MaxFileCount > 10000 {
		req.MaxFileCount = 1000
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var b *bucket
	for _, x := range s.buckets {
		if x.id == req.BucketID {
			b = x
		}
	}
	if b == nil {
		writeErr(w, http.StatusBadRequest, "bad_bucket_id", "b2fake: no such bucket")
		return
	}
	latest := map[string]*file{}
	for _, f := range b.files {
		if strings.HasPrefix(f.name, req.Prefix) {
			latest[f.name] = f
		}
	}
	names := make([]string, 0, len(latest))
	for n, f := range latest {
		if f.action == "upload" && n >= req.StartFileName {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	out := []map[string]any{}
	next := ""
	lastFolder := ""
	// A page that ended on a folder continues after it.
	skip := ""
	if req.Delimiter != "" && len(req.StartFileName) > len(req.Prefix) && strings.HasSuffix(req.StartFileName, req.Delimiter) {
		skip = req.StartFileName
	}
	for _, n := range names {
		if skip != "" && strings.HasPrefix(n, skip) {
			continue
		}
		entry := map[string]any(nil)
		if req.Delimiter != "" {
			if i := strings.Index(n[len(req.Prefix):], req.Delimiter); i >= 0 {
				folder := n[:len(req.Prefix)+i+len(req.Delimiter)]
				if folder == lastFolder {
					continue
				}
				lastFolder = folder
				entry = map[string]any{"action": "folder", "fileName": folder, "fileId": nil, "size": 0,
					"contentLength": 0, "uploadTimestamp": 0, "fileInfo": map[string]string{}}
			}
		}
		if len(out) == req.MaxFileCount {
			next = n
			if entry != nil {
				next = entry["fileName"].(string)
			}
			break
		}
		if entry == nil {
			f := latest[n]
			entry = fileJSON(b, f)
			entry["size"] = len(f.data)
		}
		out = append(out, entry)
	}
	writeJSON(w, map[string]any{"files": out, "nextFileName": nilIfEmpty(next)})
}
