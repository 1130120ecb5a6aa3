package redistls

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestParseHosts(t *testing.T) {
	m := parseHosts([]byte("# comment\n127.0.0.1 localhost\n10.0.0.2\tRedis.Fediops.Test.  redis-alias # primary\n" +
		"not-an-ip bogus.test\n10.0.0.3 redis.fediops.test\nfe80::1%eth0 v6.test\n::1\n"))
	for name, want := range map[string][]string{
		"localhost":          {"127.0.0.1"},
		"redis.fediops.test": {"10.0.0.2", "10.0.0.3"}, // every line, in file order
		"redis-alias":        {"10.0.0.2"},
		"v6.test":            {"fe80::1%eth0"},
		"bogus.test":         nil,
	} {
		var got []string
		for _, a := range m[name] {
			got = append(got, a.String())
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
}

// TestHostsFileChanges: the hosts file is read again on the first lookup
// after any change: in place with the same size within the same clock
// tick, replaced by rename with the same size and time, created after
// being missing.
func TestHostsFileChanges(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hosts")
	h := &hostsFile{path: path}
	lookup := func() string {
		as := h.lookup("redis.fediops.test.")
		if len(as) == 0 {
			return ""
		}
		return as[0].String()
	}
	if got := lookup(); got != "" {
		t.Fatalf("missing file: %q", got)
	}
	write := func(ip string) {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		// One write at offset 0, same length: what a reader sees is the old or the new line.
		if _, err := f.WriteAt(fmt.Appendf(nil, "%s redis.fediops.test\n", ip), 0); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	write("127.0.0.2")
	if got := lookup(); got != "127.0.0.2" {
		t.Fatalf("created: %q", got)
	}
	for i, ip := range []string{"127.0.0.3", "127.0.0.2", "127.0.0.3"} {
		write(ip) // same size, most likely the same modification time
		if got := lookup(); got != ip {
			t.Fatalf("rewrite %d in place: %q, want %s", i, got, ip)
		}
	}

	// An old file (modified long before it was read) is parsed once and
	// then only checked: changing its bytes behind its back (same size,
	// time and inode) goes unseen, which shows the copy is kept...
	old := time.Now().Add(-time.Hour)
	os.Chtimes(path, old, old)
	if got := lookup(); got != "127.0.0.3" {
		t.Fatalf("after touch: %q", got)
	}
	write("127.0.0.2")
	os.Chtimes(path, old, old)
	if got := lookup(); got != "127.0.0.3" {
		t.Fatalf("unchanged size, time and inode: %q, want the kept copy 127.0.0.3", got)
	}
	// ...and a new modification time is seen at once.
	write("127.0.0.2")
	if got := lookup(); got != "127.0.0.2" {
		t.Fatalf("modified: %q", got)
	}
	// Replaced by rename, same size and time: another inode.
	os.Chtimes(path, old, old)
	lookup()
	tmp := filepath.Join(dir, "hosts.new")
	os.WriteFile(tmp, []byte("127.0.0.4 redis.fediops.test\n"), 0o644)
	os.Chtimes(tmp, old, old)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	if got := lookup(); got != "127.0.0.4" {
		t.Fatalf("replaced by rename: %q", got)
	}
	os.Remove(path)
	if got := lookup(); got != "" {
		t.Fatalf("removed: %q", got)
	}
}

func TestResolveSystemLiteral(t *testing.T) {
	for _, hp := range []string{"127.0.0.2:6379", "[::1]:6379"} {
		got, err := resolveSystem(t.Context(), hp)
		if err != nil || !slices.Equal(got, []string{hp}) {
			t.Errorf("%s: %v %v", hp, got, err)
		}
	}
}
