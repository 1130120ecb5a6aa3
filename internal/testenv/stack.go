package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// Stack is a set of local servers that stand in for an instance's managed
// services. Servers start on first use and stop in Close.
type Stack struct {
	Dir     string // holds data, certificates and logs; removed by Close unless kept
	DBCA    *CA    // signs PostgreSQL's and pgBouncer's certificates (DO's private CA)
	RedisCA *CA    // signs Redis's certificates

	user *runUser
	prov provider // local binaries, or containers with the build tag testcontainers

	mu       sync.Mutex // guards everything below
	procs    []*proc
	pg       *Postgres
	bouncer  *PgBouncer
	redis    *Redis
	mariadb  *MariaDB
	nRedis   int
	closed   bool
	starting map[string]*startOnce
}

// NewStack makes the directory and the CAs. dir may be "" for a new
// temporary directory.
func NewStack(dir string) (*Stack, error) {
	made := dir == ""
	if made {
		d, err := os.MkdirTemp("", "fediops-testenv-")
		if err != nil {
			return nil, err
		}
		dir = d
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// The server user must be able to reach its own subdirectories.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	s := &Stack{Dir: dir}
	var err error
	if s.prov, err = newProvider(s); err != nil {
		if made {
			os.RemoveAll(dir)
		}
		return nil, err
	}
	if _, isLocal := s.prov.(local); isLocal {
		if s.user, err = serverUser(); err != nil {
			return nil, err
		}
	}
	if s.DBCA, err = newCA(dir, "db"); err != nil {
		return nil, fmt.Errorf("db CA: %w", err)
	}
	if s.RedisCA, err = newCA(dir, "redis"); err != nil {
		return nil, fmt.Errorf("redis CA: %w", err)
	}
	return s, nil
}

// subdir makes a directory for one server, owned by the server user.
func (s *Stack) subdir(name string) (string, error) {
	d := filepath.Join(s.Dir, name)
	if err := os.MkdirAll(d, 0o700); err != nil {
		return "", err
	}
	return d, s.user.chown(d)
}

func (s *Stack) track(p *proc) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		p.stop()
		return errors.New("stack closed")
	}
	s.procs = append(s.procs, p)
	return nil
}

// Close stops every server, newest first. It removes Dir unless keep is set,
// in which case the logs stay for a failed test to be read.
func (s *Stack) Close(keep bool) error {
	s.mu.Lock()
	s.closed = true
	procs := s.procs
	s.procs = nil
	s.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].stop()
	}
	if keep {
		return nil
	}
	return os.RemoveAll(s.Dir)
}

// Logs returns the log files of the servers, for a failed run to show.
func (s *Stack) Logs() []string {
	var logs []string
	_ = filepath.Walk(s.Dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && strings.HasSuffix(p, ".log") {
			logs = append(logs, p)
		}
		return nil
	})
	sort.Strings(logs)
	return logs
}

// once runs start the first time a component is asked for; later callers
// get the same result, an earlier failure included.
func once[T any](s *Stack, slot *T, name string, start func() (T, error)) (T, error) {
	s.mu.Lock()
	if s.starting == nil {
		s.starting = map[string]*startOnce{}
	}
	o := s.starting[name]
	if o == nil {
		o = &startOnce{}
		s.starting[name] = o
	}
	s.mu.Unlock()
	o.Do(func() {
		v, err := start()
		s.mu.Lock()
		*slot, o.err = v, err
		s.mu.Unlock()
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	return *slot, o.err
}

type startOnce struct {
	sync.Once
	err error
}

func password() string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
