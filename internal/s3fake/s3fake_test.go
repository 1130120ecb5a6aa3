package s3fake

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestAliasVirtualHostAndStrict(t *testing.T) {
	s := New(t, Alias("cdn.fediops.test", "media"), VirtualHosts("nyc3.spaces.test"), Strict())
	if err := s.CreateBucket("media"); err != nil {
		t.Fatal(err)
	}
	c := s.Client()
	_, port, _ := strings.Cut(s.Addr, ":")
	do := func(method, url string, h http.Header, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// gofakes3 checks no signatures, so plain requests stand in for the SDK.
	if code, body := do("PUT", "http://media.nyc3.spaces.test:"+port+"/a/b.txt", nil, "hello"); code != 200 {
		t.Fatalf("virtual-host PUT: %d %s", code, body)
	}
	if code, body := do("GET", "http://cdn.fediops.test:"+port+"/a/b.txt", nil, ""); code != 200 || body != "hello" {
		t.Fatalf("alias GET: %d %q", code, body)
	}
	if code, _ := do("PUT", "http://cdn.fediops.test:"+port+"/a/c.txt", nil, "x"); code != http.StatusMethodNotAllowed {
		t.Errorf("alias PUT: %d", code)
	}
	if code, body := do("PUT", s.URL+"/media/a/d.txt", http.Header{"X-Amz-Checksum-Crc32": {"AAAAAA=="}}, "x"); code != 400 || !strings.Contains(body, "InvalidArgument") {
		t.Errorf("strict: %d %s", code, body)
	}
	var ops []string
	for _, r := range s.Requests() {
		ops = append(ops, r.Op())
	}
	if got := strings.Join(ops, ","); got != "PutObject,GetObject,PutObject,PutObject" || !s.Requests()[3].Refused {
		t.Errorf("requests %s", got)
	}
}

func TestDeleteObjectsIntegrity(t *testing.T) {
	body := `<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>a.txt</Key></Object><Quiet>true</Quiet></Delete>`
	md5of := func(s string) string { sum := md5.Sum([]byte(s)); return base64.StdEncoding.EncodeToString(sum[:]) }
	crc32of := func(s string) string {
		return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE([]byte(s))))
	}
	for _, tc := range []struct {
		name   string
		opts   []Option
		header http.Header
		status int
		code   string
	}{
		{"strict without Content-MD5", []Option{Strict()}, nil, 400, "InvalidRequest"},
		{"strict with a CRC32 only", []Option{Strict()}, http.Header{"X-Amz-Checksum-Crc32": {crc32of(body)}}, 400, "InvalidArgument"},
		{"strict with a wrong Content-MD5", []Option{Strict()}, http.Header{"Content-Md5": {md5of(body + " ")}}, 400, "BadDigest"},
		{"strict with a malformed Content-MD5", []Option{Strict()}, http.Header{"Content-Md5": {"not base64"}}, 400, "InvalidDigest"},
		{"strict with Content-MD5", []Option{Strict()}, http.Header{"Content-Md5": {md5of(body)}}, 200, ""},
		{"without any integrity header", nil, nil, 400, "InvalidRequest"},
		{"with a CRC32", nil, http.Header{"X-Amz-Checksum-Crc32": {crc32of(body)}}, 200, ""},
		{"with a wrong CRC32", nil, http.Header{"X-Amz-Checksum-Crc32": {crc32of(body + " ")}}, 400, "BadDigest"},
		{"with Content-MD5", nil, http.Header{"Content-Md5": {md5of(body)}}, 200, ""},
		{"no batch delete", []Option{NoBatchDelete()}, http.Header{"Content-Md5": {md5of(body)}}, 501, "NotImplemented"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(t, tc.opts...)
			if err := s.CreateBucket("media"); err != nil {
				t.Fatal(err)
			}
			put, _ := http.NewRequest("PUT", s.URL+"/media/a.txt", strings.NewReader("x"))
			if resp, err := http.DefaultClient.Do(put); err != nil || resp.StatusCode != 200 {
				t.Fatalf("put: %v %v", resp, err)
			} else {
				resp.Body.Close()
			}
			req, _ := http.NewRequest("POST", s.URL+"/media?delete", strings.NewReader(body))
			for k, v := range tc.header {
				req.Header[k] = v
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || (tc.code != "" && !strings.Contains(string(b), "<Code>"+tc.code+"</Code>")) {
				t.Fatalf("%d %s, want %d %s", resp.StatusCode, b, tc.status, tc.code)
			}
			last := s.Requests()[len(s.Requests())-1]
			if last.Op() != "DeleteObjects" || last.Refused != (tc.code != "") || last.Code != tc.code {
				t.Errorf("recorded %s refused=%t code=%q", last.Op(), last.Refused, last.Code)
			}
			head, _ := http.NewRequest("HEAD", s.URL+"/media/a.txt", nil)
			resp, err = http.DefaultClient.Do(head)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if gone := resp.StatusCode == 404; gone != (tc.status == 200) {
				t.Errorf("after a %d answer the object answers HEAD %d", tc.status, resp.StatusCode)
			}
		})
	}
}

func TestConnsAndMultipartOps(t *testing.T) {
	s := New(t)
	if err := s.CreateBucket("media"); err != nil {
		t.Fatal(err)
	}
	get := func(c *http.Client, path string) {
		t.Helper()
		resp, err := c.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	c := s.Client()
	for range 3 {
		get(c, "/media?uploads")
	}
	if n := s.Conns(); n != 1 {
		t.Errorf("three requests on one client: %d connections", n)
	}
	get(s.Client(), "/media/a?uploadId=x")
	if n := s.Conns(); n != 2 {
		t.Errorf("a second client: %d connections in all", n)
	}
	var ops []string
	for _, r := range s.Requests() {
		ops = append(ops, r.Op())
	}
	if got := strings.Join(ops, ","); got != "ListMultipartUploads,ListMultipartUploads,ListMultipartUploads,ListParts" {
		t.Errorf("ops %s", got)
	}
}
