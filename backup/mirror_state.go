package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/klauspost/compress/zstd"
)

// DefaultMirrorState is where Mirror keeps its state in the B2 bucket. Names
// under its folder (".fediops-mirror/") are never mirrored nor deleted.
const DefaultMirrorState = ".fediops-mirror/state.json.zst"

// mirrorState is what the mirror knows about the target: for every source
// key, the size, ETag and last-modified time of the copy it made and the B2
// file id of that copy (the one version kept). Clean is true only when the
// last run finished with nothing left undone; any other state (a
// checkpoint, an interrupted or failed run) makes the next run list B2 in
// full to find versions it does not know about.
type mirrorState struct {
	Version int                     `json:"version"`
	Source  string                  `json:"source"`
	Target  string                  `json:"target"`
	Updated time.Time               `json:"updated"`
	Clean   bool                    `json:"clean"`
	Objects map[string]*mirrorEntry `json:"objects"`
}

type mirrorEntry struct {
	Size     int64  `json:"s"`
	ETag     string `json:"e,omitempty"`
	Modified int64  `json:"m,omitempty"` // unix milliseconds
	ID       string `json:"id"`          // B2 file id of the copy

	seen    bool // listed in the source this run
	pending bool // a copy is under way: not a deletion candidate
}

// changed reports whether the source object differs from the copy: size,
// then ETag when both sides have one, else the modification time.
func (e *mirrorEntry) changed(size int64, etag string, modified time.Time) bool {
	if e.Size != size {
		return true
	}
	if e.ETag != "" && etag != "" {
		return e.ETag != etag
	}
	return e.Modified != modified.UnixMilli()
}

const mirrorStateLimit = 1 << 30 // compressed bytes read at most

func encodeMirrorState(st *mirrorState) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	if err := json.NewEncoder(zw).Encode(st); err != nil {
		zw.Close()
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func decodeMirrorState(name string, data []byte) (*mirrorState, error) {
	zr, err := zstd.NewReader(bytes.NewReader(data), zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("backup: mirror: state %s: %w", name, err)
	}
	defer zr.Close()
	st := &mirrorState{}
	if err := json.NewDecoder(zr).Decode(st); err != nil {
		return nil, fmt.Errorf("backup: mirror: state %s: not zstd-compressed JSON: %w", name, err)
	}
	if st.Version != 1 {
		return nil, fmt.Errorf("backup: mirror: state %s: version %d, want 1", name, st.Version)
	}
	if st.Objects == nil {
		st.Objects = map[string]*mirrorEntry{}
	}
	return st, nil
}

// loadState reads the state file; a missing one is a first run (nil, "", nil).
func (m *mirrorRun) loadState(ctx context.Context) (*mirrorState, string, error) {
	data, id, err := m.t.download(ctx, m.cfg.StateName, mirrorStateLimit)
	if errors.Is(err, ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	st, err := decodeMirrorState(m.cfg.StateName, data)
	return st, id, err
}

// saveState uploads the state as a new version, then deletes the version
// it replaces: B2 uploads are all or nothing, so the state file is always a
// whole one. Callers hold no lock; it snapshots under m.mu.
func (m *mirrorRun) saveState(ctx context.Context, clean bool) error {
	m.mu.Lock()
	m.state.Clean = clean
	m.state.Updated = time.Now().UTC()
	data, err := encodeMirrorState(m.state)
	m.mu.Unlock()
	if err != nil {
		return fmt.Errorf("backup: mirror: encode state: %w", err)
	}
	m.saveMu.Lock()
	defer m.saveMu.Unlock()
	id, err := m.t.putSmall(ctx, m.cfg.StateName, data)
	if err != nil {
		return fmt.Errorf("backup: mirror: save state: %w", err)
	}
	old := m.stateIDs
	m.stateIDs = []string{id}
	for _, o := range old {
		if o == id {
			continue
		}
		if err := m.t.deleteVersion(ctx, m.cfg.StateName, o); err != nil {
			m.stateIDs = append(m.stateIDs, o) // try again next save
			m.log.WarnContext(ctx, "mirror: delete old state version", "err", err)
		}
	}
	m.saves++
	return nil
}
