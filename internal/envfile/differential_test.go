package envfile

import (
	"errors"
	"fmt"
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestDifferential reads the generated corpus (corpus_test.go) with envfile
// and with the real readers, and fails on every key where envfile differs
// from the Ruby dotenv release it was asked to follow or from node dotenv,
// on every file that one refuses and the other reads, on commands run in
// another order, and on every key that Ruby and node read differently
// without a Lint finding. Ruby dotenv 2.4.0 (Debian's ruby-dotenv) and
// node dotenv 16.5 run live; 3.2.0, 3.1.7 and 2.8.1 answer through the
// outputs the gems gave for this corpus (testdata/golden). Run with -v for
// the counts.
func TestDifferential(t *testing.T) {
	files := genCorpus(corpusSeed, corpusFiles)
	fingerprint := corpusFingerprint(files)
	manifest := writeCorpus(t, t.TempDir(), files)

	node := runNode(t, manifest)
	debian := runDebianRuby(t, manifest)
	if debian.Version != "2.4.0" {
		t.Fatalf("Debian's ruby-dotenv is %s; this test knows the rules of 2.4.0 (Debian 12): compare it with a golden release and add its rules", debian.Version)
	}
	if *goldenGems != "" {
		libs, err := filepath.Glob(filepath.Join(*goldenGems, "*", "lib"))
		if err != nil || len(libs) == 0 {
			t.Fatalf("-golden-gems %s: no */lib directories", *goldenGems)
		}
		var runs []*readerRun
		for _, lib := range libs {
			runs = append(runs, runRuby(t, manifest, lib))
		}
		slices.SortFunc(runs, func(a, b *readerRun) int { return strings.Compare(b.Version, a.Version) })
		writeGolden(t, runs, fingerprint)
		t.Logf("wrote %s", goldenFile)
	}
	golden := readGolden(t, fingerprint, len(files))
	for _, v := range []string{"3.2.0", "3.1.7", "2.8.1"} {
		if golden[v] == nil {
			t.Fatalf("%s holds no outputs of Ruby dotenv %s: run testdata/regen-golden.sh", goldenFile, v)
		}
	}
	releases := []struct {
		dotenv Dotenv
		run    *readerRun
	}{
		{Dotenv32, golden["3.2.0"]},
		{Dotenv31, golden["3.1.7"]},
		{Dotenv28, golden["2.8.1"]},
		{Dotenv24, debian},
	}
	if len(node.files) != len(files) || len(debian.files) != len(files) {
		t.Fatalf("the readers answered for %d (node) and %d (ruby) of %d files", len(node.files), len(debian.files), len(files))
	}

	t.Logf("corpus: %d files (seed %d, fingerprint %.12s); readers: node dotenv %s (node %s), Ruby dotenv %s (Debian, ruby %s), golden 3.2.0, 3.1.7, 2.8.1",
		len(files), corpusSeed, fingerprint, node.Version, node.Node, debian.Version, debian.Ruby)
	for _, rel := range releases {
		st := newDiffStats()
		for i, cf := range files {
			compareFile(t, cf, rel.dotenv, rel.run.files[i], node.files[i], st)
		}
		st.log(t, rel.dotenv)
	}
	compareNode(t, files, node)
	compareReleases(t, files, releases[0].run, releases[2].run)
}

// diffStats counts one release's comparison.
type diffStats struct {
	read                  map[string]bool
	files, refused, ruby  int
	keys, rubyNode        int
	rubyNodeBy, envfileBy map[string]int
	commands              int
	refusedBy             map[string]int
	findingsByLint        int
}

func newDiffStats() *diffStats {
	return &diffStats{read: map[string]bool{}, rubyNodeBy: map[string]int{}, envfileBy: map[string]int{},
		refusedBy: map[string]int{}}
}

func (st *diffStats) log(t *testing.T, d Dotenv) {
	t.Logf("%s: %d files, Ruby refuses %d, envfile refuses %d %v; %d keys, %d read differently by node %v; envfile differs on %d %v; %d commands run; %d Lint findings",
		d, st.files, st.ruby, st.refused, sortedCounts(st.refusedBy), st.keys, st.rubyNode, sortedCounts(st.rubyNodeBy),
		sum(st.envfileBy), sortedCounts(st.envfileBy), st.commands, st.findingsByLint)
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func sortedCounts(m map[string]int) string {
	keys := slices.Sorted(maps.Keys(m))
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%d", k, m[k])
	}
	return "[" + strings.TrimSpace(b.String()) + "]"
}

// compareFile reads one file as release d, with and without running its
// commands, and compares it with Ruby's and node's outputs.
func compareFile(t *testing.T, cf *corpusFile, d Dotenv, ruby, node readerOutput, st *diffStats) {
	t.Helper()
	st.files++
	env := readerEnv(cf.env)
	var ran []string
	f, err := Parse(cf.name, cf.data, envOf(env), WithDotenv(d), WithCommands(shell(env, &ran)))
	plain, plainErr := Parse(cf.name, cf.data, envOf(env), WithDotenv(d))
	if ruby.Error != "" {
		st.ruby++
	}
	if (err == nil) != (plainErr == nil) {
		t.Errorf("%s (%s): with commands: %v; without: %v", cf.name, d, err, plainErr)
		return
	}
	if err != nil {
		st.refused++
		var pe *ParseError
		class := "?"
		if errors.As(err, &pe) {
			class = cf.classOf(pe.Line)
		}
		st.refusedBy[class]++
		if ruby.Error == "" {
			t.Errorf("%s (%s): envfile refuses a file Ruby reads: %v", cf.name, d, err)
		}
		return
	}
	if ruby.Error != "" {
		t.Errorf("%s (%s): envfile reads a file Ruby refuses (%s)", cf.name, d, ruby.Error)
		return
	}
	st.read[cf.name] = true

	// Ruby's values: what the gem's hash holds, which for dotenv 3 is the
	// environment's value for every key the environment sets.
	keys := map[string]bool{}
	for k := range ruby.Keys {
		keys[k] = true
	}
	for k := range f.Map() {
		keys[k] = true
	}
	for k := range keys {
		_, inEnv := env[k]
		if d.v3() && inEnv {
			continue
		}
		st.keys++
		want, wok := ruby.Keys[k]
		got, gok := f.Get(k)
		if got != want || gok != wok {
			st.envfileBy[cf.classOfKey(k)]++
			t.Errorf("%s (%s): %s: Ruby reads %s, envfile %s", cf.name, d, k, show(want, wok), show(got, gok))
		}
	}

	// Commands: the same ones, in the same order (each distinct one once).
	var rubyRan []string
	for _, c := range ruby.Commands {
		if !slices.Contains(rubyRan, c) {
			rubyRan = append(rubyRan, c)
		}
	}
	st.commands += len(ruby.Commands)
	if !slices.Equal(ran, rubyRan) {
		t.Errorf("%s (%s): Ruby runs %q, envfile %q", cf.name, d, rubyRan, ran)
	}
	// Without commands, only values built from a command may differ, and
	// those list it.
	byLine := map[int]Entry{}
	for _, e := range f.Entries() {
		byLine[e.Line] = e
	}
	for _, e := range plain.Entries() {
		r := byLine[e.Line]
		if (len(e.Commands) > 0) != (len(r.Commands) > 0) {
			t.Errorf("%s (%s): %s: commands %q without running them, %q when running them", cf.name, d, e.Key, e.Commands, r.Commands)
		}
		if len(e.Commands) == 0 && e.Value != r.Value {
			t.Errorf("%s (%s): %s: value %q without commands, %q with them, but it lists none", cf.name, d, e.Key, e.Value, r.Value)
		}
		if strings.ContainsAny(e.Value, "\uFDD0\uFDD1") && !strings.ContainsAny(string(cf.data), "\uFDD0\uFDD1") {
			t.Errorf("%s (%s): %s: a placeholder is left in %q", cf.name, d, e.Key, e.Value)
		}
	}

	// Lint, on the file as users read it (no command run): a finding for
	// every key that Ruby and node read differently.
	findings := Lint(plain)
	st.findingsByLint += len(findings)
	linted := map[string]bool{}
	for _, fd := range findings {
		linted[fd.Key] = true
	}
	for k := range keysOf(ruby.Keys, node.Keys) {
		if _, inEnv := env[k]; inEnv {
			continue // both readers keep the environment's value
		}
		rv, rok := ruby.Keys[k]
		nv, nok := node.Keys[k]
		if rv == nv && rok == nok {
			continue
		}
		st.rubyNode++
		st.rubyNodeBy[cf.classOfKey(k)]++
		if !linted[k] {
			t.Errorf("%s (%s): %s: Ruby reads %s, node %s, and Lint says nothing", cf.name, d, k, show(rv, rok), show(nv, nok))
		}
	}
}

// compareNode checks node dotenv's reading of every file, as envfile
// records it (also in files that Ruby refuses), except those with invalid
// UTF-8, which node reads with U+FFFD in place of the bad bytes.
func compareNode(t *testing.T, files []*corpusFile, node *readerRun) {
	keys, skipped := 0, 0
	for i, cf := range files {
		s := newScanner(cf.name, cf.data)
		if s.checkText() != nil {
			skipped++
			continue
		}
		_, got := s.node()
		for k := range keysOf(node.files[i].Keys, got) {
			keys++
			want, wok := node.files[i].Keys[k]
			n, gok := got[k]
			if n.value != want || gok != wok {
				t.Errorf("%s: %s: node reads %s, envfile says %s", cf.name, k, show(want, wok), show(n.value, gok))
			}
		}
	}
	t.Logf("node dotenv: %d keys in %d files compared (%d files with invalid UTF-8 not compared)", keys, len(files)-skipped, skipped)
}

func keysOf[A, B any](a map[string]A, b map[string]B) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

func show(v string, ok bool) string {
	if !ok {
		return "nothing"
	}
	return fmt.Sprintf("%q", v)
}

// shell runs a command as Ruby's backticks do, through /bin/sh with the
// file's environment, and records it.
func shell(env map[string]string, ran *[]string) func(string) (string, error) {
	var list []string
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	return func(cmd string) (string, error) {
		*ran = append(*ran, cmd)
		c := exec.Command("/bin/sh", "-c", cmd)
		c.Env = list
		c.Stderr = nil
		out, err := c.Output()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			err = nil // Ruby's backticks ignore the exit status
		}
		return string(out), err
	}
}

// compareReleases logs where the real Ruby dotenv 3.2.0 and 2.8.1 differ
// on this corpus, by class, and checks that envfile's table of differences
// is borne out: each class it names differs on some key.
func compareReleases(t *testing.T, files []*corpusFile, v32, v28 *readerRun) {
	by := map[string]int{}
	keys, refusedOnlyOne := 0, 0
	for i, cf := range files {
		a, b := v32.files[i], v28.files[i]
		if (a.Error == "") != (b.Error == "") {
			refusedOnlyOne++
			by["refused by one: "+refusalClass(cf, a, b)]++
			continue
		}
		if a.Error != "" {
			continue
		}
		for k := range keysOf(a.Keys, b.Keys) {
			if _, inEnv := cf.env[k]; inEnv {
				continue
			}
			keys++
			av, aok := a.Keys[k]
			bv, bok := b.Keys[k]
			if av != bv || aok != bok {
				by[cf.classOfKey(k)]++
			}
		}
	}
	t.Logf("Ruby dotenv 3.2.0 and 2.8.1: %d files refused by only one; %d keys compared, %d differ: %s", refusedOnlyOne, keys, sum(by), sortedCounts(by))
	for _, class := range []string{"bare-key", "dq-newline-escape", "export-empty", "command-after-var"} {
		if by[class] == 0 {
			t.Errorf("the corpus shows no difference between 3.2.0 and 2.8.1 in %s, which the package doc names", class)
		}
	}
}

func refusalClass(cf *corpusFile, outs ...readerOutput) string {
	for _, o := range outs {
		if strings.Contains(o.Error, "unset variable") {
			return "export-check"
		}
	}
	return "other"
}
