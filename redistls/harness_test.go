package redistls

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/fediops/fediops/internal/testenv"
	"github.com/redis/go-redis/v9"
)

// The failover harness: DigitalOcean's switchover, with real name
// resolution, through the examples/tunnel program as built and through
// stunnel 5.68 (delay = yes), one after the other in the same run.
//
// The test process starts a copy of itself (the child) in a private mount
// and network namespace. The child brings the namespace's loopback up,
// bind-mounts a scratch hosts file, resolv.conf and nsswitch.conf ("hosts:
// files dns") over /etc's (the machine's own files stay untouched), and
// starts two TLS-only Redis nodes on 127.0.0.2 and 127.0.0.3, same port,
// one replicating from the other over TLS. The name redis.fediops.test
// lives in the scratch hosts file (mode hosts) or is served with a 1 s TTL
// by dnsmasq on 127.0.0.1:53, which the scratch resolv.conf names (mode
// dns). The tunnel and stunnel read a stunnel configuration file that
// connects to that name and verifies the certificate against the private
// CA.
//
// For each proxy, clients go-redis clients (default retries, 1 s
// timeouts) INCR their own key every 20 ms while the child switches the
// primary rounds times, as DO does: CLIENT PAUSE WRITE on the primary,
// wait until the replica's offset matches, REPLICAOF NO ONE on the
// replica, REPLICAOF on the old primary, move the name, CLIENT UNPAUSE;
// 1.2-1.7 s apart, so the switch falls at a random phase of the tunnel's
// probe. Then the primary is killed (SIGKILL), the replica promoted 300 ms
// later and the name moved; a new node takes the dead one's address. The
// child writes what it measured as JSON for the parent to judge.
//
// REDISTLS_FAILOVER_ROUNDS sets the switchovers, REDISTLS_FAILOVER_TUNNEL
// a tunnel binary to measure instead of building examples/tunnel (an
// older build, say), REDISTLS_FAILOVER_KEEP=1 keeps the configuration
// files and logs.

const harnessChildEnv = "REDISTLS_FAILOVER_CHILD"

type harnessParams struct {
	Mode    string // "hosts" or "dns"
	Rounds  int    // switchovers per proxy
	Clients int
	Tunnel  string // the examples/tunnel binary
	Stunnel string
	Dnsmasq string
	Dir     string // scratch files and logs
	Out     string // the results, JSON
}

// harnessResult is one mode's run: the tunnel, then stunnel.
type harnessResult struct {
	Mode    string
	Load    string // /proc/loadavg when the run began
	Proxies []*proxyResult
}

type proxyResult struct {
	Proxy string
	Load  string // /proc/loadavg when its switchovers began (1, 5, 15 min)
	// Per switchover: from the name's move until every client had a good
	// write; and the median client's first good write after the move.
	Recovery, ClientMedian []time.Duration
	// Per switchover: the most connections one client dialed, and all
	// clients' dials together.
	MaxReconnects, Reconnects []int
	// Per switchover: idle connections opened before it (of 20; a proxy
	// slow to connect opens fewer), and those still open on the demoted
	// node when the next one begins.
	IdleOpened, IdleLeft []int
	Failed               int      // commands that returned an error to the application, in the switchovers
	Errors               []string // a few of them
	MaxGap               time.Duration
	Gaps                 int // clients that went over 2 s without a good command
	Acked                int // acknowledged INCRs in the switchovers
	Lost                 int // clients whose acknowledged count went backwards or is missing on the primary
	// The primary killed: from the name's move until every client had a
	// good write, the commands that failed meanwhile (the dead node's
	// in-flight ones included), and acknowledged writes the crash lost
	// (asynchronous replication: not the proxy's doing).
	KillRecovery time.Duration
	KillFailed   int
	KillLost     int
	Metrics      map[string]float64 // the tunnel's redistls_ counters at the end
}

func init() {
	// The child: run before any test, in the namespace the parent made.
	if os.Getenv(harnessChildEnv) == "" {
		return
	}
	var p harnessParams
	if err := json.Unmarshal([]byte(os.Getenv(harnessChildEnv)), &p); err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.Exit(2)
	}
	if err := runHarnessChild(p); err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// runHarness runs one mode in a child process and returns what it
// measured. It needs root (namespaces, bind mounts, port 53).
func runHarness(tb testing.TB, mode string, rounds, clients int) *harnessResult {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Fatal("the failover harness needs root: it runs the proxies in a private mount and network namespace with a scratch /etc/hosts (run the tests as root, as make test does in CI)")
	}
	testenv.Binary(tb, "redis-server")
	dir, err := os.MkdirTemp("", "redistls-failover-"+mode+"-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if tb.Failed() || os.Getenv("REDISTLS_FAILOVER_KEEP") != "" {
			tb.Logf("the harness's configuration files and logs are kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	tunnel := os.Getenv("REDISTLS_FAILOVER_TUNNEL") // another build to measure, e.g. an older one
	if tunnel == "" {
		tunnel = buildTunnel(tb)
	}
	p := harnessParams{Mode: mode, Rounds: rounds, Clients: clients, Tunnel: tunnel,
		Stunnel: testenv.Binary(tb, "stunnel4"), Dir: dir}
	if mode == "dns" {
		p.Dnsmasq = testenv.Binary(tb, "dnsmasq")
	}
	p.Out = filepath.Join(p.Dir, "result.json")
	js, _ := json.Marshal(p)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), harnessChildEnv+"="+string(js))
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("failover harness (%s): %v\n%s", mode, err, out)
	}
	tb.Logf("failover harness (%s):\n%s", mode, out)
	data, err := os.ReadFile(p.Out)
	if err != nil {
		tb.Fatal(err)
	}
	var res harnessResult
	if err := json.Unmarshal(data, &res); err != nil {
		tb.Fatal(err)
	}
	return &res
}

// buildTunnel builds examples/tunnel into a temporary directory.
func buildTunnel(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "tunnel")
	build := exec.Command("go", "build", "-o", bin, "github.com/fediops/fediops/examples/tunnel") // go test puts its go first in PATH
	if out, err := build.CombinedOutput(); err != nil {
		tb.Fatalf("build examples/tunnel: %v\n%s", err, out)
	}
	return bin
}

// --- the child ---

const (
	harnessName  = "redis.fediops.test"
	harnessPort  = 25061 // DO's Redis port: the namespace has every port free
	nodeA, nodeB = "127.0.0.2", "127.0.0.3"
	thinkTime    = 20 * time.Millisecond
	idlePerRound = 20
)

type child struct {
	p     harnessParams
	logf  func(format string, args ...any)
	stack *testenv.Stack
	dns   *exec.Cmd // dnsmasq, mode dns
}

func runHarnessChild(p harnessParams) (err error) {
	c := &child{p: p}
	c.logf = func(format string, args ...any) { fmt.Printf(format+"\n", args...) }
	res := &harnessResult{Mode: p.Mode, Load: loadAvg()}
	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
	defer cancel()
	if err := c.namespace(); err != nil {
		return err
	}
	if c.stack, err = testenv.NewStack(""); err != nil {
		return err
	}
	defer func() {
		keep := err != nil
		if keep {
			fmt.Println("server logs kept in", c.stack.Dir)
		}
		c.stack.Close(keep)
	}()
	a, err := c.stack.StartRedisAt(ctx, nodeA, harnessPort)
	if err != nil {
		return err
	}
	b, err := c.stack.StartRedisAt(ctx, nodeB, harnessPort)
	if err != nil {
		return err
	}
	if err := b.ReplicaOf(ctx, a); err != nil {
		return err
	}
	if err := c.startNameService(ctx, nodeA); err != nil {
		return err
	}
	if c.dns != nil {
		defer func() { c.dns.Process.Kill(); c.dns.Wait() }()
	}
	primary, replica := a, b
	for i, proxy := range []string{"tunnel", "stunnel"} {
		addr := fmt.Sprintf("127.0.0.1:%d", 6379+i)
		stop, err := c.startProxy(proxy, addr, a)
		if err != nil {
			return err
		}
		pr, err := c.phase(ctx, proxy, addr, &primary, &replica)
		if err == nil && proxy == "tunnel" {
			pr.Metrics, err = tunnelCounters("http://127.0.0.1:9121/metrics")
		}
		stop()
		if err != nil {
			return fmt.Errorf("%s: %w", proxy, err)
		}
		res.Proxies = append(res.Proxies, pr)
	}
	js, _ := json.MarshalIndent(res, "", " ")
	return os.WriteFile(p.Out, js, 0o644)
}

// namespace makes the namespace's loopback and files: lo up, scratch
// hosts, resolv.conf and nsswitch.conf bind-mounted over /etc's.
func (c *child) namespace() error {
	if err := loopbackUp(); err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	hosts := "127.0.0.1 localhost\n"
	if c.p.Mode == "hosts" {
		hosts += hostsLine(nodeA)
	}
	nss, err := os.ReadFile("/etc/nsswitch.conf")
	if err != nil {
		return err
	}
	var lines []string
	for _, l := range strings.Split(string(nss), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "hosts:") {
			lines = append(lines, l)
		}
	}
	lines = append(lines, "hosts: files dns", "")
	for _, f := range []struct{ name, text string }{
		{"hosts", hosts},
		{"resolv.conf", "nameserver 127.0.0.1\noptions timeout:1 attempts:2\n"},
		{"nsswitch.conf", strings.Join(lines, "\n")},
	} {
		scratch := filepath.Join(c.p.Dir, f.name)
		if err := os.WriteFile(scratch, []byte(f.text), 0o644); err != nil {
			return err
		}
		if err := syscall.Mount(scratch, "/etc/"+f.name, "", syscall.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mount %s over /etc/%s: %w", scratch, f.name, err)
		}
	}
	// A name service cache daemon outside would answer for glibc.
	if fi, err := os.Stat("/run/nscd"); err == nil && fi.IsDir() {
		if err := syscall.Mount("tmpfs", "/run/nscd", "tmpfs", 0, ""); err != nil {
			return fmt.Errorf("hide nscd: %w", err)
		}
	}
	return nil
}

// hostsLine is the name's line; every node address has the same length,
// so moving the name rewrites it in place with one write.
func hostsLine(node string) string { return node + " " + harnessName + "\n" }

// loopbackUp sets IFF_UP on lo (ip link set lo up).
func loopbackUp() error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	var ifr struct {
		name  [syscall.IFNAMSIZ]byte
		flags uint16
		_     [22]byte
	}
	copy(ifr.name[:], "lo")
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCGIFFLAGS, uintptr(unsafe.Pointer(&ifr))); e != 0 {
		return e
	}
	ifr.flags |= syscall.IFF_UP
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCSIFFLAGS, uintptr(unsafe.Pointer(&ifr))); e != 0 {
		return e
	}
	return nil
}

// startNameService starts dnsmasq in mode dns (the name from its own
// hosts file, answered with a 1 s TTL; the rest of fediops.test is
// NXDOMAIN, nothing is forwarded) and checks that the system resolver
// gives node.
func (c *child) startNameService(ctx context.Context, node string) error {
	if c.p.Mode == "dns" {
		data := filepath.Join(c.p.Dir, "dnsmasq.hosts")
		if err := os.WriteFile(data, []byte(hostsLine(node)), 0o644); err != nil {
			return err
		}
		lf, err := os.Create(filepath.Join(c.p.Dir, "dnsmasq.log"))
		if err != nil {
			return err
		}
		defer lf.Close()
		c.dns = exec.Command(c.p.Dnsmasq, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
			"--addn-hosts="+data, "--local=/fediops.test/", "--local-ttl=1", "--listen-address=127.0.0.1", "--bind-interfaces",
			"--port=53", "--user=root", "--group=root", "--pid-file=", "--log-facility=-")
		c.dns.Stdout, c.dns.Stderr = lf, lf
		c.dns.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := c.dns.Start(); err != nil {
			return fmt.Errorf("start dnsmasq: %w", err)
		}
	}
	return c.waitName(ctx, node)
}

// moveName points the name at node: one in-place write to the hosts
// file, or dnsmasq's file rewritten and SIGHUP. It returns when the
// system resolver gives node.
func (c *child) moveName(ctx context.Context, node string) error {
	if c.p.Mode == "hosts" {
		f, err := os.OpenFile("/etc/hosts", os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		_, err = f.WriteAt([]byte(hostsLine(node)), int64(len("127.0.0.1 localhost\n")))
		f.Close()
		if err != nil {
			return err
		}
	} else {
		if err := os.WriteFile(filepath.Join(c.p.Dir, "dnsmasq.hosts"), []byte(hostsLine(node)), 0o644); err != nil {
			return err
		}
		if err := c.dns.Process.Signal(syscall.SIGHUP); err != nil {
			return err
		}
	}
	return c.waitName(ctx, node)
}

// waitName waits until the name resolves to node alone: in mode hosts
// the file was written before, in mode dns dnsmasq is asked through the
// system's resolver (the scratch hosts file lacks the name).
func (c *child) waitName(ctx context.Context, node string) error {
	if c.p.Mode == "hosts" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", harnessName)
		if err == nil && len(ips) == 1 && ips[0].Unmap().String() == node {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s does not resolve to %s: %v %v", harnessName, node, ips, err)
		case <-time.After(time.Millisecond):
		}
	}
}

// startProxy writes the proxy's stunnel configuration and starts it.
func (c *child) startProxy(proxy, addr string, r *testenv.Redis) (stop func(), err error) {
	conf := fmt.Sprintf(`; the seed's service, with verification
delay = yes
foreground = yes
[redis-client]
client = yes
accept = %s
connect = %s:%d
CAfile = %s
verifyChain = yes
checkHost = %s
`, addr, harnessName, harnessPort, r.CAFile, harnessName)
	path := filepath.Join(c.p.Dir, proxy+".conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	if proxy == "tunnel" {
		cmd = exec.Command(c.p.Tunnel, "-config", path, "-http", "127.0.0.1:9121")
		cmd.Env = append(os.Environ(), "REDIS_PASSWORD="+r.Password)
	} else {
		cmd = exec.Command(c.p.Stunnel, path)
	}
	lf, err := os.Create(filepath.Join(c.p.Dir, proxy+".log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	stop = func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		lf.Close()
	}
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if nc, err := net.Dial("tcp", addr); err == nil {
			nc.Close()
			return stop, nil
		}
		if time.Now().After(end) {
			stop()
			log, _ := os.ReadFile(lf.Name())
			return nil, fmt.Errorf("%s did not listen on %s:\n%s", proxy, addr, log)
		}
	}
}

// worker is one application client: INCR its key, sleep, again.
type worker struct {
	key   string
	c     *redis.Client
	dials []atomic.Int32 // by event

	mu      sync.Mutex
	last    int64       // the last acknowledged value
	lastOK  time.Time   // when the last good command ended
	firstOK []time.Time // by event: the first good command that ended after the name moved
	failed  []int       // by event
	lost    []int       // by event: an acknowledged value lower than an earlier one
	acked   []int       // by event
	maxGap  time.Duration
	errs    []string
}

// events numbers the switchovers and the kill, and keeps when each one
// moved the name; workers read it on every command.
type events struct {
	cur   atomic.Int32 // the event under way or last done, -1 before the first
	mu    sync.Mutex
	moved []time.Time
}

func (e *events) movedAt(k int) time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.moved[k]
}

func (w *worker) run(ctx context.Context, ev *events) {
	for ctx.Err() == nil {
		v, err := w.c.Incr(ctx, w.key).Result()
		end := time.Now()
		k := int(ev.cur.Load())
		w.mu.Lock()
		switch {
		case err != nil && ctx.Err() == nil:
			if k >= 0 {
				w.failed[k]++
			}
			if len(w.errs) < 3 {
				w.errs = append(w.errs, fmt.Sprintf("%s event %d: %v", end.Format("15:04:05.000"), k, err))
			}
		case err == nil:
			if v <= w.last && k >= 0 {
				w.lost[k]++
			}
			w.last = v
			if !w.lastOK.IsZero() && k < len(w.firstOK)-1 { // not in the kill
				w.maxGap = max(w.maxGap, end.Sub(w.lastOK))
			}
			w.lastOK = end
			if k >= 0 {
				w.acked[k]++
				if w.firstOK[k].IsZero() {
					if m := ev.movedAt(k); !m.IsZero() && end.After(m) {
						w.firstOK[k] = end
					}
				}
			}
		}
		w.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(thinkTime):
		}
	}
}

// phase runs the clients through one proxy: the switchovers, then the
// kill. primary and replica are updated as the roles move.
func (c *child) phase(ctx context.Context, proxy, addr string, primary, replica **testenv.Redis) (*proxyResult, error) {
	n := c.p.Rounds + 1 // the switchovers, then the kill
	ev := &events{moved: make([]time.Time, n)}
	ev.cur.Store(-1)
	pass := (*primary).Password
	ws := make([]*worker, c.p.Clients)
	for i := range ws {
		w := &worker{key: fmt.Sprintf("fo:%s:%d", proxy, i), dials: make([]atomic.Int32, n),
			firstOK: make([]time.Time, n), failed: make([]int, n), lost: make([]int, n), acked: make([]int, n)}
		nd := &net.Dialer{Timeout: time.Second, KeepAlive: 5 * time.Minute}
		w.c = redis.NewClient(&redis.Options{Addr: addr, Password: pass,
			DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second,
			Dialer: func(ctx context.Context, network, a string) (net.Conn, error) {
				if k := ev.cur.Load(); k >= 0 {
					w.dials[k].Add(1)
				}
				return nd.DialContext(ctx, network, a)
			}})
		ws[i] = w
	}
	wctx, stopWorkers := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Add(1)
		go func() { defer wg.Done(); w.run(wctx, ev) }()
	}
	defer func() {
		stopWorkers()
		wg.Wait()
		for _, w := range ws {
			w.c.Close()
		}
	}()
	// Every client writes before the first switchover.
	for end := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ready := 0
		for _, w := range ws {
			w.mu.Lock()
			if !w.lastOK.IsZero() {
				ready++
			}
			w.mu.Unlock()
		}
		if ready == len(ws) {
			break
		}
		if time.Now().After(end) {
			return nil, fmt.Errorf("%d of %d clients wrote within 60 s", ready, len(ws))
		}
	}
	time.Sleep(500 * time.Millisecond)

	res := &proxyResult{Proxy: proxy, Load: loadAvg()}
	var idle []net.Conn
	defer func() {
		for _, nc := range idle {
			nc.Close()
		}
	}()
	for k := range c.p.Rounds {
		for _, nc := range idle {
			nc.Close()
		}
		idle = openIdleNamed(addr, pass, fmt.Sprintf("idle-%d-", k), idlePerRound)
		res.IdleOpened = append(res.IdleOpened, len(idle))
		old := *primary
		ev.cur.Store(int32(k))
		t0 := time.Now()
		target := (*replica).Host
		if err := switchover(ctx, *primary, *replica, func() error {
			ev.mu.Lock()
			ev.moved[k] = time.Now()
			ev.mu.Unlock()
			return c.moveName(ctx, target)
		}, false); err != nil {
			return nil, fmt.Errorf("switchover %d: %w", k, err)
		}
		took := time.Since(t0)
		*primary, *replica = *replica, *primary
		// 1.2-1.7 s until the next one: a random phase of the probe's.
		time.Sleep(1200*time.Millisecond + rand.N(500*time.Millisecond))
		left, err := idleOn(ctx, old, fmt.Sprintf("idle-%d-", k))
		if err != nil {
			return nil, err
		}
		res.IdleLeft = append(res.IdleLeft, left)
		rec, med := recovery(ws, k, ev.movedAt(k))
		res.Recovery, res.ClientMedian = append(res.Recovery, rec), append(res.ClientMedian, med)
		most, all := 0, 0
		for _, w := range ws {
			d := int(w.dials[k].Load())
			most, all = max(most, d), all+d
		}
		res.MaxReconnects, res.Reconnects = append(res.MaxReconnects, most), append(res.Reconnects, all)
		c.logf("%-7s %s switchover %d: took %v, name moved at +%v; all %d clients writing after %v (median client %v); reconnects %d (at most %d per client); idle connections left on the demoted node %d of %d",
			proxy, c.p.Mode, k, took.Round(time.Millisecond), ev.movedAt(k).Sub(t0).Round(time.Millisecond),
			len(ws), fmtDur(rec), fmtDur(med), all, most, left, len(idle))
	}

	// Acknowledged writes are on the primary: each client's count there is
	// at least the last one it was acknowledged.
	pc := (*primary).Client()
	defer pc.Close()
	lasts := make([]int64, len(ws))
	keys := make([]string, len(ws))
	for i, w := range ws {
		w.mu.Lock()
		lasts[i], keys[i] = w.last, w.key
		w.mu.Unlock()
	}
	vals, err := pc.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, err
	}
	for i, v := range vals {
		s, _ := v.(string)
		if n, err := strconv.ParseInt(s, 10, 64); err != nil || n < lasts[i] {
			res.Lost++
		}
	}

	// The primary dies; DO promotes the replica and moves the name.
	k := c.p.Rounds
	ev.cur.Store(int32(k))
	dead := *primary
	dead.Kill()
	time.Sleep(300 * time.Millisecond)
	if err := (*replica).Promote(ctx); err != nil {
		return nil, err
	}
	ev.mu.Lock()
	ev.moved[k] = time.Now()
	ev.mu.Unlock()
	if err := c.moveName(ctx, (*replica).Host); err != nil {
		return nil, err
	}
	time.Sleep(2500 * time.Millisecond)
	res.KillRecovery, _ = recovery(ws, k, ev.movedAt(k))
	// A new node takes the dead one's address, as a replica.
	fresh, err := c.stack.StartRedisAt(ctx, dead.Host, dead.Port)
	if err != nil {
		return nil, err
	}
	if err := fresh.ReplicaOf(ctx, *replica); err != nil {
		return nil, err
	}
	*primary, *replica = *replica, fresh
	stopWorkers()
	wg.Wait()

	for _, w := range ws {
		w.mu.Lock()
		for j := range c.p.Rounds {
			res.Failed += w.failed[j]
			res.Acked += w.acked[j]
			res.Lost += w.lost[j]
		}
		res.KillFailed += w.failed[k]
		res.KillLost += w.lost[k]
		res.MaxGap = max(res.MaxGap, w.maxGap)
		if w.maxGap > 2*time.Second {
			res.Gaps++
		}
		if len(res.Errors) < 5 {
			res.Errors = append(res.Errors, w.errs...)
		}
		w.mu.Unlock()
	}
	c.logf("%-7s %s: %d acknowledged writes, %d lost, %d failed commands, longest gap %v; primary killed: all clients writing %v after the name moved, %d failed commands meanwhile, %d acknowledged writes lost in the crash",
		proxy, c.p.Mode, res.Acked, res.Lost, res.Failed, res.MaxGap.Round(time.Millisecond), fmtDur(res.KillRecovery), res.KillFailed, res.KillLost)
	return res, nil
}

// loadAvg is the machine's load average over 1, 5 and 15 minutes.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}

// recovery is, for event k, the time from the name's move until every
// client had a good write (an hour when one never had), and the median
// client's.
func recovery(ws []*worker, k int, moved time.Time) (all, median time.Duration) {
	ds := make([]time.Duration, len(ws))
	for i, w := range ws {
		w.mu.Lock()
		ds[i] = time.Hour
		if !w.firstOK[k].IsZero() {
			ds[i] = w.firstOK[k].Sub(moved)
		}
		w.mu.Unlock()
	}
	slices.Sort(ds)
	return ds[len(ds)-1], ds[len(ds)/2]
}

func fmtDur(d time.Duration) string {
	if d >= time.Hour {
		return "never"
	}
	return d.Round(time.Millisecond).String()
}

// openIdleNamed opens n connections through the proxy at once, each
// AUTHed and named prefix+i, then left idle; it returns those that
// opened within 10 s (a proxy slow to connect opens fewer).
func openIdleNamed(addr, pass, prefix string, n int) []net.Conn {
	var mu sync.Mutex
	var cs []net.Conn
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				return
			}
			fmt.Fprintf(nc, "AUTH %s\r\nCLIENT SETNAME %s%d\r\n", pass, prefix, i)
			nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(nc)
			for range 2 {
				if l, err := br.ReadString('\n'); err != nil || l != "+OK\r\n" {
					nc.Close()
					return
				}
			}
			nc.SetReadDeadline(time.Time{})
			mu.Lock()
			cs = append(cs, nc)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return cs
}

// idleOn counts the connections on r whose name starts with prefix.
func idleOn(ctx context.Context, r *testenv.Redis, prefix string) (int, error) {
	rc := r.Client()
	defer rc.Close()
	list, err := rc.ClientList(ctx).Result()
	if err != nil {
		return 0, err
	}
	return strings.Count(list, " name="+prefix), nil
}

// tunnelCounters reads the redistls_ counters the tunnel serves.
func tunnelCounters(url string) (map[string]float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, l := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(l, "redistls_") || strings.HasPrefix(l, "redistls_bytes") {
			continue
		}
		name, val, ok := strings.Cut(l, " ")
		if v, err := strconv.ParseFloat(val, 64); ok && err == nil {
			name = strings.NewReplacer(`{service="redis-client"}`, "", `,service="redis-client"`, "", `service="redis-client",`, "").Replace(name)
			out[name] = v
		}
	}
	return out, nil
}

// table prints the run as a Markdown table, one row per proxy.
func (r *harnessResult) table() string {
	var b strings.Builder
	b.WriteString("| name in | proxy (load) | all clients writing after the move: median / max | median client | failed commands | reconnects per switchover (most by one client) | idle connections left on the demoted node | longest gap | acknowledged writes lost | primary killed: all writing after the move / failed commands |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, p := range r.Proxies {
		med, worst := medianMax(p.Recovery)
		cmed, _ := medianMax(p.ClientMedian)
		rmed, _ := medianMaxInt(p.Reconnects)
		_, most := medianMaxInt(p.MaxReconnects)
		left, opened := 0, 0
		for i := range p.IdleLeft {
			left, opened = left+p.IdleLeft[i], opened+p.IdleOpened[i]
		}
		fmt.Fprintf(&b, "| %s | %s (%s) | %s / %s | %s | %d of %d | %d (%d) | %d of %d | %s | %d | %s / %d |\n",
			r.Mode, p.Proxy, p.Load, fmtDur(med), fmtDur(worst), fmtDur(cmed), p.Failed, p.Acked+p.Failed, rmed, most,
			left, opened, p.MaxGap.Round(time.Millisecond), p.Lost, fmtDur(p.KillRecovery), p.KillFailed)
	}
	return b.String()
}
