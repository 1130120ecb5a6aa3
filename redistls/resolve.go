package redistls

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"
)

// The default Config.Resolve: the hosts file, then DNS, asked afresh for
// every connection. Go's own resolver keeps no DNS answers, but it keeps
// its copy of /etc/hosts for 5 s, so a name moved in that file would reach
// new connections up to 5 s late (glibc, stunnel's resolver, reads the
// file on every lookup). Here the file is checked on every lookup and read
// again whenever it changed; names it does not hold go to
// net.DefaultResolver, whose DNS answers are fresh (whatever the machine's
// own DNS server caches, as for stunnel). This works the same whether the
// program was built with cgo or without.
//
// The file comes first, as Debian's "hosts: files dns" has it. One gap
// remains: a name deleted from the file falls through to Go's resolver,
// which may answer from its copy of the old file for up to 5 s.

// systemHosts is the hosts file the default resolver reads.
var systemHosts = &hostsFile{path: "/etc/hosts"}

func resolveSystem(ctx context.Context, hostport string) ([]string, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, err
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return []string{hostport}, nil
	}
	ips := systemHosts.lookup(host)
	if len(ips) == 0 {
		if ips, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host); err != nil {
			return nil, err
		}
	}
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = net.JoinHostPort(ip.Unmap().String(), port)
	}
	return out, nil
}

// hostsFile is a hosts file read again whenever it changed. A change is a
// different file (inode), size or modification time; a file modified
// within the last timestampGrain before it was read is read again on
// every lookup, because a second change in the same clock tick would keep
// the same size and modification time.
type hostsFile struct {
	path string

	mu     sync.Mutex
	fi     os.FileInfo // of the copy in byName; nil: never read or missing
	readAt time.Time
	byName map[string][]netip.Addr // lower-case name without a trailing dot
}

// timestampGrain bounds the resolution of file modification times: a
// kernel tick on ext4 and tmpfs, 1 s on ext3, 2 s on FAT.
const timestampGrain = 2 * time.Second

// lookup returns name's addresses in file order; none when the file
// lacks the name, is missing or cannot be read (then DNS answers, as for
// glibc and Go).
func (h *hostsFile) lookup(name string) []netip.Addr {
	key := strings.ToLower(strings.TrimSuffix(name, "."))
	h.mu.Lock()
	defer h.mu.Unlock()
	fi, err := os.Stat(h.path)
	if err != nil {
		h.fi, h.byName = nil, nil
		return nil
	}
	fresh := h.fi != nil && os.SameFile(h.fi, fi) && h.fi.Size() == fi.Size() &&
		h.fi.ModTime().Equal(fi.ModTime()) && h.readAt.Sub(fi.ModTime()) > timestampGrain
	if !fresh {
		now := time.Now()
		data, err := os.ReadFile(h.path)
		if err != nil {
			h.fi, h.byName = nil, nil
			return nil
		}
		h.fi, h.readAt, h.byName = fi, now, parseHosts(data)
	}
	return h.byName[key]
}

// parseHosts reads hosts(5): an address, then names and aliases; "#"
// starts a comment. Lines whose address does not parse are skipped.
func parseHosts(data []byte) map[string][]netip.Addr {
	out := map[string][]netip.Addr{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		ip, err := netip.ParseAddr(f[0])
		if err != nil {
			continue
		}
		for _, n := range f[1:] {
			k := strings.ToLower(strings.TrimSuffix(n, "."))
			out[k] = append(out[k], ip)
		}
	}
	return out
}
