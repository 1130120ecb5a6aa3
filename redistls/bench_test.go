package redistls

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fediops/fediops/internal/testenv"
)

// The side-by-side benchmarks run with
//
//	go test ./redistls -run '^$' -bench . -benchtime 1x
//
// They start stunnel 5.68 (delay = yes, verifyChain = yes with the CA,
// checkHost, in the foreground) and the examples/tunnel binary on the same
// configuration, in front of the same TLS-only Redis, and never fail on
// speed. REDISTLS_BENCH_ROUNDS (default 3) interleaved rounds; the median
// per-round ratio counts. REDISTLS_BENCH_P=1 runs only -P 1.

// pipelines are the -P values: REDISTLS_BENCH_P (e.g. "1") or 1 and 16.
func pipelines() []int {
	var ps []int
	for _, f := range strings.Fields(strings.ReplaceAll(os.Getenv("REDISTLS_BENCH_P"), ",", " ")) {
		if n, err := strconv.Atoi(f); err == nil {
			ps = append(ps, n)
		}
	}
	if len(ps) == 0 {
		ps = []int{1, 16}
	}
	return ps
}

type benchTarget struct {
	name string
	port int
	tls  bool
	pid  int
}

func BenchmarkTunnelVsStunnel(b *testing.B) {
	r := testenv.RedisTLS(b)
	targets := startTargets(b, r)
	rounds := 3
	if n, err := strconv.Atoi(os.Getenv("REDISTLS_BENCH_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	for range b.N {
		for _, p := range pipelines() {
			// Rounds interleave the three targets, so each round's ratios
			// are taken under the same machine load; the median counts.
			var vsS, vsD []float64
			rates, cpu := map[string][]float64{}, map[string][]float64{}
			for range rounds {
				sum := map[string]float64{}
				for _, tg := range targets {
					c0 := cpuTime(b, tg.pid)
					set, get := redisBenchmark(b, r, tg, p)
					if tg.pid != 0 { // the tunnel's own CPU per request, the steadier number on a shared machine
						cpu[tg.name] = append(cpu[tg.name], float64(cpuTime(b, tg.pid)-c0)/float64(time.Microsecond)/200000)
					}
					sum[tg.name] = set + get
					rates[tg.name] = append(rates[tg.name], set, get)
				}
				vsS = append(vsS, sum["redistls"]/sum["stunnel"])
				vsD = append(vsD, sum["redistls"]/sum["direct"])
			}
			line := fmt.Sprintf("-P %-2d", p)
			for _, tg := range targets {
				v := rates[tg.name]
				line += fmt.Sprintf("  %s %s", tg.name, fmtRates(v))
				b.ReportMetric(median(v), fmt.Sprintf("%s-P%d-rps", tg.name, p))
				if c := cpu[tg.name]; len(c) > 0 {
					line += fmt.Sprintf(" (tunnel CPU %.1f µs/request)", median(c))
					b.ReportMetric(median(c), fmt.Sprintf("%s-P%d-cpu-µs/req", tg.name, p))
				}
			}
			b.ReportMetric(median(vsS), fmt.Sprintf("x-stunnel-P%d", p))
			b.ReportMetric(median(vsD), fmt.Sprintf("x-direct-P%d", p))
			b.Logf("%s\n    redistls/stunnel per round %s (median %.2fx); redistls/direct %s (median %.2fx)",
				line, fmtRatios(vsS), median(vsS), fmtRatios(vsD), median(vsD))
		}
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// fmtRates prints SET/GET pairs per round in thousands of requests/s.
func fmtRates(v []float64) string {
	var parts []string
	for i := 0; i+1 < len(v); i += 2 {
		parts = append(parts, fmt.Sprintf("%.0fk/%.0fk", v[i]/1000, v[i+1]/1000))
	}
	return "SET/GET " + strings.Join(parts, " ")
}

func fmtRatios(v []float64) string {
	var parts []string
	for _, x := range v {
		parts = append(parts, fmt.Sprintf("%.2f", x))
	}
	return strings.Join(parts, " ")
}

// BenchmarkIdleMemory opens 3000 connections through each tunnel, sends
// AUTH and PING on each, and reports the tunnel process's RSS growth per
// connection.
func BenchmarkIdleMemory(b *testing.B) {
	r := testenv.RedisTLS(b)
	targets := startTargets(b, r)
	const conns = 3000
	for range b.N {
		for _, tg := range targets[1:] {
			before := rssKB(b, tg.pid)
			cs := openIdle(b, tg.port, r.Password, conns)
			time.Sleep(2 * time.Second)
			after := rssKB(b, tg.pid)
			per := float64(after-before) * 1024 / conns / 1000
			b.ReportMetric(per, tg.name+"-KB/conn")
			b.Logf("%s: RSS %d KB -> %d KB with %d idle connections: %.1f KB per connection", tg.name, before, after, conns, per)
			for _, c := range cs {
				c.Close()
			}
			time.Sleep(time.Second)
		}
	}
}

// startTargets starts stunnel and the tunnel program on one generated
// configuration and returns them after direct TLS.
func startTargets(b *testing.B, r *testenv.Redis) []benchTarget {
	b.Helper()
	dir := b.TempDir()
	stunnelBin := testenv.Binary(b, "stunnel4")
	testenv.Binary(b, "redis-benchmark")
	tunnelBin := buildTunnel(b)
	sPort, tPort := freePort(b), freePort(b)
	service := func(port int) string {
		return fmt.Sprintf("[redis]\nclient = yes\naccept = 127.0.0.1:%d\nconnect = localhost:%d\nverifyChain = yes\nCAfile = %s\ncheckHost = localhost\n", port, r.Port, r.CAFile)
	}
	sConf, tConf := filepath.Join(dir, "stunnel.conf"), filepath.Join(dir, "tunnel.conf")
	os.WriteFile(sConf, []byte("foreground = yes\ndelay = yes\n"+service(sPort)), 0o644)
	os.WriteFile(tConf, []byte("delay = yes\n"+service(tPort)), 0o644)
	sp := startProc(b, sPort, exec.Command(stunnelBin, sConf))
	tun := exec.Command(tunnelBin, "-config", tConf, "-http", "")
	tun.Env = append(os.Environ(), "REDIS_PASSWORD="+r.Password)
	if v := os.Getenv("REDISTLS_BENCH_GOMAXPROCS"); v != "" {
		tun.Env = append(tun.Env, "GOMAXPROCS="+v)
	}
	tp := startProc(b, tPort, tun)
	return []benchTarget{{"direct", r.Port, true, 0}, {"stunnel", sPort, false, sp}, {"redistls", tPort, false, tp}}
}

func freePort(b *testing.B) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startProc(b *testing.B, port int, cmd *exec.Cmd) int {
	b.Helper()
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return cmd.Process.Pid
		}
		if time.Now().After(end) {
			b.Fatalf("%s did not listen on %d:\n%s", cmd.Path, port, out.String())
		}
	}
}

// redisBenchmark runs redis-benchmark -c 50 -n 100000 -t set,get -P p and
// returns the SET and GET rates.
func redisBenchmark(b *testing.B, r *testenv.Redis, tg benchTarget, p int) (set, get float64) {
	b.Helper()
	args := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(tg.port), "-a", r.Password, "-c", "50", "-n", "100000",
		"-t", "set,get", "-P", strconv.Itoa(p), "--csv"}
	if tg.tls {
		args = append(args, "--tls", "--cacert", r.CAFile, "--sni", "localhost")
	}
	out, err := exec.Command("redis-benchmark", args...).CombinedOutput()
	if err != nil {
		b.Fatalf("redis-benchmark %s: %v\n%s", tg.name, err, out)
	}
	recs, _ := csv.NewReader(strings.NewReader(string(out))).ReadAll()
	for _, rec := range recs {
		if len(rec) < 2 {
			continue
		}
		v, _ := strconv.ParseFloat(rec[1], 64)
		switch rec[0] {
		case "SET":
			set = v
		case "GET":
			get = v
		}
	}
	if set == 0 || get == 0 {
		b.Fatalf("redis-benchmark %s: no rates in\n%s", tg.name, out)
	}
	return set, get
}

func openIdle(b *testing.B, port int, pass string, n int) []net.Conn {
	return openIdleT(b, port, pass, n)
}

func openIdleT(b testing.TB, port int, pass string, n int) []net.Conn {
	b.Helper()
	cs := make([]net.Conn, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 50)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				errs <- err
				return
			}
			cs[i] = c
			fmt.Fprintf(c, "AUTH %s\r\nPING\r\n", pass)
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			br := bufio.NewReader(c)
			for range 2 {
				if _, err := br.ReadString('\n'); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatalf("idle connection: %v", err)
	}
	return cs
}

// cpuTime is the user+system CPU time a process has used so far.
func cpuTime(b *testing.B, pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64) // fields 14 and 15 of stat(5)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ = 100
}

func rssKB(b *testing.B, pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	data, _ := io.ReadAll(f)
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	b.Fatalf("no VmRSS for %d", pid)
	return 0
}

// BenchmarkFailover runs the failover harness (harness_test.go) with 10
// switchovers per proxy (REDISTLS_FAILOVER_ROUNDS) with the name in a
// hosts file and served by dnsmasq, and reports the tunnel's and
// stunnel's figures side by side. It never fails on them; TestFailover
// holds the tunnel to its bounds.
func BenchmarkFailover(b *testing.B) {
	rounds := 10
	if n, err := strconv.Atoi(os.Getenv("REDISTLS_FAILOVER_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	for range b.N {
		for _, mode := range []string{"hosts", "dns"} {
			res := runHarness(b, mode, rounds, 200)
			b.Logf("load %s (1, 5, 15 min) when the %s run began\n%s", res.Load, mode, res.table())
			meds := map[string]time.Duration{}
			for _, p := range res.Proxies {
				med, worst := medianMax(p.Recovery)
				meds[p.Proxy] = med
				_, most := medianMaxInt(p.MaxReconnects)
				b.ReportMetric(med.Seconds(), mode+"-"+p.Proxy+"-recovery-median-s")
				b.ReportMetric(worst.Seconds(), mode+"-"+p.Proxy+"-recovery-max-s")
				b.ReportMetric(float64(p.Failed), mode+"-"+p.Proxy+"-failed-commands")
				b.ReportMetric(float64(most), mode+"-"+p.Proxy+"-max-reconnects/client/switchover")
				b.ReportMetric(p.KillRecovery.Seconds(), mode+"-"+p.Proxy+"-kill-recovery-s")
			}
			if t, st := meds["tunnel"], meds["stunnel"]; t > 0 && st < time.Hour { // an hour: not every client wrote again
				b.ReportMetric(st.Seconds()/t.Seconds(), mode+"-stunnel/tunnel-recovery-median")
			}
		}
	}
}
