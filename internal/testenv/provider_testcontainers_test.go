//go:build testcontainers

package testenv_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops/internal/testenv"
)

// With the tag and no Docker engine, NewStack (and so every test through
// Shared) fails at once with a message that says what to do.
func TestContainersWithoutDockerFailClearly(t *testing.T) {
	if !testenv.Containers {
		t.Fatal("the testcontainers build must report Containers = true")
	}
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "no-docker.sock"))
	t.Setenv("TESTCONTAINERS_DOCKER_SOCKET_OVERRIDE", "")
	start := time.Now()
	s, err := testenv.NewStack(t.TempDir())
	if err == nil {
		s.Close(false)
		t.Fatal("NewStack succeeded with DOCKER_HOST pointing at no engine")
	}
	for _, want := range []string{"-tags testcontainers", "no Docker engine answers", "without -tags testcontainers"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("took %v to notice there is no engine", d)
	}
	t.Log(err)
}
