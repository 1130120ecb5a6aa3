package envfile

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The real readers of .env.production, run over the corpus: node dotenv
// from npm and Ruby dotenv from Debian live, Ruby dotenv 2.8.1, 3.1.7 and
// 3.2.0 through the outputs those gems gave (testdata/golden, made by
// testdata/regen-golden.sh).

var goldenGems = flag.String("golden-gems", "", "rewrite testdata/golden from the Ruby dotenv gems checked out in this directory (one lib/ per subdirectory; see testdata/regen-golden.sh)")

const (
	readersDir = "testdata/readers"
	goldenDir  = "testdata/golden"

	// The install lines a missing reader's failure names.
	installRuby = "apt-get install -y ruby-dotenv (or make deps as root)"
	installNode = "npm ci --prefix internal/envfile/testdata/readers (as .ci/run does)"
)

// readerOutput is what one reader gave for one file.
type readerOutput struct {
	Keys     map[string]string `json:"keys"`
	Commands []string          `json:"commands"`
	Error    string            `json:"error"`
}

// readerRun is a reader's answers for a whole corpus, in corpus order.
type readerRun struct {
	Reader  string `json:"reader"`
	Version string `json:"version"`
	Ruby    string `json:"ruby,omitempty"`
	Node    string `json:"node,omitempty"`
	Corpus  string `json:"corpus,omitempty"` // fingerprint, in golden files
	files   []readerOutput
}

// writeCorpus writes the files and a manifest of them into dir.
func writeCorpus(t testing.TB, dir string, files []*corpusFile) string {
	t.Helper()
	var m bytes.Buffer
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := os.WriteFile(path, f.data, 0o600); err != nil {
			t.Fatal(err)
		}
		line, err := json.Marshal(map[string]any{"path": path, "env": readerEnv(f.env)})
		if err != nil {
			t.Fatal(err)
		}
		m.Write(append(line, '\n'))
	}
	manifest := filepath.Join(dir, "manifest.jsonl")
	if err := os.WriteFile(manifest, m.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return manifest
}

// commandPath is the PATH the readers' commands run with.
const commandPath = "/usr/bin:/bin"

// readerEnv is the whole environment a reader runs a file with.
func readerEnv(env map[string]string) map[string]string {
	out := map[string]string{"PATH": commandPath}
	for k, v := range env {
		out[k] = v
	}
	return out
}

// runReader runs a reader program over the manifest.
func runReader(t testing.TB, manifest string, name string, args ...string) *readerRun {
	t.Helper()
	in, err := os.Open(manifest)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	cmd := exec.Command(name, args...)
	cmd.Stdin = in
	cmd.Env = []string{"PATH=" + commandPath, "LANG=C.UTF-8"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.Bytes())
	}
	run, err := decodeRun(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return run
}

func decodeRun(r interface{ Read([]byte) (int, error) }) (*readerRun, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 64<<20)
	var run readerRun
	for i := 0; sc.Scan(); i++ {
		if i == 0 {
			if err := json.Unmarshal(sc.Bytes(), &run); err != nil {
				return nil, fmt.Errorf("header: %w", err)
			}
			continue
		}
		var o readerOutput
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		run.files = append(run.files, o)
	}
	return &run, sc.Err()
}

// runNode runs node dotenv 16.5 from testdata/readers/node_modules.
func runNode(t testing.TB, manifest string) *readerRun {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is not installed: apt-get install -y nodejs npm, then %s", installNode)
	}
	pkg, err := os.ReadFile(filepath.Join(readersDir, "node_modules", "dotenv", "package.json"))
	if err != nil {
		t.Fatalf("node dotenv is not installed: %s", installNode)
	}
	var v struct{ Version string }
	if json.Unmarshal(pkg, &v); !strings.HasPrefix(v.Version, "16.5.") {
		t.Fatalf("node dotenv %s is installed, the test needs 16.5.x: %s", v.Version, installNode)
	}
	return runReader(t, manifest, "node", filepath.Join(readersDir, "dotenv.js"))
}

// runDebianRuby runs Debian's ruby-dotenv.
func runDebianRuby(t testing.TB, manifest string) *readerRun {
	t.Helper()
	if _, err := exec.LookPath("ruby"); err != nil {
		t.Fatalf("ruby is not installed: %s", installRuby)
	}
	if out, err := exec.Command("ruby", "-e", `require "dotenv"`).CombinedOutput(); err != nil {
		t.Fatalf("Ruby dotenv is not installed (%s): %s", bytes.TrimSpace(out), installRuby)
	}
	return runRuby(t, manifest, "")
}

// runRuby runs the Ruby harness with the gem in lib ("" for the
// installed one).
func runRuby(t testing.TB, manifest, lib string) *readerRun {
	t.Helper()
	args := []string{"-E", "UTF-8:UTF-8", filepath.Join(readersDir, "dotenv.rb")}
	if lib != "" {
		args = append(args, lib)
	}
	return runReader(t, manifest, "ruby", args...)
}

// goldenFile holds the outputs of every golden release, made by
// testdata/regen-golden.sh.
var goldenFile = filepath.Join(goldenDir, "ruby-dotenv.jsonl.gz")

// goldenHead is the golden file's first line; each further line is a JSON
// array per corpus file: the first release's output in full, then each
// other release's as a goldenDelta from it.
type goldenHead struct {
	Corpus  string      `json:"corpus"` // the corpus's fingerprint
	Files   int         `json:"files"`
	Readers []readerRun `json:"readers"`
}

type goldenDelta struct {
	Keys     map[string]string `json:"keys,omitempty"` // changed or added
	Drop     []string          `json:"drop,omitempty"` // absent
	Commands *[]string         `json:"commands,omitempty"`
	Error    *string           `json:"error,omitempty"`
}

func delta(base, o readerOutput) goldenDelta {
	var d goldenDelta
	for k, v := range o.Keys {
		if bv, ok := base.Keys[k]; !ok || bv != v {
			if d.Keys == nil {
				d.Keys = map[string]string{}
			}
			d.Keys[k] = v
		}
	}
	for _, k := range slices.Sorted(maps.Keys(base.Keys)) {
		if _, ok := o.Keys[k]; !ok {
			d.Drop = append(d.Drop, k)
		}
	}
	if !slices.Equal(base.Commands, o.Commands) {
		c := o.Commands
		d.Commands = &c
	}
	if base.Error != o.Error {
		e := o.Error
		d.Error = &e
	}
	return d
}

func (d goldenDelta) apply(base readerOutput) readerOutput {
	o := readerOutput{Keys: maps.Clone(base.Keys), Commands: base.Commands, Error: base.Error}
	for _, k := range d.Drop {
		delete(o.Keys, k)
	}
	if o.Keys == nil && d.Keys != nil {
		o.Keys = map[string]string{}
	}
	maps.Copy(o.Keys, d.Keys)
	if d.Commands != nil {
		o.Commands = *d.Commands
	}
	if d.Error != nil {
		o.Error = *d.Error
	}
	return o
}

// writeGolden stores the runs, compressed, with the corpus's fingerprint.
func writeGolden(t testing.TB, runs []*readerRun, fingerprint string) {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	enc := json.NewEncoder(zw)
	enc.SetEscapeHTML(false)
	head := goldenHead{Corpus: fingerprint, Files: len(runs[0].files)}
	for _, r := range runs {
		head.Readers = append(head.Readers, *r)
	}
	if err := enc.Encode(head); err != nil {
		t.Fatal(err)
	}
	for i, base := range runs[0].files {
		line := []any{base}
		for _, r := range runs[1:] {
			line = append(line, delta(base, r.files[i]))
		}
		if err := enc.Encode(line); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(goldenDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(goldenFile, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readGolden loads the golden outputs, by version, and checks that they
// were made from this corpus.
func readGolden(t testing.TB, fingerprint string, n int) map[string]*readerRun {
	t.Helper()
	f, err := os.Open(goldenFile)
	if err != nil {
		t.Fatalf("golden outputs of Ruby dotenv: %v (testdata/regen-golden.sh makes them)", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(zr)
	var head goldenHead
	if err := dec.Decode(&head); err != nil {
		t.Fatalf("%s: %v", goldenFile, err)
	}
	if head.Corpus != fingerprint || head.Files != n {
		t.Fatalf("%s was made from another corpus (%d files, fingerprint %.12s; this corpus: %d files, %.12s): run testdata/regen-golden.sh",
			goldenFile, head.Files, head.Corpus, n, fingerprint)
	}
	runs := map[string]*readerRun{}
	for i := range head.Readers {
		runs[head.Readers[i].Version] = &head.Readers[i]
	}
	for i := 0; i < n; i++ {
		var line []json.RawMessage
		if err := dec.Decode(&line); err != nil || len(line) != len(head.Readers) {
			t.Fatalf("%s: file %d: %v", goldenFile, i, err)
		}
		var base readerOutput
		if err := json.Unmarshal(line[0], &base); err != nil {
			t.Fatalf("%s: file %d: %v", goldenFile, i, err)
		}
		head.Readers[0].files = append(head.Readers[0].files, base)
		for j := 1; j < len(line); j++ {
			var d goldenDelta
			if err := json.Unmarshal(line[j], &d); err != nil {
				t.Fatalf("%s: file %d: %v", goldenFile, i, err)
			}
			head.Readers[j].files = append(head.Readers[j].files, d.apply(base))
		}
	}
	return runs
}
