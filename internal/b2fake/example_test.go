package b2fake_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/Backblaze/blazer/b2"

	"github.com/fediops/fediops/internal/b2fake"
)

// Point blazer at the stand-in, make the first upload fail with 503 (blazer
// retries on a new upload URL), then assert on what was stored.
func Example() {
	srv := b2fake.New()
	defer srv.Close()
	srv.CreateBucket("backups")
	srv.FailNext("b2_upload_file", 1, 503)
	ctx := context.Background()
	c, _ := b2.NewClient(ctx, srv.KeyID, srv.Key, b2.APIBase(srv.URL))
	bucket, _ := c.Bucket(ctx, "backups")
	w := bucket.Object("db/x").NewWriter(ctx)
	w.ReadFrom(strings.NewReader("payload"))
	fmt.Println(w.Close())
	for _, f := range srv.Files("backups") {
		fmt.Println(f.Name, string(f.Data), srv.Calls("b2_upload_file"))
	}
	// Output:
	// <nil>
	// db/x payload 2
}
