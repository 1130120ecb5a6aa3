package redistls

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults, as stunnel's where stunnel has one.
const (
	DefaultConnectTimeout = 10 * time.Second    // stunnel TIMEOUTconnect
	DefaultIdleTimeout    = 43200 * time.Second // stunnel TIMEOUTidle
	DefaultCloseTimeout   = 60 * time.Second    // stunnel TIMEOUTclose
	DefaultProbeInterval  = 250 * time.Millisecond
	DefaultProbeTimeout   = time.Second
	DefaultDrainTimeout   = 10 * time.Second
)

// ErrConfig is wrapped by every error about the configuration: the program
// exits 2 on it.
var ErrConfig = errors.New("invalid configuration")

// Config is a whole tunnel process: the services read from a stunnel
// configuration file plus what stunnel's file cannot say. Zero values mean
// the documented defaults.
type Config struct {
	PIDFile  string    // stunnel "pid": written by the program, not by Tunnel
	Debug    bool      // stunnel "debug" at level 7/debug
	Services []Service // one per [section]

	// HTTPAddr serves /healthz and /metrics, loopback only ("" = off).
	HTTPAddr string
	// AllowNonLoopback lets accept (and HTTPAddr) listen on other than
	// loopback addresses; "accept = 6379" alone means 0.0.0.0:6379.
	AllowNonLoopback bool
	// InsecureSkipVerify skips certificate verification, which is what
	// stunnel does without verifyChain. Never the default here.
	InsecureSkipVerify bool
	// Username and Password authenticate the health check and the role
	// probe (REDIS_USER / REDIS_PASSWORD); never logged.
	Username, Password string
	// ProbeInterval is how often the monitor asks the nodes connections are
	// pinned to for their ROLE (default DefaultProbeInterval, 250 ms): the
	// longest a demoted node's idle connections stay open. A connection
	// that gets -READONLY or loses its backend starts a probe at once.
	ProbeInterval time.Duration
	ProbeTimeout  time.Duration // one probe's budget
	DrainTimeout  time.Duration // SIGTERM: how long busy connections may finish

	// Resolve turns connect's host:port into the addresses to dial, in
	// order, for every client connection (stunnel's delay = yes). Default:
	// /etc/hosts, checked on every call and read again when it changed (Go's
	// resolver would keep its copy for 5 s), then DNS through
	// net.DefaultResolver, which keeps no answers.
	Resolve func(ctx context.Context, hostport string) ([]string, error)
	// Dial opens the TCP connection to one resolved address (default
	// net.Dialer). It must return a *net.TCPConn or a wrapper with NetConn.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Registerer receives the redistls_ collectors (default: a registry of
	// the Tunnel's own, served on /metrics with the Go and process ones).
	Registerer prometheus.Registerer
	Logger     *slog.Logger

	problems []error  // what ParseConfig found wrong; Validate repeats them
	files    []string // the files read, in order, to sort problems by
}

// Service is one stunnel [section]: a local listener and the TLS backend
// its connections go to.
type Service struct {
	Name        string
	Source      string   // file:line of the section, for messages
	Accept      string   // host:port to listen on
	Connect     []string // backend host:port, tried in this order
	CAFile      string   // PEM roots; "" = the system roots (Valkey's Let's Encrypt)
	VerifyChain bool     // as written; verification is on either way
	CheckHost   []string // names the certificate may carry; default SNI
	SNI         string   // default: the first connect host

	ConnectTimeout, IdleTimeout, CloseTimeout time.Duration

	lines map[string]string // option key -> file:line it was set on (globals included)
}

// pos is the file:line where key was set for s, else the section's.
func (s *Service) pos(key string) string {
	if p := s.lines[key]; p != "" {
		return p
	}
	return s.Source
}

// ParseConfig reads a stunnel configuration as stunnel does: `;` and `#`
// lines are comments, keys are case-insensitive, `[name]` opens a
// service, options before the first section are defaults for all services.
// The error lists every problem in the text at once, one per line, each
// naming its name:line: malformed lines, unsupported keys, bad values and
// addresses, services without accept or connect, duplicates. include
// directories are read by ReadConfig only.
//
// As go/parser does, ParseConfig returns the Config it read even with an
// error. Its Validate repeats those problems together with the checks that
// need the file system or the fields a caller sets after parsing (CA
// files, loopback addresses), so that one Validate call lists everything
// wrong at once; New and Reload refuse such a Config.
func ParseConfig(name string, r io.Reader) (*Config, error) {
	p := &parser{cfg: &Config{}}
	p.parse(name, r, 0)
	return p.finish()
}

// ReadConfig reads a stunnel configuration file, following include = DIR
// (its *.conf files in name order), and returns as ParseConfig does; the
// Config is nil only when path cannot be opened.
func ReadConfig(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	defer f.Close()
	p := &parser{cfg: &Config{}, include: true}
	p.parse(path, f, 0)
	return p.finish()
}

type parser struct {
	cfg      *Config
	include  bool
	defaults Service
	cur      *Service
	errs     []error
}

func (p *parser) errorf(pos, format string, args ...any) {
	p.errs = append(p.errs, problemf(pos, format, args...))
}

// problem is one thing wrong in a configuration, at file:line.
type problem struct {
	file string
	line int
	msg  string
}

func problemf(pos, format string, args ...any) problem {
	pr := problem{file: pos, msg: fmt.Sprintf(format, args...)}
	if i := strings.LastIndexByte(pos, ':'); i > 0 {
		if n, err := strconv.Atoi(pos[i+1:]); err == nil {
			pr.file, pr.line = pos[:i], n
		}
	}
	return pr
}

func (p problem) Error() string {
	switch {
	case p.file == "":
		return p.msg
	case p.line == 0:
		return p.file + ": " + p.msg
	}
	return fmt.Sprintf("%s:%d: %s", p.file, p.line, p.msg)
}

// configError joins problems in file order (files as read, then as first
// named), one per line, under ErrConfig.
func configError(files []string, errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	order := map[string]int{}
	for _, f := range files {
		if _, seen := order[f]; !seen {
			order[f] = len(order)
		}
	}
	for _, e := range errs {
		if pr, ok := e.(problem); ok && pr.file != "" {
			if _, seen := order[pr.file]; !seen {
				order[pr.file] = len(order)
			}
		}
	}
	key := func(e error) (int, int) {
		if pr, ok := e.(problem); ok && pr.file != "" {
			return order[pr.file], pr.line
		}
		return len(order), 0 // no position: last
	}
	errs = slices.Clone(errs)
	slices.SortStableFunc(errs, func(a, b error) int {
		fa, la := key(a)
		fb, lb := key(b)
		return cmp.Or(cmp.Compare(fa, fb), cmp.Compare(la, lb))
	})
	return fmt.Errorf("%w:\n%w", ErrConfig, errors.Join(errs...))
}

func (p *parser) parse(name string, r io.Reader, depth int) {
	p.cfg.files = append(p.cfg.files, name)
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		pos := fmt.Sprintf("%s:%d", name, n)
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == ';' || line[0] == '#':
		case line[0] == '[':
			if !strings.HasSuffix(line, "]") || len(line) < 3 {
				p.errorf(pos, "malformed section %q", line)
				continue
			}
			s := p.defaults
			s.Name, s.Source = strings.TrimSpace(line[1:len(line)-1]), pos
			s.Connect = append([]string(nil), p.defaults.Connect...)
			s.CheckHost = append([]string(nil), p.defaults.CheckHost...)
			s.lines = maps.Clone(p.defaults.lines)
			p.cfg.Services = append(p.cfg.Services, s)
			p.cur = &p.cfg.Services[len(p.cfg.Services)-1]
		default:
			key, val, ok := strings.Cut(line, "=")
			if !ok {
				p.errorf(pos, "expected key = value, got %q", line)
				continue
			}
			p.option(pos, strings.ToLower(strings.TrimSpace(key)), strings.TrimSpace(val), depth)
		}
	}
	if err := sc.Err(); err != nil {
		p.errorf(name, "read: %v", err)
	}
}

func (p *parser) option(pos, key, val string, depth int) {
	global := p.cur == nil
	s := p.cur
	if global {
		s = &p.defaults
	}
	if val == "" {
		p.errorf(pos, "%s: empty value", key)
		return
	}
	switch key {
	case "pid", "foreground", "debug", "include":
		if !global {
			p.errorf(pos, "%s is a global option: put it before the first [section]", key)
			return
		}
	}
	var err error
	switch key {
	case "pid":
		p.cfg.PIDFile = val
	case "foreground": // systemd runs us in the foreground either way
		_, err = yesNo(val)
	case "debug":
		lvl := strings.ToLower(val[strings.LastIndexByte(val, '.')+1:])
		p.cfg.Debug = lvl == "7" || lvl == "debug"
	case "include":
		p.includeDir(pos, val, depth)
	case "client":
		var yes bool
		if yes, err = yesNo(val); err == nil && !yes {
			err = errors.New("only client = yes (TLS towards the backend) is supported")
		}
	case "delay": // always on: the backend name is resolved for every connection
		_, err = yesNo(val)
	case "accept":
		s.Accept, err = acceptAddr(val)
	case "connect":
		var a string
		if a, err = connectAddr(val); err == nil {
			s.Connect = append(s.Connect, a)
		}
	case "cafile":
		s.CAFile = val
	case "verifychain":
		s.VerifyChain, err = yesNo(val)
	case "checkhost":
		s.CheckHost = append(s.CheckHost, val)
	case "sni":
		s.SNI = val
	case "timeoutconnect":
		s.ConnectTimeout, err = seconds(val)
	case "timeoutidle":
		s.IdleTimeout, err = seconds(val)
	case "timeoutclose":
		s.CloseTimeout, err = seconds(val)
	default:
		p.errorf(pos, "unsupported option %q", key)
		return
	}
	if err != nil {
		p.errorf(pos, "%s = %s: %v", key, val, err)
	}
	if s.lines == nil {
		s.lines = map[string]string{}
	}
	s.lines[key] = pos // also when bad: "has no accept" would say it twice
}

func (p *parser) includeDir(pos, dir string, depth int) {
	if !p.include || depth > 4 {
		p.errorf(pos, "include is not followed here")
		return
	}
	names, err := filepath.Glob(filepath.Join(dir, "*.conf"))
	if err != nil || names == nil {
		p.errorf(pos, "include %s: no *.conf files", dir)
		return
	}
	sort.Strings(names)
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			p.errorf(pos, "include: %v", err)
			continue
		}
		p.parse(n, bytes.NewReader(data), depth+1)
	}
}

func (p *parser) finish() (*Config, error) {
	if len(p.cfg.Services) == 0 {
		p.errs = append(p.errs, errors.New("no [service] section"))
	}
	p.cfg.problems = p.errs
	return p.cfg, configError(p.cfg.files, append(slices.Clone(p.errs), p.cfg.serviceProblems()...))
}

func yesNo(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "yes":
		return true, nil
	case "no":
		return false, nil
	}
	return false, errors.New("want yes or no")
}

func seconds(v string) (time.Duration, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, errors.New("want whole seconds")
	}
	return time.Duration(n) * time.Second, nil
}

// acceptAddr turns stunnel's accept forms into host:port; a port alone means
// every IPv4 address, as in stunnel. Port 0 picks a free port.
func acceptAddr(v string) (string, error) {
	host, port, err := splitAddr(v, "0.0.0.0")
	if err != nil {
		return "", err
	}
	if host == "" || host == "*" {
		host = "0.0.0.0"
	}
	if err := checkHost(host); err != nil {
		return "", err
	}
	if _, err := parsePort(port); err != nil {
		return "", err
	}
	return net.JoinHostPort(host, port), nil
}

// connectAddr turns stunnel's connect forms into host:port; a port alone
// means localhost.
func connectAddr(v string) (string, error) {
	host, port, err := splitAddr(v, "localhost")
	if err != nil {
		return "", err
	}
	if host == "" {
		return "", errors.New("no host")
	}
	if err := checkHost(host); err != nil {
		return "", err
	}
	if n, err := parsePort(port); err != nil || n == 0 {
		return "", fmt.Errorf("port %q: want 1-65535", port)
	}
	return net.JoinHostPort(host, port), nil
}

// splitAddr splits host:port; digits alone are a port on host.
func splitAddr(v, host string) (string, string, error) {
	if strings.Trim(v, "0123456789") == "" {
		return host, v, nil
	}
	h, port, err := net.SplitHostPort(v)
	if err != nil {
		return "", "", errors.New("want host:port or a port")
	}
	return h, port, nil
}

func parsePort(p string) (uint64, error) {
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("port %q: want 0-65535", p)
	}
	return n, nil
}

// checkHost accepts an IP address or a DNS name.
func checkHost(h string) error {
	if _, err := netip.ParseAddr(h); err == nil {
		return nil
	}
	name := strings.TrimSuffix(h, ".")
	if name == "" || len(name) > 253 {
		return fmt.Errorf("host %q is neither an IP address nor a DNS name", h)
	}
	for _, l := range strings.Split(name, ".") {
		ok := len(l) > 0 && len(l) <= 63 && l[0] != '-' && l[len(l)-1] != '-'
		for _, c := range l {
			ok = ok && (c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z')
		}
		if !ok {
			return fmt.Errorf("host %q is neither an IP address nor a DNS name", h)
		}
	}
	return nil
}

// isLoopback reports whether a listen address stays on this machine.
func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// withDefaults returns a copy of c with the documented defaults filled in.
func (c *Config) withDefaults() *Config {
	d := *c
	if d.ProbeInterval <= 0 {
		d.ProbeInterval = DefaultProbeInterval
	}
	if d.ProbeTimeout <= 0 {
		d.ProbeTimeout = DefaultProbeTimeout
	}
	if d.DrainTimeout <= 0 {
		d.DrainTimeout = DefaultDrainTimeout
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Resolve == nil {
		d.Resolve = resolveSystem
	}
	if d.Dial == nil {
		var nd net.Dialer
		d.Dial = nd.DialContext
	}
	d.Services = append([]Service(nil), c.Services...)
	for i := range d.Services {
		s := &d.Services[i]
		if s.ConnectTimeout <= 0 {
			s.ConnectTimeout = DefaultConnectTimeout
		}
		if s.IdleTimeout <= 0 {
			s.IdleTimeout = DefaultIdleTimeout
		}
		if s.CloseTimeout <= 0 {
			s.CloseTimeout = DefaultCloseTimeout
		}
		if s.SNI == "" && len(s.Connect) > 0 {
			s.SNI, _, _ = net.SplitHostPort(s.Connect[0])
		}
	}
	return &d
}

// Validate checks everything a Tunnel needs before it starts and lists
// every problem at once, one per line, in file order: what ParseConfig
// found, services without accept or connect, duplicate names and accept
// addresses, CA files that cannot be read or hold no PEM certificate (at
// the CAfile line), accept addresses that are not loopback (at the accept
// line) unless AllowNonLoopback, and HTTPAddr. The error wraps ErrConfig.
func (c *Config) Validate() error {
	_, err := c.withDefaults().tlsConfigs()
	return err
}

// serviceProblems are the problems of the services that need neither the
// file system nor the fields set after parsing.
func (c *Config) serviceProblems() []error {
	var errs []error
	names, accepts := map[string]bool{}, map[string]bool{}
	for i := range c.Services {
		s := &c.Services[i]
		bad := func(key, format string, args ...any) {
			errs = append(errs, problemf(s.pos(key), "[%s] %s", s.Name, fmt.Sprintf(format, args...)))
		}
		switch {
		case s.Name == "":
			bad("", "has no name")
		case names[s.Name]:
			bad("", "is defined twice")
		}
		if s.Accept == "" && s.lines["accept"] == "" {
			bad("", "has no accept")
		} else if accepts[s.Accept] && !strings.HasSuffix(s.Accept, ":0") {
			bad("accept", "accept %s is used by another service", s.Accept)
		}
		if len(s.Connect) == 0 && s.lines["connect"] == "" {
			bad("", "has no connect")
		}
		names[s.Name], accepts[s.Accept] = true, true
	}
	return errs
}

// tlsConfigs validates the configuration (see Validate) and builds one
// client TLS config per service.
func (c *Config) tlsConfigs() ([]*tls.Config, error) {
	errs := append(slices.Clone(c.problems), c.serviceProblems()...)
	if c.HTTPAddr != "" && !c.AllowNonLoopback && !isLoopback(c.HTTPAddr) {
		errs = append(errs, fmt.Errorf("health address %s is not loopback (allow it explicitly)", c.HTTPAddr))
	}
	type loaded struct {
		pool *x509.CertPool
		err  error
	}
	cas := map[string]loaded{} // CA file -> its certificates
	told := map[string]bool{}  // file:line + CA file already reported
	out := make([]*tls.Config, len(c.Services))
	for i := range c.Services {
		s := &c.Services[i]
		if s.Accept != "" && !c.AllowNonLoopback && !isLoopback(s.Accept) {
			errs = append(errs, problemf(s.pos("accept"), "[%s] accept %s is not a loopback address: Redis traffic would leave this machine unencrypted; allow it explicitly (-unsafe-listen)", s.Name, s.Accept))
		}
		cfg := &tls.Config{
			ServerName:         s.SNI,
			MinVersion:         tls.VersionTLS12,
			ClientSessionCache: tls.NewLRUClientSessionCache(16),
		}
		if s.CAFile != "" {
			ca, ok := cas[s.CAFile]
			if !ok {
				ca.pool = x509.NewCertPool()
				pem, err := os.ReadFile(s.CAFile)
				switch {
				case err != nil:
					ca.err = fmt.Errorf("CAfile: %w", err)
				case !ca.pool.AppendCertsFromPEM(pem):
					ca.err = fmt.Errorf("CAfile %s holds no PEM certificate", s.CAFile)
				}
				cas[s.CAFile] = ca
			}
			if ca.err != nil {
				if pos := s.pos("cafile"); !told[pos+"\x00"+s.CAFile] {
					told[pos+"\x00"+s.CAFile] = true
					errs = append(errs, problemf(pos, "%v", ca.err))
				}
				continue
			}
			cfg.RootCAs = ca.pool
		}
		hosts := s.CheckHost
		switch {
		case c.InsecureSkipVerify:
			cfg.InsecureSkipVerify = true
		case len(hosts) > 0 && !(len(hosts) == 1 && hosts[0] == s.SNI):
			// checkHost differs from the SNI: verify the chain ourselves.
			cfg.InsecureSkipVerify = true
			cfg.VerifyConnection = verifyHosts(cfg.RootCAs, hosts)
		}
		out[i] = cfg
	}
	if err := configError(c.files, errs); err != nil {
		return nil, err
	}
	return out, nil
}

// Notes are what an admin should know about a valid configuration, one
// sentence each: a service without CAfile verifies its backend against
// the system roots, which Valkey's Let's Encrypt certificates pass but
// DO's older managed Redis, with its private CA, does not; stunnel with
// the same file (no verifyChain) verified nothing. InsecureSkipVerify
// gets a note too.
func (c *Config) Notes() []string {
	if c.InsecureSkipVerify {
		return []string{"backend certificates are not verified (insecure-skip-verify): whoever is on the path can read the Redis password and data"}
	}
	var out []string
	for _, s := range c.Services {
		if s.CAFile != "" {
			continue
		}
		was := ""
		if !s.VerifyChain {
			was = " (stunnel, without verifyChain, verified nothing)"
		}
		out = append(out, fmt.Sprintf("%s: [%s] no CAfile: backend certificates will be verified against the system roots%s. "+
			"That suits Managed Valkey (Let's Encrypt); DO's older managed Redis has a private CA: download its CA certificate "+
			"from the cluster's connection details and add CAfile = /path/to/ca-certificate.crt", s.Source, s.Name, was))
	}
	return out
}

// verifyHosts verifies the peer chain against roots and accepts the
// certificate if it is valid for any of hosts (stunnel's checkHost list).
func verifyHosts(roots *x509.CertPool, hosts []string) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("no peer certificate")
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		leaf := cs.PeerCertificates[0]
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter}); err != nil {
			return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
		}
		var err error
		for _, h := range hosts {
			if err = leaf.VerifyHostname(h); err == nil {
				return nil
			}
		}
		return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
	}
}
