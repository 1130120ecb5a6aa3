package spaces

import (
	"testing"

	"github.com/fediops/fediops"
)

func TestPublicURL(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		key  string
		want string
	}{
		{"seed alias", nil, "media_attachments/files/1/original/a b.png",
			"https://cdn.vmst.io/media_attachments/files/1/original/a%20b.png"},
		{"no alias: path style on S3_HOSTNAME even with virtual-host API", map[string]string{"S3_ALIAS_HOST": "", "S3_OVERRIDE_PATH_STYLE": "true"}, "x/y.png",
			"https://nyc3.digitaloceanspaces.com/ourbucketname/x/y.png"},
		{"prefix and protocol", map[string]string{"S3_KEY_PREFIX": "prod", "S3_PROTOCOL": "http"}, "/x.png",
			"http://cdn.vmst.io/prod/x.png"},
		{"legacy cloudfront host with a path", map[string]string{"S3_ALIAS_HOST": "", "S3_CLOUDFRONT_HOST": "example.org/media"}, "x.png",
			"https://example.org/media/x.png"},
		{"AWS defaults", map[string]string{"S3_ALIAS_HOST": "", "S3_ENDPOINT": "", "S3_HOSTNAME": "", "S3_REGION": "eu-west-1"}, "x.png",
			"https://s3-eu-west-1.amazonaws.com/ourbucketname/x.png"},
	} {
		env := seedEnv()
		for k, v := range tc.env {
			if v == "" {
				delete(env, k)
			} else {
				env[k] = v
			}
		}
		c, err := ConfigFromEnv(fediops.MapLookup(env))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := c.PublicURL(tc.key); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestEndpointURL(t *testing.T) {
	c, err := ConfigFromEnv(fediops.MapLookup(seedEnv()))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.EndpointURL("a/b.png"); got != "https://nyc3.digitaloceanspaces.com/ourbucketname/a/b.png" {
		t.Errorf("path style: %s", got)
	}
	c.PathStyle = false
	if got := c.EndpointURL("a/b.png"); got != "https://ourbucketname.nyc3.digitaloceanspaces.com/a/b.png" {
		t.Errorf("virtual host: %s", got)
	}
}
