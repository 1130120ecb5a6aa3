package backup

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"runtime/debug"
	"sort"
	"strings"
	"time"
)

// ManifestFormat is the version of the manifest JSON this package writes.
const ManifestFormat = 1

// StampLayout names backups: UTC start time to the second.
const StampLayout = "20060102T150405Z"

// Manifest describes one complete backup. It is stored after the data
// object, so a backup exists exactly when its manifest does.
type Manifest struct {
	Format      int               `json:"format"`
	Source      string            `json:"source"` // Source.Name()
	Kind        string            `json:"kind"`   // Source.Kind(): postgres, redis, mysql
	ID          string            `json:"id"`     // start stamp, StampLayout
	Object      string            `json:"object"` // data object name
	Host        string            `json:"host,omitempty"`
	Started     time.Time         `json:"started"`
	Finished    time.Time         `json:"finished"`
	DumpBytes   int64             `json:"dump_bytes"`       // what the dump tool wrote
	ZstdBytes   int64             `json:"compressed_bytes"` // after compression, when the Sealer reports it
	StoredBytes int64             `json:"stored_bytes"`     // after age: the object's size
	SHA256      string            `json:"sha256"`           // hex, of the stored object
	Compression string            `json:"compression"`      // Sealing.Compression: "zstd"
	Encryption  string            `json:"encryption"`       // Sealing.Encryption: "age"
	Recipients  []string          `json:"recipients"`       // Sealing.Recipients: age public keys
	Tools       map[string]string `json:"tools"`            // tool and library versions
}

// Entry is one backup as seen from object names alone (no download).
type Entry struct {
	Source         string
	ID             string
	Time           time.Time // parsed from ID
	DataObject     string
	ManifestObject string
	Size           int64 // of the data object
}

// Catalog is what a store holds under a prefix.
type Catalog struct {
	Backups []Entry      // complete: data and manifest, oldest first per source
	Orphans []ObjectInfo // data without manifest or manifest without data
}

// Sources lists the source names in the catalog, sorted.
func (c Catalog) Sources() []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range c.Backups {
		if !seen[e.Source] {
			seen[e.Source] = true
			out = append(out, e.Source)
		}
	}
	sort.Strings(out)
	return out
}

// Latest returns the newest complete backup of source.
func (c Catalog) Latest(source string) (Entry, bool) {
	var best Entry
	ok := false
	for _, e := range c.Backups {
		if e.Source == source && (!ok || e.Time.After(best.Time)) {
			best, ok = e, true
		}
	}
	return best, ok
}

// Find returns the backup of source with the given ID ("" or "latest" means
// the newest).
func (c Catalog) Find(source, id string) (Entry, error) {
	if id == "" || id == "latest" {
		if e, ok := c.Latest(source); ok {
			return e, nil
		}
		return Entry{}, fmt.Errorf("no complete backup of %s: %w", source, ErrNotExist)
	}
	for _, e := range c.Backups {
		if e.Source == source && e.ID == id {
			return e, nil
		}
	}
	return Entry{}, fmt.Errorf("no complete backup %s of %s: %w", id, source, ErrNotExist)
}

const manifestSuffix = ".manifest.json"

// Scan lists prefix and pairs data objects with manifests by name:
// <prefix><source>/<ID>.manifest.json and <prefix><source>/<ID>.<ext>.
func Scan(ctx context.Context, store Store, prefix string) (Catalog, error) {
	type pair struct {
		data, manifest *ObjectInfo
	}
	pairs := map[string]*pair{}
	var keys []string
	for o, err := range store.List(ctx, prefix) {
		if err != nil {
			return Catalog{}, fmt.Errorf("list %q: %w", prefix, err)
		}
		rel := strings.TrimPrefix(o.Name, prefix)
		dir, base := path.Split(rel)
		id, _, _ := strings.Cut(base, ".")
		if dir == "" || len(id) != len(StampLayout) {
			continue // not ours
		}
		if _, err := time.Parse(StampLayout, id); err != nil {
			continue
		}
		key := dir + id
		p := pairs[key]
		if p == nil {
			p = &pair{}
			pairs[key] = p
			keys = append(keys, key)
		}
		o := o
		if strings.HasSuffix(base, manifestSuffix) {
			p.manifest = &o
		} else {
			p.data = &o
		}
	}
	sort.Strings(keys)
	var c Catalog
	for _, k := range keys {
		p := pairs[k]
		dir, id := path.Split(k)
		if p.data == nil || p.manifest == nil {
			for _, o := range []*ObjectInfo{p.data, p.manifest} {
				if o != nil {
					c.Orphans = append(c.Orphans, *o)
				}
			}
			continue
		}
		t, _ := time.Parse(StampLayout, id)
		c.Backups = append(c.Backups, Entry{Source: strings.TrimSuffix(dir, "/"), ID: id, Time: t,
			DataObject: p.data.Name, ManifestObject: p.manifest.Name, Size: p.data.Size})
	}
	return c, nil
}

// ReadManifest downloads and decodes an entry's manifest.
func ReadManifest(ctx context.Context, store Store, e Entry) (Manifest, error) {
	rc, err := store.Open(ctx, e.ManifestObject)
	if err != nil {
		return Manifest{}, fmt.Errorf("read manifest %s: %w", e.ManifestObject, err)
	}
	defer rc.Close()
	var m Manifest
	dec := json.NewDecoder(io.LimitReader(rc, 1<<20))
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("read manifest %s: %w", e.ManifestObject, err)
	}
	if m.Format != ManifestFormat || m.Object != e.DataObject || m.SHA256 == "" {
		return Manifest{}, fmt.Errorf("read manifest %s: format %d, object %q: not a manifest for %s",
			e.ManifestObject, m.Format, m.Object, e.DataObject)
	}
	return m, nil
}

// moduleVersions reports the versions of fediops and the libraries the
// pipeline uses, from the binary's build information.
func moduleVersions() map[string]string {
	out := map[string]string{}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return out
	}
	out["go"] = bi.GoVersion
	out["fediops"] = bi.Main.Version
	for _, d := range bi.Deps {
		switch d.Path {
		case "filippo.io/age", "github.com/klauspost/compress", "github.com/Backblaze/blazer":
			out[d.Path] = d.Version
		}
	}
	return out
}
