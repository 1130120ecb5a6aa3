package redistls

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops/internal/testenv"
)

// The seed's /etc/stunnel/redis.conf, as it is.
const seedConf = `pid = /run/stunnel-redis.pid
delay = yes
[redis-client]
client = yes
accept = 127.0.0.1:6379
connect = path-to-redis-database.ondigitalocean.com:25061
`

func TestParseSeedConfig(t *testing.T) {
	cfg, err := ParseConfig("redis.conf", strings.NewReader(seedConf))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PIDFile != "/run/stunnel-redis.pid" || len(cfg.Services) != 1 {
		t.Fatalf("cfg = %+v", cfg)
	}
	s := cfg.Services[0]
	if s.Name != "redis-client" || s.Accept != "127.0.0.1:6379" || s.Source != "redis.conf:3" ||
		len(s.Connect) != 1 || s.Connect[0] != "path-to-redis-database.ondigitalocean.com:25061" {
		t.Fatalf("service = %+v", s)
	}
	d := cfg.withDefaults().Services[0]
	if d.SNI != "path-to-redis-database.ondigitalocean.com" || d.ConnectTimeout != 10*time.Second || d.IdleTimeout != 12*time.Hour {
		t.Errorf("defaults = %+v", d)
	}
	// No CAfile and no verifyChain: stunnel would verify nothing; we verify
	// against the system roots.
	tc, err := cfg.tlsConfigs()
	if err != nil {
		t.Fatal(err)
	}
	if tc[0].InsecureSkipVerify || tc[0].RootCAs != nil || tc[0].ClientSessionCache == nil {
		t.Errorf("tls config does not verify with system roots and resume sessions: %+v", tc[0])
	}
}

func TestParseSeveralServices(t *testing.T) {
	ca := testenv.RedisTLS(t).CAFile
	conf := `; comment
# another comment
PID = /run/x.pid
Delay = YES
CAfile = ` + ca + `
verifyChain = yes
TIMEOUTconnect = 3

[sidekiq]
Client = yes
accept = 127.0.0.1:6380
connect = redis-sidekiq.example.com:25061
checkHost = redis-sidekiq.example.com
checkHost = standby.example.com

[cache]
client = yes
accept = localhost:6381
connect = 10.0.0.5:25061
sni = cache.example.com
TIMEOUTidle = 600
`
	cfg, err := ParseConfig("multi.conf", strings.NewReader(conf))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Services) != 2 {
		t.Fatalf("%d services", len(cfg.Services))
	}
	sk, cache := cfg.Services[0], cfg.Services[1]
	if sk.CAFile != ca || !sk.VerifyChain || sk.ConnectTimeout != 3*time.Second || len(sk.CheckHost) != 2 {
		t.Errorf("sidekiq did not inherit the globals: %+v", sk)
	}
	if cache.SNI != "cache.example.com" || cache.IdleTimeout != 600*time.Second || cache.CAFile != ca {
		t.Errorf("cache = %+v", cache)
	}
	tcs, err := cfg.tlsConfigs()
	if err != nil {
		t.Fatal(err)
	}
	if tcs[0].VerifyConnection == nil || tcs[0].RootCAs == nil {
		t.Error("two checkHost names need our own verification against the CA")
	}
	if tcs[1].ServerName != "cache.example.com" || tcs[1].InsecureSkipVerify {
		t.Errorf("cache tls = %+v", tcs[1])
	}
}

func TestParseErrorsNameTheLine(t *testing.T) {
	conf := `pid = /run/x.pid
this line has no equals sign
[redis-client
[svc]
client = yes
accept = 127.0.0.1:6379
connect = redis.example.com:25061
verifyPeer = yes
cert = /etc/x.pem
delay = maybe
TIMEOUTidle = soon
foreground = yes
[svc2]
client = no
accept = 127.0.0.1:6380
`
	_, err := ParseConfig("bad.conf", strings.NewReader(conf))
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("err = %v, want ErrConfig", err)
	}
	for _, want := range []string{
		`bad.conf:2: expected key = value`,
		`bad.conf:3: malformed section`,
		`bad.conf:8: unsupported option "verifypeer"`,
		`bad.conf:9: unsupported option "cert"`,
		`bad.conf:10: delay = maybe: want yes or no`,
		`bad.conf:11: timeoutidle = soon`,
		`bad.conf:12: foreground is a global option`,
		`bad.conf:14: client = no: only client = yes`,
		`bad.conf:13: [svc2] has no connect`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestValidateLoopbackAndCA(t *testing.T) {
	conf := `[redis]
client = yes
accept = 6379
connect = redis.example.com:25061
CAfile = /nonexistent/ca.pem
`
	cfg, err := ParseConfig("open.conf", strings.NewReader(conf))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Services[0].Accept != "0.0.0.0:6379" {
		t.Fatalf("accept = 6379 means all IPv4 addresses in stunnel, got %s", cfg.Services[0].Accept)
	}
	err = cfg.Validate()
	for _, want := range []string{"open.conf:3: [redis] accept 0.0.0.0:6379 is not a loopback address", "open.conf:5: CAfile: open /nonexistent/ca.pem"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want %q", err, want)
		}
	}
	cfg.AllowNonLoopback = true
	cfg.Services[0].CAFile = ""
	if err := cfg.Validate(); err != nil {
		t.Errorf("with AllowNonLoopback: %v", err)
	}
}

func TestReadConfigInclude(t *testing.T) {
	dir := t.TempDir()
	inc := filepath.Join(dir, "conf.d")
	os.Mkdir(inc, 0o755)
	os.WriteFile(filepath.Join(inc, "b.conf"), []byte("[b]\nclient = yes\naccept = 127.0.0.1:2\nconnect = b.example.com:25061\n"), 0o644)
	os.WriteFile(filepath.Join(inc, "a.conf"), []byte("[a]\nclient = yes\naccept = 127.0.0.1:1\nconnect = a.example.com:25061\nbogus = 1\n"), 0o644)
	main := filepath.Join(dir, "stunnel.conf")
	os.WriteFile(main, []byte("delay = yes\ninclude = "+inc+"\n"), 0o644)
	_, err := ReadConfig(main)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(inc, "a.conf")+`:5: unsupported option "bogus"`) {
		t.Fatalf("err = %v", err)
	}
	os.WriteFile(filepath.Join(inc, "a.conf"), []byte("[a]\nclient = yes\naccept = 127.0.0.1:1\nconnect = a.example.com:25061\n"), 0o644)
	cfg, err := ReadConfig(main)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Services) != 2 || cfg.Services[0].Name != "a" || cfg.Services[1].Name != "b" {
		t.Fatalf("services = %+v", cfg.Services)
	}
}

// TestValidateListsEveryProblem: one Validate call names every problem of
// a file at its line, in file order: unsupported keys beside CA files that
// do not load (global or per service, reported once per line), bad
// addresses and non-loopback listeners.
func TestValidateListsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not-a-cert.crt")
	os.WriteFile(notPEM, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600)
	conf := `CAfile = /nonexistent.crt
[a]
client = yes
accept = 127.0.0.1:6379
connect = a.example.com:25061
foo = bar
[b]
client = yes
accept = 127.0.0.1:6380
connect = b.example.com:25061
[c]
client = yes
accept = 6381
connect = c.example.com:25061
CAfile = ` + notPEM + `
[d]
client = yes
accept = 127.0.0.1:70000
connect = d example.com:25061
connect = d.example.com:0
CAfile = ` + dir + `
`
	path := filepath.Join(dir, "all.conf")
	os.WriteFile(path, []byte(conf), 0o644)
	cfg, err := ReadConfig(path)
	if cfg == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), `all.conf:6: unsupported option "foo"`) {
		t.Fatalf("ReadConfig = %v, %v", cfg, err)
	}
	err = cfg.Validate()
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("Validate = %v, want ErrConfig", err)
	}
	want := []string{
		path + ":1: CAfile: open /nonexistent.crt: no such file or directory",
		path + `:6: unsupported option "foo"`,
		path + ":13: [c] accept 0.0.0.0:6381 is not a loopback address",
		path + ":15: CAfile " + notPEM + " holds no PEM certificate",
		path + `:18: accept = 127.0.0.1:70000: port "70000": want 0-65535`,
		path + `:19: connect = d example.com:25061: host "d example.com" is neither an IP address nor a DNS name`,
		path + `:20: connect = d.example.com:0: port "0": want 1-65535`,
		path + ":21: CAfile: read " + dir + ": is a directory",
	}
	lines := strings.Split(err.Error(), "\n")[1:]
	if len(lines) != len(want) {
		t.Errorf("%d problems, want %d:\n%v", len(lines), len(want), err)
	}
	for i, w := range want {
		if i >= len(lines) || !strings.HasPrefix(lines[i], w) {
			t.Errorf("problem %d: want %q\n%v", i+1, w, err)
		}
	}
	if _, err := New(cfg); !errors.Is(err, ErrConfig) {
		t.Errorf("New with a Config ParseConfig refused: %v, want ErrConfig", err)
	}
}

func TestNotes(t *testing.T) {
	cfg, err := ParseConfig("redis.conf", strings.NewReader(seedConf))
	if err != nil {
		t.Fatal(err)
	}
	n := cfg.Notes()
	if len(n) != 1 || !strings.HasPrefix(n[0], "redis.conf:3: [redis-client] no CAfile: backend certificates will be verified against the system roots (stunnel, without verifyChain, verified nothing)") ||
		!strings.Contains(n[0], "CAfile =") {
		t.Errorf("notes for the seed's file: %q", n)
	}
	cfg.Services[0].CAFile = "/etc/ssl/do-ca.crt"
	if n := cfg.Notes(); len(n) != 0 {
		t.Errorf("notes with a CAfile: %q", n)
	}
	cfg.InsecureSkipVerify = true
	if n := cfg.Notes(); len(n) != 1 || !strings.Contains(n[0], "not verified") {
		t.Errorf("notes with InsecureSkipVerify: %q", n)
	}
}
