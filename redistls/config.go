package redistls

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
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
	ProbeInterval      time.Duration // how often pinned nodes are checked
	ProbeTimeout       time.Duration // one probe's budget
	DrainTimeout       time.Duration // SIGTERM: how long busy connections may finish

	// Resolve turns connect's host:port into the addresses to dial, in
	// order, for every client connection (stunnel's delay = yes). Default:
	// net.DefaultResolver, which has no cache.
	Resolve func(ctx context.Context, hostport string) ([]string, error)
	// Dial opens the TCP connection to one resolved address (default
	// net.Dialer). It must return a *net.TCPConn or a wrapper with NetConn.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Registerer receives the redistls_ collectors (default: a registry of
	// the Tunnel's own, served on /metrics with the Go and process ones).
	Registerer prometheus.Registerer
	Logger     *slog.Logger
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
}

// ParseConfig reads a stunnel configuration as stunnel does: `;` and `#`
// lines are comments, keys are case-insensitive, `[name]` opens a
// service, options before the first section are defaults for all services.
// Every malformed or unsupported line is reported as name:line. include
// directories are read by ReadConfig only.
func ParseConfig(name string, r io.Reader) (*Config, error) {
	p := &parser{cfg: &Config{}}
	p.parse(name, r, 0)
	return p.finish()
}

// ReadConfig reads a stunnel configuration file, following include = DIR
// (its *.conf files in name order).
func ReadConfig(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("redistls: %w: %w", ErrConfig, err)
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
	p.errs = append(p.errs, fmt.Errorf("%s: %s", pos, fmt.Sprintf(format, args...)))
}

func (p *parser) parse(name string, r io.Reader, depth int) {
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
	if len(p.cfg.Services) == 0 && len(p.errs) == 0 {
		p.errs = append(p.errs, errors.New("no [service] section"))
	}
	for _, s := range p.cfg.Services {
		if s.Accept == "" {
			p.errorf(s.Source, "[%s] has no accept", s.Name)
		}
		if len(s.Connect) == 0 {
			p.errorf(s.Source, "[%s] has no connect", s.Name)
		}
	}
	if len(p.errs) > 0 {
		return nil, fmt.Errorf("redistls: %w:\n%w", ErrConfig, errors.Join(p.errs...))
	}
	return p.cfg, nil
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
// every IPv4 address, as in stunnel.
func acceptAddr(v string) (string, error) {
	if _, err := strconv.ParseUint(v, 10, 16); err == nil {
		return net.JoinHostPort("0.0.0.0", v), nil
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return "", err
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", fmt.Errorf("bad port %q", port)
	}
	if host == "" || host == "*" {
		host = "0.0.0.0"
	}
	return net.JoinHostPort(host, port), nil
}

// connectAddr turns stunnel's connect forms into host:port; a port alone
// means localhost.
func connectAddr(v string) (string, error) {
	if _, err := strconv.ParseUint(v, 10, 16); err == nil {
		return net.JoinHostPort("localhost", v), nil
	}
	host, port, err := net.SplitHostPort(v)
	if err == nil && host == "" {
		err = errors.New("no host")
	}
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	return net.JoinHostPort(host, port), err
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
		d.Resolve = resolveDNS
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

// Validate checks everything a Tunnel needs before it starts: addresses,
// loopback rules, unique names and readable CA files. Errors wrap ErrConfig
// and name the service's file:line.
func (c *Config) Validate() error {
	_, err := c.withDefaults().tlsConfigs()
	return err
}

// tlsConfigs validates the configuration and builds one client TLS config
// per service.
func (c *Config) tlsConfigs() ([]*tls.Config, error) {
	var errs []error
	bad := func(s *Service, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: [%s] %s", s.Source, s.Name, fmt.Sprintf(format, args...)))
	}
	if c.HTTPAddr != "" && !c.AllowNonLoopback && !isLoopback(c.HTTPAddr) {
		errs = append(errs, fmt.Errorf("health address %s is not loopback (allow it explicitly)", c.HTTPAddr))
	}
	names, accepts := map[string]bool{}, map[string]bool{}
	out := make([]*tls.Config, len(c.Services))
	for i := range c.Services {
		s := &c.Services[i]
		switch {
		case s.Name == "":
			bad(s, "has no name")
		case names[s.Name]:
			bad(s, "is defined twice")
		case s.Accept == "" || len(s.Connect) == 0:
			bad(s, "needs accept and connect")
		case accepts[s.Accept] && !strings.HasSuffix(s.Accept, ":0"):
			bad(s, "accept %s is used by another service", s.Accept)
		case !c.AllowNonLoopback && !isLoopback(s.Accept):
			bad(s, "accept %s is not a loopback address: Redis traffic would leave this machine unencrypted; allow it explicitly (-unsafe-listen)", s.Accept)
		}
		names[s.Name], accepts[s.Accept] = true, true
		cfg := &tls.Config{
			ServerName:         s.SNI,
			MinVersion:         tls.VersionTLS12,
			ClientSessionCache: tls.NewLRUClientSessionCache(16),
		}
		if s.CAFile != "" {
			pem, err := os.ReadFile(s.CAFile)
			if err != nil {
				bad(s, "CAfile: %v", err)
				continue
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				bad(s, "CAfile %s holds no PEM certificate", s.CAFile)
				continue
			}
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
	if len(errs) > 0 {
		return nil, fmt.Errorf("redistls: %w:\n%w", ErrConfig, errors.Join(errs...))
	}
	return out, nil
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

func resolveDNS(ctx context.Context, hostport string) ([]string, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, err
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return []string{hostport}, nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = net.JoinHostPort(ip.Unmap().String(), port)
	}
	return out, nil
}
