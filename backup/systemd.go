package backup

import (
	"cmp"
	"fmt"
	"strings"
	"time"
)

// Units describes the systemd service and timer that run backups.
type Units struct {
	Name            string        // unit base name; "" = "fediops-backup"
	ExecStart       string        // full command line, e.g. "/usr/local/bin/fediops-backup run"
	User            string        // "" = "mastodon"
	WorkingDir      string        // "" = "/home/mastodon/live" (where .env.production is)
	EnvironmentFile string        // "" = "/etc/fediops/backup.env" (B2 keys, webhook; mode 0600)
	OnCalendar      string        // "" = "00/4:00" (every 4 hours)
	RandomizedDelay time.Duration // 0 = 10 minutes
}

// Systemd renders the service and the timer unit files. The timer is
// Persistent, so a run missed while the machine was down happens at boot.
func (u Units) Systemd() (service, timer string) {
	name := cmp.Or(u.Name, "fediops-backup")
	delay := u.RandomizedDelay
	if delay == 0 {
		delay = 10 * time.Minute
	}
	service = strings.Join([]string{
		"[Unit]",
		"Description=fediops database backup to B2 (" + name + ")",
		"Wants=network-online.target",
		"After=network-online.target",
		"",
		"[Service]",
		"Type=oneshot",
		"User=" + cmp.Or(u.User, "mastodon"),
		"WorkingDirectory=" + cmp.Or(u.WorkingDir, "/home/mastodon/live"),
		"EnvironmentFile=" + cmp.Or(u.EnvironmentFile, "/etc/fediops/backup.env"),
		"ExecStart=" + cmp.Or(u.ExecStart, "/usr/local/bin/fediops-backup run"),
		"Nice=10",
		"IOSchedulingClass=best-effort",
		"IOSchedulingPriority=7",
		"MemoryMax=256M",
		"TimeoutStartSec=3h",
		"PrivateTmp=true",
		"NoNewPrivileges=true",
		"ProtectSystem=full",
		"",
	}, "\n")
	timer = strings.Join([]string{
		"[Unit]",
		"Description=Run " + name + " every 4 hours",
		"",
		"[Timer]",
		"OnCalendar=" + cmp.Or(u.OnCalendar, "00/4:00"),
		"Persistent=true",
		fmt.Sprintf("RandomizedDelaySec=%d", int(delay.Seconds())),
		"Unit=" + name + ".service",
		"",
		"[Install]",
		"WantedBy=timers.target",
		"",
	}, "\n")
	return service, timer
}
