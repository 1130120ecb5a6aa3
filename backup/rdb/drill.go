package rdb

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/internal/tool"
)

// Drill is the Redis restore drill: restore an RDB backup to a
// scratch file, check it with redis-check-rdb (structure and checksum),
// compare its key count with the source's (INFO keyspace, every
// database), remove the file (also when the drill fails).
type Drill struct {
	// Source is the server the backup came from: its key count is the
	// reference.
	Source Source
	// Dir is where the scratch RDB file goes; "" = os.TempDir(). It needs
	// room for the whole RDB.
	Dir string
	// Tolerance is the allowed relative difference of the key count
	// (0.02 = 2%): keys come and go after the snapshot. 0 = exact.
	Tolerance float64
	// Keep leaves the scratch file in place (backup.VerifyReport.Scratch).
	Keep     bool
	CheckRDB string // redis-check-rdb path; "" = from PATH
}

var (
	keyspaceRE = regexp.MustCompile(`(?m)^db\d+:keys=(\d+),`)
	keysReadRE = regexp.MustCompile(`(?m)^\[info\] (\d+) keys read$`)
)

// Run restores the RDB backup described by m, checks it and compares key
// counts. It returns backup.ErrVerify (wrapped) on a count mismatch; its
// errors read "verify <object>: ...".
func (v *Drill) Run(ctx context.Context, store backup.Store, m backup.Manifest, u backup.Unsealer) (backup.VerifyReport, error) {
	return backup.RunDrill(m, "redis", func(rep *backup.VerifyReport) error { return v.run(ctx, store, m, u, rep) })
}

func (v *Drill) run(ctx context.Context, store backup.Store, m backup.Manifest, u backup.Unsealer, rep *backup.VerifyReport) error {
	rep.Scratch = filepath.Join(cmp.Or(v.Dir, os.TempDir()), "redis_verify_"+m.ID+".rdb")
	check, err := tool.Find(v.CheckRDB, "redis-check-rdb")
	if err != nil {
		return err
	}
	// Reference count first: the drill compares with the source as it is.
	keys, err := v.sourceKeys(ctx)
	if err != nil {
		return err
	}
	if !v.Keep {
		defer os.Remove(rep.Scratch)
	}
	rep.Restore, err = backup.Restore(ctx, store, m, u, &FileTarget{Path: rep.Scratch})
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := (tool.Cmd{Bin: check, Args: []string{rep.Scratch}}).Run(ctx, nil, &out); err != nil {
		return fmt.Errorf("redis-check-rdb %s: %s (%w)", rep.Scratch, rdbError(out.String()), err)
	}
	read := keysReadRE.FindStringSubmatch(out.String())
	if read == nil {
		return fmt.Errorf("redis-check-rdb %s: no \"keys read\" line: %s", rep.Scratch, tool.LastLines(out.String(), 4))
	}
	return rep.Compare([]backup.TableCount{{Table: "keys", Source: keys}}, v.Tolerance, func(string) (int64, error) {
		return strconv.ParseInt(read[1], 10, 64)
	})
}

// sourceKeys adds up the keys of every database in the source's INFO
// keyspace.
func (v *Drill) sourceKeys(ctx context.Context) (int64, error) {
	s := &v.Source
	info, err := s.cli("INFO", "keyspace")
	if err != nil {
		return 0, err
	}
	var out bytes.Buffer
	if err := info.Run(ctx, nil, &out); err != nil {
		return 0, fmt.Errorf("count keys of %s: %w", s.Name(), err)
	}
	if !strings.Contains(out.String(), "# Keyspace") {
		// redis-cli exits 0 after an error reply such as NOAUTH
		return 0, fmt.Errorf("count keys of %s: %s", s.Name(), tool.LastLines(out.String(), 1))
	}
	var n int64
	for _, m := range keyspaceRE.FindAllStringSubmatch(out.String(), -1) {
		k, _ := strconv.ParseInt(m[1], 10, 64) // \d+
		n += k
	}
	return n, nil
}

// rdbError is the line after redis-check-rdb's "RDB ERROR DETECTED", or
// its last line.
func rdbError(out string) string {
	if _, after, ok := strings.Cut(out, "--- RDB ERROR DETECTED ---\n"); ok {
		line, _, _ := strings.Cut(after, "\n")
		return line
	}
	return tool.LastLines(out, 1)
}
