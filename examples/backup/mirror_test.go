package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fediops/fediops/internal/b2fake"
	"github.com/fediops/fediops/internal/s3fake"
	"github.com/fediops/fediops/spaces"
)

func TestMirrorCommand(t *testing.T) {
	s3 := s3fake.New(t)
	if err := s3.CreateBucket("media"); err != nil {
		t.Fatal(err)
	}
	b2 := b2fake.New()
	defer b2.Close()
	b2.CreateBucket("mirror")
	for k, v := range map[string]string{"S3_ENABLED": "true", "S3_BUCKET": "media", "S3_ENDPOINT": s3.URL,
		"S3_REGION": "nyc3", "AWS_ACCESS_KEY_ID": "AKIDFAKE", "AWS_SECRET_ACCESS_KEY": "fake-secret",
		"B2_APPLICATION_KEY_ID": b2.KeyID, "B2_APPLICATION_KEY": b2.Key, "B2_API_BASE": b2.URL,
		"MIRROR_B2_BUCKET": "mirror", "SLACK_WEBHOOK_URL": ""} {
		t.Setenv(k, v)
	}
	scfg, err := spaces.ConfigFromEnv(spaces.MapLookup(map[string]string{"S3_ENABLED": "true", "S3_BUCKET": "media",
		"S3_ENDPOINT": s3.URL, "S3_REGION": "nyc3", "AWS_ACCESS_KEY_ID": "AKIDFAKE", "AWS_SECRET_ACCESS_KEY": "fake-secret"}))
	if err != nil {
		t.Fatal(err)
	}
	src, err := spaces.New(scfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := src.Put(context.Background(), fmt.Sprintf("a/%d.png", i), strings.NewReader(strings.Repeat("x", i+1)), nil); err != nil {
			t.Fatal(err)
		}
	}
	lock := filepath.Join(t.TempDir(), "lock")
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := mirrorMain(append([]string{"-env", "", "-lock", lock}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, out, _ := run("-dry-run"); code != 0 || strings.Count(out, "would copy media/a/") != 10 {
		t.Fatalf("dry run: %d\n%s", code, out)
	}
	if len(b2.Files("mirror")) != 0 {
		t.Fatal("dry run wrote to B2")
	}
	if code, _, errs := run(); code != 0 {
		t.Fatalf("run: %d %s", code, errs)
	}
	if n := len(b2.Files("mirror")); n != 11 { // 10 objects + the state
		t.Fatalf("B2 has %d files, want 11", n)
	}
	if err := src.Delete(context.Background(), "a/0.png", "a/1.png", "a/2.png"); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := run(); code != 1 || !strings.Contains(errs, "shrank suspiciously") {
		t.Fatalf("shrink guard: %d %s", code, errs)
	}
	if code, _, errs := run("-max-delete", "0.5"); code != 0 || len(b2.Files("mirror")) != 8 {
		t.Fatalf("intended deletion: %d %s", code, errs)
	}
	if code, out, _ := run("-units"); code != 0 || !strings.Contains(out, "OnCalendar=01/4:30") {
		t.Fatalf("units: %d %s", code, out)
	}
	if code, _, _ := run("extra"); code != 2 {
		t.Errorf("extra argument: exit %d, want 2", code)
	}
	t.Setenv("S3_ENABLED", "false")
	if code, _, errs := run(); code != 2 || !strings.Contains(errs, "S3_ENABLED") {
		t.Errorf("S3 disabled: exit %d %s", code, errs)
	}
}
