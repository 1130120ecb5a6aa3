package mirror_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/fediops/fediops/backup/b2store"
	"github.com/fediops/fediops/backup/mirror"
	"github.com/fediops/fediops/internal/b2fake"
	"github.com/fediops/fediops/internal/s3fake"
	"github.com/fediops/fediops/spaces"
)

// Example mirrors a Space to B2 twice: the first run copies (and
// lists B2 in full, having no state yet), the second finds nothing to do
// from the state file alone.
func Example() {
	ctx := context.Background()
	s3 := s3fake.New(nil) // stand-ins: a real run uses spaces.ConfigFromEnv and Backblaze
	defer s3.Close()
	_ = s3.CreateBucket("media")
	src, _ := spaces.New(&spaces.Config{Bucket: "media", Region: "nyc3", Endpoint: s3.URL, PathStyle: true,
		AccessKeyID: "AKIDFAKE", SecretAccessKey: "fake-secret"})
	_, _ = src.Put(ctx, "media_attachments/files/1/original/cat.png", strings.NewReader("meow"), nil)
	b2 := b2fake.New()
	defer b2.Close()
	b2.CreateBucket("backups")

	m, err := mirror.New(mirror.Config{Source: src, SourceName: "spaces:media",
		B2: b2store.Config{KeyID: b2.KeyID, Key: b2.Key, Bucket: "backups", APIBase: b2.URL}, TargetPrefix: "media/",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		fmt.Println(err)
		return
	}
	for range 2 {
		rep, err := m.Run(ctx)
		fmt.Printf("copied %d (%d bytes), unchanged %d, full B2 listing %v, err %v\n",
			rep.Copied, rep.CopiedBytes, rep.Unchanged, rep.Verified, err)
	}
	for _, f := range b2.Files("backups") {
		fmt.Println(f.Name, f.Info["src_etag"] != "")
	}
	// Output:
	// copied 1 (4 bytes), unchanged 0, full B2 listing true, err <nil>
	// copied 0 (0 bytes), unchanged 1, full B2 listing false, err <nil>
	// .fediops-mirror/media/state.json.zst false
	// media/media_attachments/files/1/original/cat.png true
}
