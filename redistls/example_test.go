package redistls_test

import (
	"fmt"
	"strings"

	"github.com/fediops/fediops/redistls"
)

// The seed's /etc/stunnel/redis.conf runs as it is; fediops adds
// verification against the system roots (or CAfile) on its own.
func Example() {
	conf := `pid = /run/stunnel-redis.pid
delay = yes
[redis-client]
client = yes
accept = 127.0.0.1:6379
connect = path-to-redis-database.ondigitalocean.com:25061
`
	cfg, err := redistls.ParseConfig("/etc/stunnel/redis.conf", strings.NewReader(conf))
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg.HTTPAddr = "127.0.0.1:9121" // /healthz and /metrics
	fmt.Println(cfg.Validate())
	s := cfg.Services[0]
	fmt.Println(s.Name, s.Accept, "->", s.Connect[0])

	// A public listener needs an explicit choice; unknown keys name their line.
	_, err = redistls.ParseConfig("other.conf", strings.NewReader("[r]\nclient = yes\naccept = 6379\nconnect = r:1\nciphers = HIGH\n"))
	fmt.Println(err)
	// Then: t, _ := redistls.New(cfg); t.Run(ctx)

	// Output:
	// <nil>
	// redis-client 127.0.0.1:6379 -> path-to-redis-database.ondigitalocean.com:25061
	// invalid configuration:
	// other.conf:5: unsupported option "ciphers"
}
