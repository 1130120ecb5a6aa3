// Package endpoint checks the URLs backup's clients talk to.
package endpoint

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
)

// RequireTLS refuses a plain-http endpoint unless it is on loopback (the
// local stand-ins of tests and benchmarks): keys and data travel over
// TLS. An empty raw means the service's default, which is https. field
// names the setting in the error.
func RequireTLS(field, raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%s %q: %w", field, raw, err)
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%s %q: port %q: want 1-65535", field, raw, port)
		}
	}
	if u.Scheme == "https" {
		return nil
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); u.Scheme == "http" && (host == "localhost" || (ip != nil && ip.IsLoopback())) {
		return nil
	}
	return fmt.Errorf("%s %q is not https (TLS in transit is required; plain http only on loopback)", field, raw)
}
