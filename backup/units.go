package backup

import (
	"cmp"
	"fmt"
	"strings"
	"time"
)

// Units describes the systemd service and timer that run a command on a
// schedule (the backups every 4 hours; backup/mirror's Units for the media
// mirror).
type Units struct {
	Name        string   // unit base name; "" = "fediops-backup"
	Description string   // "" = "fediops database backup (<Name>)"
	Command     []string // the program and its arguments, e.g. {"/usr/local/bin/backup", "run", "-env", "/home/mastodon/live/.env.production"}
	User        string   // "" = "mastodon"
	WorkingDir  string   // "" = "/home/mastodon/live" (where .env.production is)
	// EnvironmentFile holds the secrets that are not in .env.production (B2
	// keys, the Slack webhook; mode 0600). "" = "/etc/fediops/backup.env";
	// a leading "-" lets the service start without it.
	EnvironmentFile string
	OnCalendar      string        // "" = "00/4:00" (every 4 hours)
	RandomizedDelay time.Duration // 0 = 10 minutes
}

// Systemd renders the service and the timer unit files. The timer is
// Persistent, so a run missed while the machine was down happens at boot.
// Command's arguments are quoted for systemd (%, $, spaces and quotes).
func (u Units) Systemd() (service, timer string) {
	name := cmp.Or(u.Name, "fediops-backup")
	delay := u.RandomizedDelay
	if delay == 0 {
		delay = 10 * time.Minute
	}
	command := u.Command
	if len(command) == 0 {
		command = []string{"/usr/local/bin/backup", "run"}
	}
	quoted := make([]string, len(command))
	for i, a := range command {
		quoted[i] = systemdQuote(a)
	}
	service = strings.Join([]string{
		"[Unit]",
		"Description=" + cmp.Or(u.Description, "fediops database backup ("+name+")"),
		"Wants=network-online.target",
		"After=network-online.target",
		"",
		"[Service]",
		"Type=oneshot",
		"User=" + cmp.Or(u.User, "mastodon"),
		"WorkingDirectory=" + cmp.Or(u.WorkingDir, "/home/mastodon/live"),
		"EnvironmentFile=" + cmp.Or(u.EnvironmentFile, "/etc/fediops/backup.env"),
		"ExecStart=" + strings.Join(quoted, " "),
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
		"Description=Run " + name + " on schedule " + cmp.Or(u.OnCalendar, "00/4:00"),
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

// systemdQuote writes one ExecStart argument so that systemd passes it on
// unchanged: specifiers (%) and variables ($) doubled, double quotes around
// anything with other than plain characters.
func systemdQuote(a string) string {
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
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", "$$", "\n", `\n`)
	return `"` + r.Replace(a) + `"`
}
