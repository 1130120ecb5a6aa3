package spaces

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/internal/s3fake"
)

// newFake starts a fake Space holding bucket "media" and a Config for it.
func newFake(t *testing.T, opts ...s3fake.Option) (*s3fake.Server, *Config) {
	t.Helper()
	srv := s3fake.New(t, opts...)
	if err := srv.CreateBucket("media"); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"S3_ENABLED": "true", "S3_BUCKET": "media", "S3_REGION": "nyc3", "S3_PROTOCOL": "http",
		"S3_ENDPOINT": srv.URL, "S3_HOSTNAME": strings.TrimPrefix(srv.URL, "http://"),
		"AWS_ACCESS_KEY_ID": "AKIDFAKE", "AWS_SECRET_ACCESS_KEY": "fake-secret",
		"S3_MULTIPART_THRESHOLD": fmt.Sprint(MinPartSize),
	}
	cfg, err := ConfigFromEnv(fediops.MapLookup(env))
	if err != nil {
		t.Fatal(err)
	}
	return srv, cfg
}

func ops(reqs []s3fake.Request) map[string]int {
	m := map[string]int{}
	for _, r := range reqs {
		if r.Refused {
			m["refused "+r.Op()]++
		} else {
			m[r.Op()]++
		}
	}
	return m
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// The SDK's default checksums are what Spaces refused; Strict models that.
// The same upload with this package's client goes through.
func TestStrictRefusesSDKDefaults(t *testing.T) {
	ctx := ctxT(t)
	srv, cfg := newFake(t, s3fake.Strict())
	plain := s3.New(s3.Options{
		Region: "nyc3", BaseEndpoint: aws.String(srv.URL), UsePathStyle: true,
		Credentials:                credentials.NewStaticCredentialsProvider("AKIDFAKE", "fake-secret", ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported, // LoadDefaultConfig's default
	})
	_, err := plain.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("media"), Key: aws.String("a"), Body: strings.NewReader("x")})
	if err == nil {
		for _, r := range srv.Requests() {
			t.Logf("%s %s %v", r.Method, r.Path, r.Header)
		}
		t.Fatal("the SDK default checksums were accepted by the strict fake")
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, "a", strings.NewReader("x"), nil); err != nil {
		t.Fatal(err)
	}
}

func TestPutGetMultipart(t *testing.T) {
	ctx := ctxT(t)
	srv, cfg := newFake(t, s3fake.Strict())
	cfg.KeyPrefix = "prod"
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 2*MinPartSize+12345)
	rng := rand.NewChaCha8([32]byte{1})
	_, _ = rng.Read(big)
	// An io.Reader without Seek or Len: the upload cannot know the size.
	obj, err := c.Put(ctx, "media_attachments/big.bin", io.MultiReader(bytes.NewReader(big)), &PutOptions{ContentType: "application/octet-stream"})
	if err != nil {
		t.Fatal(err)
	}
	if obj.Size != int64(len(big)) || !strings.HasSuffix(obj.ETag, "-3") {
		t.Errorf("put: %+v, want size %d and a 3-part ETag", obj, len(big))
	}
	if _, err := c.Put(ctx, "small.txt", strings.NewReader("hello"), nil); err != nil {
		t.Fatal(err)
	}
	got := ops(srv.Requests())
	if got["UploadPart"] != 3 || got["CompleteMultipartUpload"] != 1 || got["PutObject"] != 1 {
		t.Errorf("requests: %v", got)
	}
	for _, r := range srv.Requests() {
		if r.Op() == "PutObject" && (r.Path != "/media/prod/small.txt" || r.Header.Get("X-Amz-Acl") != "public-read" || r.Header.Get("Cache-Control") != CacheControl) {
			t.Errorf("PutObject %s acl %q cache %q", r.Path, r.Header.Get("X-Amz-Acl"), r.Header.Get("Cache-Control"))
		}
	}

	body, meta, err := c.Get(ctx, "media_attachments/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, body)
	body.Close()
	if err != nil || n != int64(len(big)) || meta.Size != n || !bytes.Equal(h.Sum(nil), sha(big)) {
		t.Errorf("get: %d bytes, meta %+v, err %v", n, meta, err)
	}
	if _, _, err := c.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing key: %v", err)
	}
	if _, err := c.Head(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing key head: %v", err)
	}
}

func sha(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

func TestObjectsPagingAndDelete(t *testing.T) {
	ctx := ctxT(t)
	for _, strict := range []bool{false, true} {
		t.Run(fmt.Sprintf("strict=%t", strict), func(t *testing.T) {
			var opts []s3fake.Option
			if strict {
				opts = append(opts, s3fake.Strict())
			}
			srv, cfg := newFake(t, opts...)
			cfg.PageSize = 100
			cfg.BatchDeleteLimit = 120
			var logs bytes.Buffer
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			const n = 250
			for i := range n {
				if _, err := c.Put(ctx, fmt.Sprintf("a/%04d", i), strings.NewReader(strings.Repeat("x", i)), nil); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := c.Put(ctx, "b/other", strings.NewReader("y"), nil); err != nil {
				t.Fatal(err)
			}
			before := len(srv.Requests())
			var keys []string
			start := time.Now().Add(-time.Minute)
			for o, err := range c.Objects(ctx, "a/") {
				if err != nil {
					t.Fatal(err)
				}
				if want := fmt.Sprintf("a/%04d", len(keys)); o.Key != want || o.Size != int64(len(keys)) || len(o.ETag) != 32 || o.LastModified.Before(start) {
					t.Fatalf("object %d: %+v, want key %s", len(keys), o, want)
				}
				keys = append(keys, o.Key)
			}
			if len(keys) != n {
				t.Fatalf("listed %d objects, want %d", len(keys), n)
			}
			if got := ops(srv.Requests()[before:])["ListObjectsV2"]; got != 3 {
				t.Errorf("%d list requests for %d objects at 100 a page, want 3", got, n)
			}
			// Stopping early stops paging.
			before = len(srv.Requests())
			for range c.Objects(ctx, "") {
				break
			}
			if got := ops(srv.Requests()[before:])["ListObjectsV2"]; got != 1 {
				t.Errorf("early break made %d list requests", got)
			}

			before = len(srv.Requests())
			if err := c.Delete(ctx, keys...); err != nil {
				t.Fatal(err)
			}
			// Strict (Spaces) takes the batches too: they carry Content-MD5.
			if got := ops(srv.Requests()[before:]); got["DeleteObjects"] != 3 || len(got) != 1 {
				t.Errorf("delete requests: %v (want 3 batches of at most 120)", got)
			}
			if strings.Contains(logs.String(), "AKIDFAKE") || strings.Contains(logs.String(), "fake-secret") || !strings.Contains(logs.String(), "spaces: put") {
				t.Errorf("logs leak credentials or miss puts:\n%.2000s", logs.String())
			}
			var left []string
			for o, err := range c.Objects(ctx, "") {
				if err != nil {
					t.Fatal(err)
				}
				left = append(left, o.Key)
			}
			if len(left) != 1 || left[0] != "b/other" {
				t.Errorf("left after delete: %v", left)
			}
		})
	}
}

func TestObjectsErrorIsYielded(t *testing.T) {
	srv, cfg := newFake(t)
	cfg.Bucket = "missing"
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_ = srv
	var errs int
	for _, err := range c.Objects(ctxT(t), "") {
		if err == nil || !strings.HasPrefix(err.Error(), "list missing/") {
			t.Errorf("err = %v", err)
		}
		errs++
	}
	if errs != 1 {
		t.Errorf("%d errors yielded, want 1", errs)
	}
}

func TestVirtualHostStyle(t *testing.T) {
	ctx := ctxT(t)
	srv := s3fake.New(t, s3fake.VirtualHosts("nyc3.spaces.test"))
	if err := srv.CreateBucket("media"); err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(strings.TrimPrefix(srv.URL, "http://"), ":")
	env := map[string]string{
		"S3_ENABLED": "true", "S3_BUCKET": "media", "S3_ENDPOINT": "http://nyc3.spaces.test:" + port,
		"S3_OVERRIDE_PATH_STYLE": "true", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s",
	}
	cfg, err := ConfigFromEnv(fediops.MapLookup(env))
	if err != nil {
		t.Fatal(err)
	}
	cfg.HTTPClient = srv.Client()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, "x/y.png", strings.NewReader("png"), nil); err != nil {
		t.Fatal(err)
	}
	if o, err := c.Head(ctx, "x/y.png"); err != nil || o.Size != 3 {
		t.Fatalf("head: %+v %v", o, err)
	}
	for _, r := range srv.Requests() {
		if r.Host != "media.nyc3.spaces.test:"+port || r.Path != "/x/y.png" {
			t.Errorf("request %s %s%s: want virtual-host addressing", r.Method, r.Host, r.Path)
		}
	}
	if got := cfg.EndpointURL("x/y.png"); got != "http://media.nyc3.spaces.test:"+port+"/x/y.png" {
		t.Errorf("EndpointURL = %s", got)
	}
}
