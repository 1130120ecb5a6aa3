package spaces_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/internal/s3fake"
	"github.com/fediops/fediops/spaces"
)

// The seed's .env.production block: where Mastodon's media URLs point and
// which CDN origin serves them.
func Example() {
	env := map[string]string{
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
	cfg, err := spaces.ConfigFromEnv(fediops.MapLookup(env))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.PublicURL("accounts/avatars/000/000/001/original/me.png"))
	fmt.Println(cfg.EndpointURL("accounts/avatars/000/000/001/original/me.png"))
	fmt.Println(cfg.Origin())
	fmt.Println(cfg)

	delete(env, "S3_BUCKET")
	env["S3_ALIAS_HOST"] = "https://cdn.vmst.io"
	_, err = spaces.ConfigFromEnv(fediops.MapLookup(env))
	fmt.Println(err)
	// Output:
	// https://cdn.vmst.io/accounts/avatars/000/000/001/original/me.png
	// https://nyc3.digitaloceanspaces.com/ourbucketname/accounts/avatars/000/000/001/original/me.png
	// ourbucketname.nyc3.digitaloceanspaces.com
	// spaces.Config{Bucket:"ourbucketname" Region:"nyc3" Endpoint:"https://nyc3.digitaloceanspaces.com" PathStyle:true AliasHost:"cdn.vmst.io" AccessKeyID:[redacted] SecretAccessKey:[redacted]}
	// bad S3 settings: S3_BUCKET: missing; S3_ALIAS_HOST: "https://cdn.vmst.io" must not include a scheme: URLs would read https://https://cdn.vmst.io
}

// Put, list and delete against an in-process S3 server, as a mirror or an
// audit would.
func ExampleClient_Objects() {
	ctx := context.Background()
	srv := s3fake.New(nil)
	defer srv.Close()
	_ = srv.CreateBucket("media")

	c, err := spaces.New(&spaces.Config{
		Bucket: "media", Region: "nyc3", Endpoint: srv.URL, PathStyle: true,
		AccessKeyID: "key", SecretAccessKey: "secret", PageSize: 2,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, k := range []string{"a/1.png", "a/2.png", "a/3.png", "b/1.png"} {
		if _, err := c.Put(ctx, k, strings.NewReader("data of "+k), nil); err != nil {
			fmt.Println(err)
			return
		}
	}
	for o, err := range c.Objects(ctx, "a/") {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(o.Key, o.Size, o.ETag)
	}
	fmt.Println(c.Delete(ctx, "a/1.png", "a/2.png", "a/3.png"))
	for o := range c.Objects(ctx, "") {
		fmt.Println("left:", o.Key)
	}
	// Output:
	// a/1.png 15 4fc5c1d6a2941a000c50d0e0738a866a
	// a/2.png 15 0333c28b53bfcb9741155872719ca3b1
	// a/3.png 15 05b92baed6cadaf526fd3632951a0575
	// <nil>
	// left: b/1.png
}
