package envfile

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestSetAll(t *testing.T) {
	f := mustParse(t, seedPostgres)
	changes, err := f.SetAll(
		Setting{"DB_HOST", "db.example.com"},
		Setting{"DB_PORT", "25061"}, // as it is: skipped
		Setting{"DB_PASS", "n3w-s3cret"},
		Setting{"FEDIOPS_DB_DIRECT_NAME", "mastodon_production"},
	)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range changes {
		got = append(got, c.String())
	}
	want := []string{
		`set DB_HOST=db.example.com (was "path-to-postgres-database.ondigitalocean.com")`,
		`set DB_PASS=[redacted] (was "[redacted]")`,
		`set FEDIOPS_DB_DIRECT_NAME=mastodon_production (was unset)`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if c := changes[1]; c.Key != "DB_PASS" || c.Value != "n3w-s3cret" || c.Was != "Ourpassw0rd!sNoneofyourbu" || !c.Had {
		t.Errorf("DB_PASS change fields: %+v", c)
	}
	for _, s := range []string{fmt.Sprint(changes), fmt.Sprintf("%#v", changes), fmt.Sprintf("%v", changes[1])} {
		if strings.Contains(s, "n3w-s3cret") || strings.Contains(s, "Ourpassw0rd") {
			t.Errorf("a secret printed: %s", s)
		}
	}
	for _, k := range []string{"DB_HOST", "DB_PASS", "FEDIOPS_DB_DIRECT_NAME"} {
		e, _ := f.Lookup(k)
		if e.Value != e.NodeValue || e.Value == "" {
			t.Errorf("%s: Rails reads %q, streaming %q", k, e.Value, e.NodeValue)
		}
	}
	if !strings.Contains(string(f.Bytes()), "\nDB_PORT=25061\n") {
		t.Errorf("DB_PORT rewritten although unchanged:\n%s", f.Bytes())
	}

	// Everything in place already: no change, not one byte.
	before := string(f.Bytes())
	changes, err = f.SetAll(Setting{"DB_HOST", "db.example.com"}, Setting{"DB_PORT", "25061"})
	if err != nil || len(changes) != 0 || string(f.Bytes()) != before {
		t.Errorf("second SetAll: %v %v", changes, err)
	}
}

// A value Rails reads as wanted but the streaming server does not is
// rewritten, and the change says why.
func TestSetAllNodeDiffers(t *testing.T) {
	f := mustParse(t, "A=x\\y\n") // Ruby drops the backslash, node keeps it
	if e, _ := f.Lookup("A"); e.Value != "xy" || e.NodeValue != `x\y` {
		t.Fatalf("premise: Ruby %q, node %q", e.Value, e.NodeValue)
	}
	changes, err := f.SetAll(Setting{"A", "xy"})
	if err != nil || len(changes) != 1 || !strings.Contains(changes[0].String(), "not for the streaming server") {
		t.Fatalf("changes %v, err %v", changes, err)
	}
	if got := string(f.Bytes()); got != "A='xy'\n" {
		t.Errorf("file %q", got)
	}
}

// A failing setting leaves the file as it was, the earlier ones included.
func TestSetAllAtomic(t *testing.T) {
	for _, bad := range []Setting{{"BAD KEY", "x"}, {"C", "it's $5\\"}} {
		f := mustParse(t, "A=1\nB=2\n")
		changes, err := f.SetAll(Setting{"A", "10"}, Setting{"NEW", "n"}, bad, Setting{"B", "20"})
		if err == nil || changes != nil {
			t.Fatalf("%q: changes %v, err %v", bad.Key, changes, err)
		}
		if !errors.Is(err, ErrInvalidKey) && !errors.Is(err, ErrNotPortable) {
			t.Errorf("%q: error %v is neither ErrInvalidKey nor ErrNotPortable", bad.Key, err)
		}
		if !strings.Contains(err.Error(), bad.Key) {
			t.Errorf("error does not name %q: %v", bad.Key, err)
		}
		if got := string(f.Bytes()); got != "A=1\nB=2\n" {
			t.Errorf("%q: file changed to %q", bad.Key, got)
		}
		if v, _ := f.Get("A"); v != "1" {
			t.Errorf("%q: A = %q after the failed SetAll", bad.Key, v)
		}
		if _, ok := f.Get("NEW"); ok || len(f.Entries()) != 2 {
			t.Errorf("%q: NEW is set after the failed SetAll: %v", bad.Key, f.Entries())
		}
		// The file still works after the rollback.
		if _, err := f.SetAll(Setting{"B", "3"}); err != nil || string(f.Bytes()) != "A=1\nB='3'\n" {
			t.Errorf("%q: SetAll after the rollback: %v %q", bad.Key, err, f.Bytes())
		}
	}
}
