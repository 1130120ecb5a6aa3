package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestWebSubcommand(t *testing.T) {
	var out, errb bytes.Buffer
	if rc := run([]string{"web", "-vcpu", "2", "-db-connections", "97", "-nodes", "2"}, &out, &errb); rc != 0 {
		t.Fatalf("rc %d: %s", rc, errb.String())
	}
	for _, want := range []string{"WEB_CONCURRENCY=3\nMAX_THREADS=9\nDB_POOL=9\n", "web tier (2 nodes)", "54", "headroom", "43"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	out.Reset()
	errb.Reset()
	rc := run([]string{"web", "-vcpu", "4", "-db-size", "4", "-memory", "8G", "-json"}, &out, &errb)
	if rc != 1 || !strings.Contains(errb.String(), "exceed the limit 97 by 11") {
		t.Fatalf("rc %d stderr %s", rc, errb.String())
	}
	var got struct {
		Env          map[string]int `json:"env"`
		Headroom     int            `json:"headroom"`
		Alternatives []struct {
			Kind string `json:"kind"`
		} `json:"alternatives"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err, out.String())
	}
	if got.Env["WEB_CONCURRENCY"] != 6 || got.Env["MAX_THREADS"] != 18 || got.Headroom != -11 || len(got.Alternatives) != 3 {
		t.Fatalf("%+v", got)
	}

	for _, args := range [][]string{{"web", "-vcpu", "0"}, {"web", "-memory", "lots"}, {"web", "extra"}, {"web", "-nope"}} {
		if rc := run(args, &out, &errb); rc != 2 {
			t.Errorf("%v: rc %d, want 2", args, rc)
		}
	}
	if rc := run([]string{"web", "-h"}, &out, &errb); rc != 0 {
		t.Errorf("-h: rc %d", rc)
	}
}

// TestMemorySizes: -node and -memory read sizes alike (one parser).
func TestMemorySizes(t *testing.T) {
	for _, size := range []string{"4096", "4096M", "4096mb", "4G", "4gb", " 4G"} {
		var n nodeFlags
		if err := n.Set("Scotty:2:" + size); err != nil || n[0].MemoryMB != 4096 {
			t.Errorf("-node Scotty:2:%s: %v %+v", size, err, n)
		}
		if mib, err := parseMiB(size); err != nil || mib != 4096 {
			t.Errorf("-memory %s: %d %v", size, mib, err)
		}
	}
	for _, size := range []string{"", "0", "4T", "lots", "-4G"} {
		var n nodeFlags
		if err := n.Set("Scotty:2:" + size); err == nil || !strings.Contains(err.Error(), "memory") {
			t.Errorf("-node Scotty:2:%s: %v", size, err)
		}
	}
}
