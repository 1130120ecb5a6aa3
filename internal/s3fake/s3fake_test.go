package s3fake

import (
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
