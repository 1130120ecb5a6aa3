//go:build ignore

// gen copies the part of DigitalOcean's OpenAPI specification that the fake
// serves (the paths below and every file they $ref) from a checkout of
// github.com/digitalocean/openapi:
//
//	go run gen.go -from ~/src/openapi/specification
//
// It writes openapi.yaml (the paths, DO's bearer_auth scheme) and the
// referenced files beside it, keeping their relative layout, and the
// specification's LICENSE. Run it again to follow a newer specification.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// paths are the API paths the fake serves: what pgpool, spaces and the
// droplets package call.
var paths = []string{
	"/v2/actions/{action_id}",
	"/v2/cdn/endpoints",
	"/v2/cdn/endpoints/{cdn_id}",
	"/v2/cdn/endpoints/{cdn_id}/cache",
	"/v2/databases/{database_cluster_uuid}",
	"/v2/databases/{database_cluster_uuid}/ca",
	"/v2/databases/{database_cluster_uuid}/pools",
	"/v2/databases/{database_cluster_uuid}/pools/{pool_name}",
	"/v2/droplets",
	"/v2/droplets/{droplet_id}",
	"/v2/droplets/{droplet_id}/actions",
	"/v2/load_balancers/{lb_id}",
	"/v2/load_balancers/{lb_id}/droplets",
	"/v2/snapshots",
	"/v2/snapshots/{snapshot_id}",
	"/v2/tags",
	"/v2/tags/{tag_id}",
	"/v2/tags/{tag_id}/resources",
}

var refRE = regexp.MustCompile(`\$ref:\s*['"]?([^'"#\s]+\.ya?ml)`)

// codeSample matches the x-codeSamples files (curl, Go, Python, Ruby
// snippets for the docs), which no validation reads.
var codeSample = regexp.MustCompile(`/examples/(curl|go|python|ruby)/`)

// opRefRE matches an operation given by reference in the root's paths
// ("    get:" then "      $ref: ..."), which DO's bundler resolves and
// OpenAPI 3.0 loaders do not: inline turns it into the operation itself.
var opRefRE = regexp.MustCompile(`(?m)^(    [a-z]+:)\n      \$ref: ['"]?([^'"\s]+)['"]?\n`)

// inline replaces each operation reference of a path block by the
// operation file, its own references rewritten relative to the root and
// its x-codeSamples (documentation snippets) left out.
func inline(from, block string) string {
	return opRefRE.ReplaceAllStringFunc(block, func(m string) string {
		sub := opRefRE.FindStringSubmatch(m)
		b, err := os.ReadFile(filepath.Join(from, sub[2]))
		if err != nil {
			log.Fatal(err)
		}
		dir := filepath.Dir(sub[2])
		var op strings.Builder
		skip := false
		for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
			if line != "" && !strings.HasPrefix(line, " ") {
				skip = strings.HasPrefix(line, "x-codeSamples:")
			}
			if skip {
				continue
			}
			line = refValueRE.ReplaceAllStringFunc(line, func(r string) string {
				v := refValueRE.FindStringSubmatch(r)
				return "$ref: '" + filepath.ToSlash(filepath.Join(dir, v[1])) + v[2] + "'"
			})
			line = mappingRE.ReplaceAllStringFunc(line, func(r string) string {
				v := mappingRE.FindStringSubmatch(r)
				return v[1] + "'" + filepath.ToSlash(filepath.Join(dir, v[2])) + v[3] + "'"
			})
			if line == "" {
				op.WriteString("\n")
			} else {
				op.WriteString("      " + line + "\n")
			}
		}
		return sub[1] + "\n" + op.String()
	})
}

// propsRefRE matches "properties:" given by a reference to a map of
// properties, which DO's bundler merges in and OpenAPI 3.0 loaders refuse.
var propsRefRE = regexp.MustCompile(`(?m)^( *)properties:\n *\$ref: ['"]?([^'"#\s]+)#/([^'"\s]+)['"]?(?:\n|$)`)

// inlineProperties replaces each such reference in the file at rel (under
// from) by the referenced map, its references rewritten relative to rel.
func inlineProperties(from, rel, text string) string {
	return propsRefRE.ReplaceAllStringFunc(text, func(m string) string {
		sub := propsRefRE.FindStringSubmatch(m)
		target := filepath.Join(filepath.Dir(rel), sub[2])
		b, err := os.ReadFile(filepath.Join(from, target))
		if err != nil {
			log.Fatal(err)
		}
		var frag strings.Builder
		in := false
		for _, line := range strings.Split(string(b), "\n") {
			if line != "" && !strings.HasPrefix(line, " ") {
				in = line == sub[3]+":"
				continue
			}
			if !in || strings.TrimSpace(line) == "" {
				continue
			}
			line = refValueRE.ReplaceAllStringFunc(line, func(r string) string {
				v := refValueRE.FindStringSubmatch(r)
				to, err := filepath.Rel(filepath.Dir(rel), filepath.Join(filepath.Dir(target), v[1]))
				if err != nil {
					log.Fatal(err)
				}
				return "$ref: '" + filepath.ToSlash(to) + v[2] + "'"
			})
			frag.WriteString(sub[1] + line + "\n") // the fragment's lines are indented by 2 already
		}
		if frag.Len() == 0 {
			log.Fatalf("%s: %s#/%s is empty", rel, sub[2], sub[3])
		}
		return sub[1] + "properties:\n" + frag.String()
	})
}

// mappingRE matches a discriminator's mapping to another file.
var mappingRE = regexp.MustCompile(`^( +[a-z0-9_]+: )['"]([^'"#\s]+\.ya?ml)(#[^'"\s]*)?['"]`)

// refValueRE matches a relative reference to another file.
var refValueRE = regexp.MustCompile(`\$ref:\s*['"]?([^'"#\s]+\.ya?ml)(#[^'"\s]*)?['"]?`)

func main() {
	from := flag.String("from", "", "the specification/ directory of a checkout of github.com/digitalocean/openapi")
	flag.Parse()
	if *from == "" {
		log.Fatal("-from is required")
	}
	root, err := os.ReadFile(filepath.Join(*from, "DigitalOcean-public.v2.yaml"))
	if err != nil {
		log.Fatal(err)
	}
	blocks := map[string]string{}
	var cur string
	sc := bufio.NewScanner(strings.NewReader(string(root)))
	inPaths := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "paths:":
			inPaths = true
			continue
		case inPaths && line != "" && !strings.HasPrefix(line, " "):
			inPaths = false
		}
		if !inPaths {
			continue
		}
		if strings.HasPrefix(line, "  /") {
			cur = strings.TrimSuffix(strings.TrimSpace(line), ":")
		}
		if slices.Contains(paths, cur) {
			blocks[cur] += line + "\n"
		}
	}
	var out strings.Builder
	out.WriteString("# The part of DigitalOcean's public API specification (github.com/digitalocean/openapi,\n" +
		"# Apache 2.0, see LICENSE) that internal/dofake serves; written by gen.go.\n" +
		"openapi: \"3.0.0\"\ninfo:\n  title: DigitalOcean API (the part fediops calls)\n  version: \"2.0\"\n" +
		"servers:\n  - url: /\npaths:\n")
	for _, p := range paths {
		if blocks[p] == "" {
			log.Fatalf("path %s is not in the specification", p)
		}
		out.WriteString(inline(*from, blocks[p]) + "\n")
	}
	out.WriteString("components:\n  securitySchemes:\n    bearer_auth:\n      type: http\n      scheme: bearer\nsecurity:\n  - bearer_auth: []\n")
	if err := os.WriteFile("openapi.yaml", []byte(inlineProperties(*from, "openapi.yaml", out.String())), 0o644); err != nil {
		log.Fatal(err)
	}
	// The closure of $refs, relative to each referring file.
	seen := map[string]bool{}
	var walk func(rel, text string)
	walk = func(rel, text string) {
		for _, m := range refRE.FindAllStringSubmatch(text, -1) {
			p := filepath.Clean(filepath.Join(filepath.Dir(rel), m[1]))
			if seen[p] || codeSample.MatchString(p) {
				continue
			}
			seen[p] = true
			b, err := os.ReadFile(filepath.Join(*from, p))
			if err != nil {
				log.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				log.Fatal(err)
			}
			text := inlineProperties(*from, p, string(b))
			if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
				log.Fatal(err)
			}
			walk(p, text)
		}
	}
	walk("openapi.yaml", inlineProperties(*from, "openapi.yaml", out.String()))
	lic, err := os.ReadFile(filepath.Join(*from, "..", "LICENSE"))
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile("LICENSE", lic, 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d paths, %d files\n", len(paths), len(seen)+1)
}
