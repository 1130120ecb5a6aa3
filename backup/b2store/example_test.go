package b2store_test

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/fediops/fediops/backup/b2store"
	"github.com/fediops/fediops/internal/b2fake"
)

// Open a bucket (here on the B2 stand-in; in production leave APIBase
// empty and use ConfigFromEnv(os.LookupEnv)), store and read an object.
func Example() {
	srv := b2fake.New()
	defer srv.Close()
	srv.CreateBucket("fediops-backups")
	ctx := context.Background()
	st, err := b2store.Open(ctx, b2store.Config{KeyID: srv.KeyID, Key: srv.Key, Bucket: "fediops-backups", APIBase: srv.URL})
	if err != nil {
		fmt.Println(err)
		return
	}
	info, err := st.Put(ctx, "db/hello.txt", strings.NewReader("hello B2"))
	fmt.Println(info.Name, info.Size, err)
	rc, _ := st.Open(ctx, "db/hello.txt")
	data, _ := io.ReadAll(rc)
	rc.Close()
	fmt.Println(string(data), len(srv.Files("fediops-backups")))
	// Output:
	// db/hello.txt 8 <nil>
	// hello B2 1
}
