//go:build oracle

package envfile

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/rand"
	"os/exec"
	"strings"
	"testing"
)

type oracle struct {
	in  *json.Encoder
	out *bufio.Scanner
}

func startOracle(t *testing.T, name string, args ...string) *oracle {
	cmd := exec.Command(name, args...)
	w, _ := cmd.StdinPipe()
	r, _ := cmd.StdoutPipe()
	cmd.Stderr = nil
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close(); cmd.Wait() })
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	return &oracle{json.NewEncoder(w), sc}
}

func (o *oracle) ask(data string, env map[string]string) []byte {
	o.in.Encode(map[string]any{"data": base64.StdEncoding.EncodeToString([]byte(data)), "env": env})
	if !o.out.Scan() {
		panic("oracle died")
	}
	return o.out.Bytes()
}

var tokens = []string{"A", "B", "x", "n", "DOTENV_LINEBREAK_MODE", "legacy", "=", ": ", ":", " ", " ", "\n", "\n", "\n", "'", "'", "\"", "\"", "`", "\\", "\\", "$", "$", "{", "}", "#", "export ", "(", ")", "\r", "\t", "\u00a0", "é", "-", ".", "\x00", "\v", "e", "ſ", "$x", "${A}", "\\n", "\\$", "A=", "B=", "\nA=", "\nB="}

func gen(r *rand.Rand) string {
	n := 1 + r.Intn(14)
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(tokens[r.Intn(len(tokens))])
	}
	return b.String()
}

func TestOracle(t *testing.T) {
	rb := startOracle(t, "ruby", "/tmp/oracle/rb.rb")
	nd := startOracle(t, "node", "/tmp/oracle/nodeparse.js")
	env := map[string]string{"x": "EX", "e": "", "A": "envA"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	r := rand.New(rand.NewSource(1))
	reasons := map[string]int{}
	ok, bad := 0, 0
	for i := 0; i < 300000 && bad < 15; i++ {
		data := gen(r)
		f, err := Parse("t", []byte(data), WithLookup(lookup))
		var rres struct {
			OK    bool              `json:"ok"`
			Hash  map[string]string `json:"hash"`
			Error string            `json:"error"`
		}
		var nres map[string]string
		json.Unmarshal(nd.ask(data, env), &nres)
		if strings.Contains(data, "$(") {
			// commands: only check node
			if err == nil {
				for k, v := range f.node {
					if nres[k] != v.value {
						t.Errorf("node mismatch %q: key %s ours %q node %q", data, k, v.value, nres[k])
						bad++
					}
				}
			}
			continue
		}
		json.Unmarshal(rb.ask(data, env), &rres)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("%q: %v", data, err)
			}
			reasons[pe.Reason[:min(len(pe.Reason), 40)]]++
			continue
		}
		ok++
		if !rres.OK {
			t.Errorf("ruby error %q: %s; ours ok", data, rres.Error)
			bad++
			continue
		}
		want := map[string]string{}
		for k, v := range f.Map() {
			want[k] = v
			if ev, ok := env[k]; ok && k != linebreakKey {
				want[k] = ev
			}
		}
		// export KEY for env-only keys: Ruby puts ENV value into hash
		for k, v := range rres.Hash {
			if _, ok := want[k]; !ok {
				if ev, ok := env[k]; ok && ev == v {
					want[k] = v
				}
			}
		}
		if len(want) != len(rres.Hash) {
			t.Errorf("ruby keys %q: ours %q ruby %q", data, want, rres.Hash)
			bad++
			continue
		}
		for k, v := range rres.Hash {
			if want[k] != v {
				t.Errorf("ruby mismatch %q: key %s ours %q ruby %q", data, k, want[k], v)
				bad++
			}
		}
		if len(nres) != len(f.node) {
			t.Errorf("node keys %q: ours %v node %q", data, f.node, nres)
			bad++
			continue
		}
		for k, v := range f.node {
			if nres[k] != v.value {
				t.Errorf("node mismatch %q: key %s ours %q node %q", data, k, v.value, nres[k])
				bad++
			}
		}
	}
	t.Logf("ok %d, rejected %v", ok, reasons)
}
