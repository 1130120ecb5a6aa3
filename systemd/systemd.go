// Package systemd renders the systemd units of fediops's programs and of
// the Mastodon processes it lays out: fill a Service (and a Timer for a
// program run on schedule) and call Render; Executable gives the path of
// the running binary for ExecStart, refusing a temporary build.
//
// A Service with Harden set carries the sandbox of Mastodon's own units
// (dist/mastodon-web.service, mastodon-sidekiq.service,
// mastodon-streaming@.service): no capabilities, NoNewPrivileges, a
// read-only file system (ProtectSystem=strict) in which only
// ReadWritePaths and the RuntimeDirectory are writable, private /tmp and
// devices, protected kernel, clock and control groups, IPv4, IPv6, netlink
// and Unix sockets only, and the same system call filter. Every argument
// of ExecStart is quoted for systemd (Quote), so that a path with a space
// or a value with % or $ reaches the program unchanged.
package systemd

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Service is one .service unit. Zero values leave a line out, except
// where a default is named.
type Service struct {
	Description string
	// After and Wants name units to start after and with (e.g.
	// "network-online.target"); After defaults to network.target.
	After, Wants []string
	// Type is "simple" (default), "oneshot", ...
	Type             string
	User             string
	WorkingDirectory string
	Environment      []string // KEY=value, one Environment= line each
	EnvironmentFile  string   // a leading "-" lets the unit start without it
	ExecStart        []string // the program's absolute path and its arguments
	ExecReload       string   // as written, e.g. "/bin/kill -HUP $MAINPID"
	// RuntimeDirectory is created under /run, owned by User, before the
	// service starts (and removed after it stops): where a pid file or a
	// socket goes when User may not write /run itself.
	RuntimeDirectory string
	TimeoutSec       int // TimeoutSec=, 0 = left out
	TimeoutStartSec  string
	TimeoutStopSec   int
	Restart          string // "always", ...
	// Harden adds the sandbox of Mastodon's dist units (see the package
	// doc); ReadWritePaths are the paths it may still write.
	Harden         bool
	ReadWritePaths []string
	// Extra lines of [Service], as written (Nice=10, MemoryMax=256M ...).
	Extra []string
	// WantedBy is the [Install] target; "" = multi-user.target, "-" = no
	// [Install] section (a service its timer starts).
	WantedBy string
}

// Timer is one .timer unit that starts Unit on OnCalendar.
type Timer struct {
	Description     string
	OnCalendar      string // e.g. "00/4:00"
	Persistent      bool   // catch up a run missed while the machine was down
	RandomizedDelay int    // RandomizedDelaySec=, seconds
	Unit            string // the service it starts, e.g. "fediops-backup.service"
}

// hardening is the sandbox of Mastodon's dist units, in their order.
var hardening = []string{
	"# Proc filesystem",
	"ProcSubset=pid",
	"ProtectProc=invisible",
	"# Capabilities",
	"CapabilityBoundingSet=",
	"# Security",
	"NoNewPrivileges=true",
	"# Sandboxing",
	"ProtectSystem=strict",
	"PrivateTmp=true",
	"PrivateDevices=true",
	"PrivateUsers=true",
	"ProtectHostname=true",
	"ProtectKernelLogs=true",
	"ProtectKernelModules=true",
	"ProtectKernelTunables=true",
	"ProtectControlGroups=true",
	"RestrictAddressFamilies=AF_INET",
	"RestrictAddressFamilies=AF_INET6",
	"RestrictAddressFamilies=AF_NETLINK",
	"RestrictAddressFamilies=AF_UNIX",
	"RestrictNamespaces=true",
	"LockPersonality=true",
	"RestrictRealtime=true",
	"RestrictSUIDSGID=true",
	"RemoveIPC=true",
	"PrivateMounts=true",
	"ProtectClock=true",
	"# System Call Filtering",
	"SystemCallArchitectures=native",
	"SystemCallFilter=~@clock @cpu-emulation @debug @keyring @module @mount @obsolete @raw-io @reboot @setuid @swap",
}

// Render is the unit file.
func (s Service) Render() string {
	var b strings.Builder
	b.WriteString("[Unit]\n")
	line(&b, "Description", s.Description)
	line(&b, "Wants", strings.Join(s.Wants, " "))
	line(&b, "After", cmp.Or(strings.Join(s.After, " "), "network.target"))
	b.WriteString("\n[Service]\n")
	line(&b, "Type", cmp.Or(s.Type, "simple"))
	line(&b, "User", s.User)
	line(&b, "WorkingDirectory", s.WorkingDirectory)
	for _, e := range s.Environment {
		line(&b, "Environment", `"`+escape(e)+`"`)
	}
	line(&b, "EnvironmentFile", s.EnvironmentFile)
	line(&b, "ExecStart", Command(s.ExecStart))
	line(&b, "ExecReload", s.ExecReload)
	line(&b, "RuntimeDirectory", s.RuntimeDirectory)
	if s.TimeoutSec > 0 {
		line(&b, "TimeoutSec", fmt.Sprint(s.TimeoutSec))
	}
	line(&b, "TimeoutStartSec", s.TimeoutStartSec)
	if s.TimeoutStopSec > 0 {
		line(&b, "TimeoutStopSec", fmt.Sprint(s.TimeoutStopSec))
	}
	line(&b, "Restart", s.Restart)
	for _, x := range s.Extra {
		b.WriteString(x + "\n")
	}
	if s.Harden {
		for _, x := range hardening {
			b.WriteString(x + "\n")
		}
		for _, p := range s.ReadWritePaths {
			line(&b, "ReadWritePaths", Quote(p))
		}
	}
	if s.WantedBy != "-" {
		b.WriteString("\n[Install]\n")
		line(&b, "WantedBy", cmp.Or(s.WantedBy, "multi-user.target"))
	}
	return b.String()
}

// Render is the unit file.
func (t Timer) Render() string {
	var b strings.Builder
	b.WriteString("[Unit]\n")
	line(&b, "Description", t.Description)
	b.WriteString("\n[Timer]\n")
	line(&b, "OnCalendar", t.OnCalendar)
	if t.Persistent {
		line(&b, "Persistent", "true")
	}
	line(&b, "RandomizedDelaySec", fmt.Sprint(t.RandomizedDelay))
	line(&b, "Unit", t.Unit)
	b.WriteString("\n[Install]\nWantedBy=timers.target\n")
	return b.String()
}

func line(b *strings.Builder, key, value string) {
	if value != "" {
		b.WriteString(key + "=" + value + "\n")
	}
}

// Command is an ExecStart= value: each argument quoted (Quote).
func Command(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}

// Quote writes one argument of a command line so that systemd passes it
// on unchanged: specifiers (%) doubled, and double quotes, with $ doubled
// and \ and " escaped, around anything with other than plain characters.
func Quote(a string) string {
	plain := a != ""
	for _, r := range a {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_@%+=:,./-", r)) {
			plain = false
			break
		}
	}
	a = strings.ReplaceAll(a, "%", "%%")
	if plain {
		return a
	}
	return `"` + escape(a) + `"`
}

func escape(a string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", "$$", "\n", `\n`).Replace(a)
}

// ErrTemporaryBuild is a binary that `go run` built in a temporary
// directory: a unit running it would fail once the directory is gone.
var ErrTemporaryBuild = errors.New("this binary is a temporary build (go run)")

// Executable is the absolute path of the running binary, for ExecStart.
// A binary under a go-build directory (go run) is ErrTemporaryBuild,
// wrapped in a message saying where to install it: name is the program
// ("backup"), pkg its package ("./examples/backup").
func Executable(name, pkg string) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find this program's path: %w", err)
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	return exe, CheckExecutable(exe, name, pkg)
}

// CheckExecutable refuses a path under a go-build directory (see
// Executable) and a relative one.
func CheckExecutable(exe, name, pkg string) error {
	if !filepath.IsAbs(exe) {
		return fmt.Errorf("%s: not an absolute path: systemd needs one", exe)
	}
	for _, dir := range strings.Split(filepath.ToSlash(filepath.Dir(exe)), "/") {
		if strings.HasPrefix(dir, "go-build") {
			return fmt.Errorf("%s: %w: install it first (go build -o /usr/local/bin/%s %s, or go install) and run that copy", exe, ErrTemporaryBuild, name, pkg)
		}
	}
	return nil
}
