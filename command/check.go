package command

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// CheckListen checks an address a program will listen on, before it
// listens: host:port with a port from 1 to 65535, and a loopback host
// (127.0.0.0/8, ::1, localhost) unless allowNonLoopback, which a program
// sets only from an explicit flag (-unsafe-listen): an empty host or
// 0.0.0.0 would serve every interface. The error is a *UsageError.
func CheckListen(addr string, allowNonLoopback bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return Usagef("listen address %q: want host:port, such as 127.0.0.1:9102", addr)
	}
	if err := checkPort(port); err != nil {
		return Usagef("listen address %s: %v", addr, err)
	}
	if !allowNonLoopback && !Loopback(host) {
		return Usagef("listen address %s is not a loopback address: it would serve every machine that reaches this one; use 127.0.0.1, or allow it explicitly (-unsafe-listen)", addr)
	}
	return nil
}

// CheckCredentialURL checks a URL that carries a credential (a token in
// its path, a key in its requests): an absolute http or https URL with a
// valid port, https unless its host is loopback, so that the credential
// never travels in clear. The error names the scheme and host only, never
// the path or user part, and is a *UsageError.
func CheckCredentialURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return Usagef("URL %s: want https://host/...", redactURL(raw))
	}
	if p := u.Port(); p != "" {
		if err := checkPort(p); err != nil {
			return Usagef("URL %s://%s: %v", u.Scheme, u.Host, err)
		}
	}
	if u.Scheme == "http" && !Loopback(u.Hostname()) {
		return Usagef("URL %s://%s/...: must be https unless its host is loopback: it carries a credential", u.Scheme, u.Host)
	}
	return nil
}

// CheckURL checks a URL a program connects to without a credential (a
// node's health endpoint): an absolute http or https URL with a valid
// port. The error is a *UsageError.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return Usagef("URL %q: want http://host:port or https://host", raw)
	}
	if p := u.Port(); p != "" {
		if err := checkPort(p); err != nil {
			return Usagef("URL %s: %v", raw, err)
		}
	}
	return nil
}

func checkPort(port string) error {
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	return nil
}

// Loopback reports whether host is localhost or a loopback address.
func Loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// redactURL is raw without what may hold a credential: the user part,
// the path and the query.
func redactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Scheme != "" {
		return u.Scheme + "://" + u.Host + "/..."
	}
	return "(unparsable)"
}
