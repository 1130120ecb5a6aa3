package systemd_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fediops/fediops/systemd"
)

// The rendered ExecStart passes every argument on unchanged: systemd's
// own parser (systemd-analyze) accepts the unit, the hardening included,
// and `systemd-analyze cat-config`-free checks read the arguments back.
func TestServiceRendersAndVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze is needed to check the units: apt-get install -y systemd")
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "my backup") // a space in the path
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	svc := systemd.Service{Description: "test", Type: "oneshot", User: "mastodon", WorkingDirectory: "/home/mastodon/live",
		Environment: []string{"A=b c"}, EnvironmentFile: "-/etc/fediops/backup.env",
		ExecStart: []string{exe, "run", "-env", "/home/mastodon/live/.env.production", "-prefix", "100%/$HOME", `-x="q"`},
		Harden:    true, ReadWritePaths: []string{"/run/lock"}, RuntimeDirectory: "fediops-test", WantedBy: "-"}
	text := svc.Render()
	for _, want := range []string{
		`ExecStart="` + exe + `" run -env /home/mastodon/live/.env.production -prefix "100%%/$$HOME" "-x=\"q\""` + "\n",
		"ProtectSystem=strict\n", "ReadWritePaths=/run/lock\n", "RuntimeDirectory=fediops-test\n", "CapabilityBoundingSet=\n",
		"SystemCallFilter=~@clock @cpu-emulation @debug @keyring @module @mount @obsolete @raw-io @reboot @setuid @swap\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("unit lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "[Install]") {
		t.Errorf("WantedBy - still has [Install]:\n%s", text)
	}
	path := filepath.Join(dir, "fediops-test.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s\n%s", err, out, text)
	}
	timer := systemd.Timer{Description: "t", OnCalendar: "00/4:00", Persistent: true, RandomizedDelay: 600, Unit: "fediops-test.service"}.Render()
	tpath := filepath.Join(dir, "fediops-test.timer")
	if err := os.WriteFile(tpath, []byte(timer), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(analyze, "verify", "--man=no", tpath, path).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify of the timer: %v\n%s\n%s", err, out, timer)
	}
}

func TestCheckExecutable(t *testing.T) {
	for exe, want := range map[string]string{
		"/usr/local/bin/backup":                            "",
		"/tmp/go-build1234/b001/exe/backup":                "temporary build (go run): install it first (go build -o /usr/local/bin/backup ./examples/backup",
		"/root/.cache/go-build/x/go-build99/b1/exe/backup": "temporary build",
		"backup": "not an absolute path",
	} {
		err := systemd.CheckExecutable(exe, "backup", "./examples/backup")
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("CheckExecutable(%s): %v, want %q", exe, err, want)
		}
	}
}
