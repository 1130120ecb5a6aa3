package spaces

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/internal/envfile"
)

// seedEnv is the seed document's object-store block.
func seedEnv() map[string]string {
	return map[string]string{
		"S3_ENABLED":            "true",
		"S3_PROTOCOL":           "https",
		"S3_BUCKET":             "ourbucketname",
		"S3_REGION":             "nyc3",
		"S3_HOSTNAME":           "nyc3.digitaloceanspaces.com",
		"S3_ENDPOINT":           "https://nyc3.digitaloceanspaces.com",
		"AWS_ACCESS_KEY_ID":     "NOTINAMILLI0NYEARS",
		"AWS_SECRET_ACCESS_KEY": "hahahahahahahahahahahahaha",
		"S3_ALIAS_HOST":         "cdn.vmst.io",
	}
}

func TestConfigFromSeed(t *testing.T) {
	c, err := ConfigFromEnv(fediops.MapLookup(seedEnv()))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Bucket: "ourbucketname", Region: "nyc3", Protocol: "https", Hostname: "nyc3.digitaloceanspaces.com",
		Endpoint: "https://nyc3.digitaloceanspaces.com", PathStyle: true, AliasHost: "cdn.vmst.io",
		Permission: "public-read", MultipartThreshold: 15 << 20, OpenTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second,
		BatchDeleteLimit: 1000, BatchDeleteRetry: 3,
		AccessKeyID: "NOTINAMILLI0NYEARS", SecretAccessKey: "hahahahahahahahahahahahaha",
	}
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("got  %#v\nwant %#v", *c, want) // GoString hides the credentials
	}
	if got := c.Origin(); got != "ourbucketname.nyc3.digitaloceanspaces.com" {
		t.Errorf("Origin = %q", got)
	}
	s3c, err := c.NewS3()
	if err != nil {
		t.Fatal(err)
	}
	o := s3c.Options()
	if o.BaseEndpoint == nil || *o.BaseEndpoint != "https://nyc3.digitaloceanspaces.com" || !o.UsePathStyle || o.Region != "nyc3" {
		t.Errorf("s3 options: endpoint %v path style %t region %q", o.BaseEndpoint, o.UsePathStyle, o.Region)
	}
	if o.RequestChecksumCalculation != aws.RequestChecksumCalculationWhenRequired || o.ResponseChecksumValidation != aws.ResponseChecksumValidationWhenRequired {
		t.Errorf("checksums: request %v response %v, want WhenRequired", o.RequestChecksumCalculation, o.ResponseChecksumValidation)
	}
}

func TestConfigDefaultsAndOverrides(t *testing.T) {
	env := map[string]string{"S3_ENABLED": "true", "S3_BUCKET": "media", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
	c, err := ConfigFromEnv(fediops.MapLookup(env))
	if err != nil {
		t.Fatal(err)
	}
	if c.Region != "us-east-1" || c.Hostname != "s3-us-east-1.amazonaws.com" || c.Endpoint != "" || c.PathStyle || c.MaxAttempts != 0 {
		t.Errorf("defaults: %+v", c)
	}
	env["S3_ENDPOINT"] = "https://fra1.digitaloceanspaces.com"
	env["S3_OVERRIDE_PATH_STYLE"] = "true"
	env["S3_CLOUDFRONT_HOST"] = "files.example.org"
	env["S3_PERMISSION"] = ""
	env["S3_RETRY_LIMIT"] = "2"
	env["S3_MULTIPART_THRESHOLD"] = "8388608"
	if c, err = ConfigFromEnv(fediops.MapLookup(env)); err != nil {
		t.Fatal(err)
	}
	if c.PathStyle || c.AliasHost != "files.example.org" || c.Permission != "" || c.MaxAttempts != 3 || c.MultipartThreshold != 8<<20 {
		t.Errorf("overrides: %+v", c)
	}
	if c.Origin() != "media.fra1.digitaloceanspaces.com" {
		t.Errorf("Origin = %q", c.Origin())
	}
	if _, err := ConfigFromEnv(fediops.MapLookup(map[string]string{"S3_BUCKET": "x"})); !errors.Is(err, ErrDisabled) {
		t.Errorf("without S3_ENABLED: %v", err)
	}
}

func TestConfigErrorsNameEveryVariable(t *testing.T) {
	secret := "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRET"
	env := map[string]string{
		"S3_ENABLED":             "true",
		"S3_PROTOCOL":            "ftp",
		"S3_HOSTNAME":            "nyc3.digitaloceanspaces.com",
		"S3_ALIAS_HOST":          "https://cdn.example.org",
		"S3_CLOUDFRONT_HOST":     "old.example.org",
		"S3_MULTIPART_THRESHOLD": "1000",
		"S3_BATCH_DELETE_LIMIT":  "5000",
		"S3_OVERRIDE_PATH_STYLE": "true",
		"S3_PERMISSION":          "world-writable",
		"AWS_SECRET_ACCESS_KEY":  secret,
	}
	_, err := ConfigFromEnv(fediops.MapLookup(env))
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("want *ConfigError, got %v", err)
	}
	want := []string{"S3_OVERRIDE_PATH_STYLE", "S3_CLOUDFRONT_HOST", "S3_MULTIPART_THRESHOLD", "S3_BATCH_DELETE_LIMIT",
		"S3_BUCKET", "AWS_ACCESS_KEY_ID", "S3_PROTOCOL", "S3_ENDPOINT", "S3_ALIAS_HOST", "S3_PERMISSION"}
	got := ce.Vars()
	for _, v := range want {
		if !slices.Contains(got, v) || !strings.Contains(err.Error(), v+": ") {
			t.Errorf("error does not name %s: %v", v, err)
		}
	}
	if len(got) != len(want) {
		t.Errorf("named %v, want %v", got, want)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error leaks the secret: %v", err)
	}

	env = seedEnv()
	env["S3_ENDPOINT"] = "https://ourbucketname.nyc3.digitaloceanspaces.com"
	_, err = ConfigFromEnv(fediops.MapLookup(env))
	if !errors.As(err, &ce) || len(ce.Problems) != 1 || ce.Problems[0].Var != "S3_ENDPOINT" || !strings.Contains(err.Error(), "https://nyc3.digitaloceanspaces.com") {
		t.Errorf("bucket in endpoint: %v", err)
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	env := seedEnv()
	c, err := ConfigFromEnv(fediops.MapLookup(env))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "spaces", c, "value", *c)
	out := fmt.Sprintf("%v %+v %#v %s %v %s", c, c, *c, c, *c, buf.String())
	for _, s := range []string{env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]} {
		if strings.Contains(out, s) {
			t.Fatalf("credential printed: %s", out)
		}
	}
	if !strings.Contains(out, "ourbucketname") || !strings.Contains(buf.String(), "[redacted]") {
		t.Errorf("config not described: %s", out)
	}
}

func TestConfigFromEnvFile(t *testing.T) {
	f, err := envfile.Parse(".env.production", []byte(`# Object Store
S3_ENABLED=true
S3_PROTOCOL=https
S3_BUCKET=ourbucketname
S3_REGION=nyc3
S3_HOSTNAME=
S3_ENDPOINT=https://nyc3.digitaloceanspaces.com
AWS_ACCESS_KEY_ID=NOTINAMILLI0NYEARS
AWS_SECRET_ACCESS_KEY=hahahahahahahahahahahahaha
S3_ALIAS_HOST=cdn.vmst.io
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = ConfigFromEnv(f.Get)
	var ce *ConfigError
	if !errors.As(err, &ce) || !slices.Equal(ce.Vars(), []string{"S3_HOSTNAME"}) {
		t.Fatalf("empty S3_HOSTNAME: %v", err)
	}
	if err := f.Set("S3_HOSTNAME", "nyc3.digitaloceanspaces.com"); err != nil {
		t.Fatal(err)
	}
	c, err := ConfigFromEnv(f.Get)
	if err != nil {
		t.Fatal(err)
	}
	if c.PublicURL("a.png") != "https://cdn.vmst.io/a.png" || !c.PathStyle {
		t.Errorf("%v", c)
	}
}
