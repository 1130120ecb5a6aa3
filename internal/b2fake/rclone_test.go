package b2fake_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/fediops/fediops/internal/b2fake"
	"github.com/fediops/fediops/internal/testenv"
)

// TestV1WithRclone runs rclone 1.60 against the v1 endpoint: copy a tree
// (directory-by-directory listing with a small page size, so folders span
// pages), list it, then sync a deletion and a change, with hard deletes.
func TestV1WithRclone(t *testing.T) {
	rclone := testenv.Binary(t, "rclone")
	s := b2fake.New()
	defer s.Close()
	s.CreateBucket("dst")
	url, stop := s.V1()
	defer stop()
	dir := t.TempDir()
	files := map[string]string{}
	for _, n := range []string{"a/1/x.png", "a/1/y.png", "a/2/z.png", "b/w.png", "top.txt", "a/1/deep/q.bin"} {
		files[n] = "content of " + n
	}
	write := func() {
		for n, c := range files {
			p := filepath.Join(dir, n)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(rclone, args...)
		cmd.Env = append(os.Environ(), "RCLONE_CONFIG=/dev/null", "RCLONE_CONFIG_B_TYPE=b2",
			"RCLONE_CONFIG_B_ACCOUNT="+s.KeyID, "RCLONE_CONFIG_B_KEY="+s.Key, "RCLONE_CONFIG_B_ENDPOINT="+url)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("rclone %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	check := func() {
		t.Helper()
		got := strings.Fields(run("lsf", "-R", "--files-only", "b:dst"))
		var want []string
		for n := range files {
			want = append(want, n)
		}
		sort.Strings(want)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("rclone lsf: %v, want %v", got, want)
		}
		for _, f := range s.Files("dst") {
			if !f.Hidden && string(f.Data) != files[f.Name] {
				t.Errorf("%s: %q, want %q", f.Name, f.Data, files[f.Name])
			}
		}
	}
	write()
	run("copy", dir, "b:dst")
	check()
	os.Remove(filepath.Join(dir, "b/w.png"))
	delete(files, "b/w.png")
	files["top.txt"] = "changed, and longer"
	write()
	run("sync", "--retries", "1", "--b2-hard-delete", "--fast-list", dir, "b:dst")
	check()
	if s.Calls("b2_delete_file_version") != 1 {
		t.Errorf("b2_delete_file_version called %d times, want 1", s.Calls("b2_delete_file_version"))
	}
}
