package doapi_test

import (
	"bytes"
	"context"
	"errors"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/godo"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/doapi"
	"github.com/fediops/fediops/internal/dofake"
)

func TestBaseURLMustBeHTTPSUnlessLoopback(t *testing.T) {
	const tok = "dop_v1_secret_token"
	for _, c := range []struct {
		url  string
		want string // "" accepted
	}{
		{"", ""},
		{"https://api.digitalocean.com", ""},
		{"https://proxy.example.org/do/", ""},
		{"http://127.0.0.1:8080", ""},
		{"http://127.9.9.9", ""},
		{"http://[::1]:9000/", ""},
		{"http://localhost:9000", ""},
		{"http://api.digitalocean.com", "must be https"},
		{"http://10.0.0.1:8080", "must be https"},
		{"http://localhost.example.org", "must be https"},
		{"ftp://127.0.0.1", "want https"},
		{"api.digitalocean.com", "want https"},
		{"https://user:hunter2@api.digitalocean.com", "no user or password"},
	} {
		c0, err := doapi.New(doapi.Options{Token: tok, BaseURL: c.url})
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q refused: %v", c.url, err)
		case c.want == "" && !strings.HasSuffix(c0.BaseURL.String(), "/"):
			t.Errorf("%q: base %s lacks the trailing slash godo resolves against", c.url, c0.BaseURL)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%q: %v, want %q", c.url, err, c.want)
		case err != nil && (strings.Contains(err.Error(), tok) || strings.Contains(err.Error(), "hunter2")):
			t.Errorf("%q: secret in %q", c.url, err)
		}
		if c.want == "must be https" && !errors.Is(err, doapi.ErrInsecureURL) {
			t.Errorf("%q: %v is not ErrInsecureURL", c.url, err)
		}
	}
	if _, err := doapi.New(doapi.Options{}); !errors.Is(err, doapi.ErrNoToken) {
		t.Errorf("no token: %v", err)
	}
}

func TestOptionsFromEnv(t *testing.T) {
	o, err := doapi.OptionsFromEnv(fediops.MapLookup(map[string]string{"DIGITALOCEAN_TOKEN": " tok ", "DIGITALOCEAN_API_URL": "http://127.0.0.1:1"}))
	if err != nil || o.Token != "tok" || o.BaseURL != "http://127.0.0.1:1" {
		t.Errorf("%+v %v", o, err)
	}
	if _, err := doapi.OptionsFromEnv(fediops.MapLookup(nil)); !errors.Is(err, doapi.ErrNoToken) || !strings.Contains(err.Error(), "DIGITALOCEAN_TOKEN") {
		t.Errorf("no token: %v", err)
	}
	_, err = doapi.OptionsFromEnv(fediops.MapLookup(map[string]string{"DIGITALOCEAN_TOKEN": "tok", "DIGITALOCEAN_API_URL": "http://do.example.org"}))
	if !errors.Is(err, doapi.ErrInsecureURL) || !strings.Contains(err.Error(), "DIGITALOCEAN_API_URL") {
		t.Errorf("clear-text URL: %v", err)
	}
}

func client(t *testing.T, f *dofake.Server, o doapi.Options) *godo.Client {
	t.Helper()
	o.Token, o.BaseURL = f.Token(), f.Start(t)
	if o.RetryWaitMin == 0 {
		o.RetryWaitMin, o.RetryWaitMax = 5*time.Millisecond, 20*time.Millisecond
	}
	c, err := doapi.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The error names the operation, the status and DO's message; the request
// id only when DO sent one, the attempts only when there were several.
func TestErrorFormat(t *testing.T) {
	f := dofake.New(dofake.Options{})
	c := client(t, f, doapi.Options{Retries: 2})
	ctx := context.Background()
	id := dofake.UUID(7)

	_, _, err := c.Databases.Get(ctx, id)
	err = doapi.Wrap("get cluster "+id, err)
	if got, want := err.Error(), "get cluster "+id+": API 404: The resource you were accessing could not be found."; got != want {
		t.Errorf("404:\n got %q\nwant %q", got, want)
	}
	if !errors.Is(err, doapi.ErrNotFound) || doapi.Status(err) != 404 || !doapi.IsStatus(err, 404) {
		t.Errorf("404 not recognised: %v", err)
	}
	var ge *godo.ErrorResponse
	if !errors.As(err, &ge) {
		t.Error("godo's error is not in the chain")
	}

	f.Fail("GET /v2/droplets/{droplet_id}", dofake.Fault{Status: 500, RequestID: "req-1"}, dofake.Fault{Status: 500, RequestID: "req-2"},
		dofake.Fault{Status: 500, RequestID: "req-3", Message: "Server was unable to give you a response."})
	_, _, err = c.Droplets.Get(ctx, 42)
	err = doapi.Wrap("get droplet 42", err)
	if got, want := err.Error(), "get droplet 42: API 500: Server was unable to give you a response. (request req-3, 3 attempts)"; got != want {
		t.Errorf("500s:\n got %q\nwant %q", got, want)
	}
	if errors.Is(err, doapi.ErrNotFound) {
		t.Error("500 is ErrNotFound")
	}

	f.Fail("GET /v2/droplets/{droplet_id}", dofake.Fault{Status: 422, Message: "no"})
	c1 := client(t, f, doapi.Options{Retries: -1})
	_, _, err = c1.Droplets.Get(ctx, 42)
	if got := doapi.Wrap("get droplet 42", err).Error(); got != "get droplet 42: API 422: no" {
		t.Errorf("422 without request id: %q", got)
	}
	if doapi.Wrap("x", nil) != nil {
		t.Error("Wrap(nil) is not nil")
	}
	// A cancelled call keeps its cause.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, _, err = c.Droplets.Get(cctx, 42)
	if err = doapi.Wrap("get droplet 42", err); !errors.Is(err, context.Canceled) || doapi.Status(err) != 0 {
		t.Errorf("cancelled: %v", err)
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	f := dofake.New(dofake.Options{})
	c := client(t, f, doapi.Options{})
	f.Fail("GET /v2/droplets", dofake.Fault{Status: 429, RetryAfter: "1"})
	start := time.Now()
	if _, _, err := c.Droplets.List(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 900*time.Millisecond {
		t.Errorf("Retry-After: 1 not waited for (%v)", el)
	}
	if n := f.Count("GET /v2/droplets"); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
	// Out of retries: the 429 comes back with the wait it asked for.
	c = client(t, f, doapi.Options{Retries: 1})
	f.Fail("GET /v2/droplets", dofake.Fault{Status: 429, RetryAfter: "0"}, dofake.Fault{Status: 429, RetryAfter: "7"})
	_, _, err := c.Droplets.List(context.Background(), nil)
	var e *doapi.Error
	if err = doapi.Wrap("list droplets", err); !errors.As(err, &e) || e.Status != 429 || e.RetryAfter != 7*time.Second || e.Attempts != 2 {
		t.Errorf("429s: %v %+v", err, e)
	}
}

// A request that hangs is cut at Timeout, each attempt.
func TestRequestTimeout(t *testing.T) {
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	t.Cleanup(hang.Close)
	var logged bytes.Buffer // oauth2 logged "Transport.CancelRequest no longer does anything" (once a process)
	log.SetOutput(&logged)
	t.Cleanup(func() { log.SetOutput(os.Stderr) })
	c, err := doapi.New(doapi.Options{Token: "tok", BaseURL: hang.URL, Retries: -1, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, _, err = c.Account.Get(context.Background())
	if el := time.Since(start); err == nil || el > 3*time.Second {
		t.Fatalf("hung request: %v after %v", err, el)
	}
	if strings.Contains(doapi.Wrap("get account", err).Error(), "tok") {
		t.Errorf("token in %v", err)
	}
	if logged.Len() > 0 {
		t.Errorf("logged: %s", logged.String())
	}
}

func TestAllFollowsPages(t *testing.T) {
	f := dofake.New(dofake.Options{PerPage: 2})
	for i := range 5 {
		f.AddSnapshot(godo.Snapshot{Name: "s" + string(rune('a'+i)), Regions: []string{"tor1"}})
	}
	c := client(t, f, doapi.Options{})
	ss, err := doapi.All(context.Background(), c.Snapshots.ListDroplet)
	if err != nil || len(ss) != 5 || ss[4].Name != "se" {
		t.Fatalf("%d snapshots %v", len(ss), err)
	}
	if n := f.Count("GET /v2/snapshots"); n != 3 {
		t.Errorf("%d pages fetched, want 3", n)
	}
}

// A refused connection and a name that does not resolve end a call at
// once with their cause, whatever the retries (the default backoff would
// wait over a minute).
func TestUnreachableFailsFast(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	for _, base := range []string{closed.URL, "https://api.digitalocean.invalid"} {
		c, err := doapi.New(doapi.Options{Token: "tok", BaseURL: base})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, _, err = c.Account.Get(context.Background())
		el := time.Since(start)
		err = doapi.Wrap("get account", err)
		if err == nil || el > 2*time.Second || !strings.Contains(err.Error(), "refused") && !strings.Contains(err.Error(), "no such host") {
			t.Errorf("%s: %v after %v", base, err, el)
		}
		t.Logf("%s: %v after %v", base, err, el.Round(time.Millisecond))
	}
}
