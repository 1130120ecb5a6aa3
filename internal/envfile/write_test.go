package envfile

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileKeepsMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ".env.production")
	if err := os.WriteFile(path, []byte(seedPostgres), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	f, err := Read(path, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Set("DB_PORT", "25060"); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, 0o640, string(f.Bytes()))
	assertOnlyFile(t, dir, ".env.production")
}

func TestWriteFileNewFile(t *testing.T) {
	dir := t.TempDir()
	f := mustParse(t, seedPuma)
	path := filepath.Join(dir, "new.env")
	if err := f.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, 0o600, seedPuma)
	assertOnlyFile(t, dir, "new.env")
}

func TestWriteFileFollowsSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.env")
	link := filepath.Join(dir, ".env.production")
	if err := os.WriteFile(real, []byte("A=1\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real.env", link); err != nil {
		t.Fatal(err)
	}
	f, err := Read(link, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Set("A", "2"); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v %v", fi, err)
	}
	checkFile(t, real, 0o640, "A='2'\n")
}

func TestWriteFileMissingDirectory(t *testing.T) {
	f := mustParse(t, seedPuma)
	if err := f.WriteFile(filepath.Join(t.TempDir(), "no", "such.env")); err == nil {
		t.Error("WriteFile into a missing directory succeeded")
	}
}

func checkFile(t *testing.T, path string, mode fs.FileMode, content string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != mode {
		t.Errorf("mode %v, want %v", got, mode)
	}
	if got, _ := os.ReadFile(path); string(got) != content {
		t.Errorf("content %q, want %q", got, content)
	}
}

func assertOnlyFile(t *testing.T, dir, name string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != name {
		t.Errorf("directory holds %v, want only %s", ents, name)
	}
}
