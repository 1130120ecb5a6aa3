package readmetest

import (
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	text := "# top\n\n## Try\n\ntext $ not a command\n\n```\n$ a -x\nout 1\n\n$ b\n```\n\n```sh\nmake demo\n```\n\n### c\n```\n$ c; echo $?\n2\n```\n"
	got := Parse(text)
	want := []Command{
		{Section: "## Try", Line: 8, Cmd: "a -x", Want: []string{"out 1"}},
		{Section: "## Try", Line: 11, Cmd: "b"},
		{Section: "### c", Line: 20, Cmd: "c; echo $?", Want: []string{"2"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse:\n%#v\nwant\n%#v", got, want)
	}
}

// TestMatch: what a changed output must fail on (words, statuses, lines,
// exit statuses) and what it must pass despite (timings, sizes, ports,
// paths, ids).
func TestMatch(t *testing.T) {
	readme := strings.Split(`CHECK                      STATUS  LATENCY  DETAIL
web 127.0.0.1:46221        ok      7ms      200 OK
database                   ok      14ms     ping 13.97ms, 1/2 conns
restored db/postgres/20261203T141528Z.pgdump.zst.age: 608.4 KiB, sha256 92530d8ed2e35220cf40388e7aa7957d46c0192b7b6709a2fecb4f7a7e5f2403 OK
1. ca /srv/live/do-internal.crt: write (mode 0644)
2. pool p, cluster 9cc10173-e9ea-4176-9dbc-a4cee4c4ff30: 1 change(s)`, "\n")
	same := strings.Split(`CHECK  STATUS  LATENCY  DETAIL
web 127.0.0.1:3000  ok  1.2s  200 OK
database  ok  631µs  ping 1m2.5s, 2/2 conns
restored db/postgres/20270101T000000Z.pgdump.zst.age: 1.1 MiB, sha256 0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9 OK
1. ca /tmp/x/y/do-internal.crt: write (mode 0600)
2. pool p, cluster 00000001-0000-4000-8000-000000000001: 3 change(s)

`, "\n")
	if ok, w, g := Match(readme, same); !ok {
		t.Errorf("same shape refused at %q / %q", w, g)
	}
	for name, change := range map[string]func([]string) []string{
		"status":       func(l []string) []string { l[1] = strings.Replace(l[1], "ok", "fail", 1); return l },
		"word":         func(l []string) []string { l[2] = strings.Replace(l[2], "conns", "connections", 1); return l },
		"file name":    func(l []string) []string { l[4] = strings.Replace(l[4], "do-internal.crt", "ca.pem", 1); return l },
		"missing line": func(l []string) []string { return append(l[:3:3], l[4:]...) },
		"extra line":   func(l []string) []string { return append(l, "warning: something") },
		"split line": func(l []string) []string {
			return append(l[:1:1], append([]string{"web 127.0.0.1:3000", "ok 1s 200 OK"}, l[2:]...)...)
		},
		"column header": func(l []string) []string { l[0] = "CHECK STATUS DETAIL"; return l },
	} {
		got := change(append([]string(nil), same...))
		if ok, _, _ := Match(readme, got); ok {
			t.Errorf("%s: a changed output passed:\n%s", name, strings.Join(got, "\n"))
		}
	}

	// An exit status is compared as it is; "..." stands for any lines.
	if ok, _, _ := Match([]string{"tunnel: bad", "2"}, []string{"tunnel: bad", "1"}); ok {
		t.Error("exit status 1 passed for 2")
	}
	want := []string{"# head", "...", "[Timer]", "OnCalendar=00/4:00", "..."}
	for _, got := range [][]string{
		{"# head", "[Timer]", "OnCalendar=00/4:00"},
		{"# head", "a", "b", "[Timer]", "OnCalendar=00/4:00", "c"},
	} {
		if ok, w, g := Match(want, got); !ok {
			t.Errorf("... refused %q at %q / %q", got, w, g)
		}
	}
	if ok, _, _ := Match(want, []string{"# head", "[Timer]", "OnCalendar=weekly"}); ok {
		t.Error("... let a changed line pass")
	}
	// A line ending in "..." stands for its beginning.
	cut := []string{"provision: warning: .env.production:14: DB_PASS: Rails read only the first 25 ..."}
	if ok, w, g := Match(cut, []string{"provision: warning: .env.production:14: DB_PASS: Rails read only the first 25 of 31 characters"}); !ok {
		t.Errorf("a cut line refused at %q / %q", w, g)
	}
	if ok, _, _ := Match(cut, []string{"provision: warning: .env.production:14: DB_USER: Rails read only the first 25 of 31"}); ok {
		t.Error("a cut line let a changed beginning pass")
	}
	if ok, _, _ := Match([]string{"tunnel: invalid config..."}, []string{"tunnel: invalid configuration:"}); !ok {
		t.Error("a line cut inside a word refused")
	}
	if ok, _, _ := Match(nil, []string{"printed something"}); ok {
		t.Error("output passed where the README shows none")
	}
}
