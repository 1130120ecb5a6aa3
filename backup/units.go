package backup

import (
	"cmp"
	"fmt"
	"time"

	"github.com/fediops/fediops/systemd"
)

// Units describes the systemd service and timer that run a command on a
// schedule (the backups every 4 hours; backup/mirror's Units for the media
// mirror). The service has the sandbox of Mastodon's own units
// (systemd.Service's Harden): it may write only ReadWritePaths.
type Units struct {
	Name        string   // unit base name; "" = "fediops-backup"
	Description string   // "" = "fediops database backup (<Name>)"
	Command     []string // the program's absolute path and its arguments, e.g. {"/usr/local/bin/backup", "run", "-env", "/home/mastodon/live/.env.production"}
	User        string   // "" = "mastodon"
	WorkingDir  string   // "" = "/home/mastodon/live" (where .env.production is)
	// EnvironmentFile holds the secrets that are not in .env.production (B2
	// keys, the Slack webhook; mode 0600). "" = "/etc/fediops/backup.env";
	// a leading "-" lets the service start without it.
	EnvironmentFile string
	// ReadWritePaths are what the run writes: its lock file's directory,
	// FEDIOPS_METRICS_DIR. "" = the default lock's, /run/lock.
	ReadWritePaths  []string
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
	rw := u.ReadWritePaths
	if len(rw) == 0 {
		rw = []string{"/run/lock"}
	}
	service = systemd.Service{
		Description:      cmp.Or(u.Description, "fediops database backup ("+name+")"),
		Wants:            []string{"network-online.target"},
		After:            []string{"network-online.target"},
		Type:             "oneshot",
		User:             cmp.Or(u.User, "mastodon"),
		WorkingDirectory: cmp.Or(u.WorkingDir, "/home/mastodon/live"),
		EnvironmentFile:  cmp.Or(u.EnvironmentFile, "/etc/fediops/backup.env"),
		ExecStart:        command,
		Extra:            []string{"Nice=10", "IOSchedulingClass=best-effort", "IOSchedulingPriority=7", "MemoryMax=256M", "TimeoutStartSec=3h"},
		Harden:           true,
		ReadWritePaths:   rw,
		WantedBy:         "-", // the timer starts it
	}.Render()
	timer = systemd.Timer{
		Description:     "Run " + name + " on schedule " + cmp.Or(u.OnCalendar, "00/4:00"),
		OnCalendar:      cmp.Or(u.OnCalendar, "00/4:00"),
		Persistent:      true,
		RandomizedDelay: int(delay.Seconds()),
		Unit:            name + ".service",
	}.Render()
	return service, timer
}

// String names the units, for messages.
func (u Units) String() string {
	return fmt.Sprintf("%s.service and %[1]s.timer", cmp.Or(u.Name, "fediops-backup"))
}
