package mirror

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/fediops/fediops/backup"
)

// DefaultState is where Mirror keeps its state in the B2 bucket. Names
// under its folder (".fediops-mirror/") are never mirrored nor deleted.
const DefaultState = stateFolder + "state.json.zst"

// state is what the mirror knows about the target: for every source
// key, the size, ETag and last-modified time of the copy it made and the B2
// file id of that copy (the one version kept). Clean is true only when the
// last run finished with nothing left undone; any other state (a
// checkpoint, an interrupted or failed run) makes the next run list B2 in
// full to find versions it does not know about.
type state struct {
	Version int               `json:"version"`
	Source  string            `json:"source"`
	Target  string            `json:"target"`
	Updated time.Time         `json:"updated"`
	Clean   bool              `json:"clean"`
	Objects map[string]*entry `json:"objects"`
}

type entry struct {
	Size     int64  `json:"s"`
	ETag     string `json:"e,omitempty"`
	Modified int64  `json:"m,omitempty"` // unix milliseconds
	ID       string `json:"id"`          // B2 file id of the copy

	seen    bool // listed in the source this run
	pending bool // a copy is under way: not a deletion candidate
}

// changed reports whether the source object differs from the copy: size,
// then ETag when both sides have one, else the modification time.
func (e *entry) changed(size int64, etag string, modified time.Time) bool {
	if e.Size != size {
		return true
	}
	if e.ETag != "" && etag != "" {
		return e.ETag != etag
	}
	return e.Modified != modified.UnixMilli()
}

const stateLimit = 1 << 30 // compressed bytes read at most

func encodeState(st *state) ([]byte, error) {
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

func decodeState(name string, data []byte) (*state, error) {
	zr, err := zstd.NewReader(bytes.NewReader(data), zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("read state %s: %w", name, err)
	}
	defer zr.Close()
	st := &state{}
	if err := json.NewDecoder(zr).Decode(st); err != nil {
		return nil, fmt.Errorf("read state %s: not zstd-compressed JSON: %w", name, err)
	}
	if st.Version != 1 {
		return nil, fmt.Errorf("read state %s: version %d, want 1", name, st.Version)
	}
	if st.Objects == nil {
		st.Objects = map[string]*entry{}
	}
	return st, nil
}

// loadState reads the state file; a missing one is a first run (nil, "", nil).
func (m *mirrorRun) loadState(ctx context.Context) (*state, string, error) {
	r, err := m.b2.Download(ctx, m.cfg.StateName)
	if errors.Is(err, backup.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("read state %s: %w", m.cfg.StateName, err)
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, stateLimit))
	if err != nil {
		return nil, "", fmt.Errorf("read state %s: %w", m.cfg.StateName, err)
	}
	st, err := decodeState(m.cfg.StateName, data)
	return st, r.File.ID, err
}

// saveState uploads the state as a new version, then deletes the version
// it replaces: B2 uploads are all or nothing, so the state file is always a
// whole one. Callers hold no lock; it snapshots under m.mu.
func (m *mirrorRun) saveState(ctx context.Context, clean bool) error {
	m.mu.Lock()
	m.state.Clean = clean
	m.state.Updated = time.Now().UTC()
	data, err := encodeState(m.state)
	m.mu.Unlock()
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	m.saveMu.Lock()
	defer m.saveMu.Unlock()
	f, err := m.b2.Put(ctx, m.cfg.StateName, bytes.NewReader(data), nil)
	if err != nil {
		return fmt.Errorf("save state %s: %w", m.cfg.StateName, err)
	}
	id := f.ID
	old := m.stateIDs
	m.stateIDs = []string{id}
	for _, o := range old {
		if o == id {
			continue
		}
		if err := m.b2.DeleteVersion(ctx, m.cfg.StateName, o); err != nil {
			m.stateIDs = append(m.stateIDs, o) // try again next save
			m.log.WarnContext(ctx, "delete an old version of the mirror's state", "err", err)
		}
	}
	m.saves++
	return nil
}
