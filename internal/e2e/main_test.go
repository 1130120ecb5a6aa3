package e2e

import (
	"fmt"
	"testing"

	"github.com/fediops/fediops/internal/dofake"
	"github.com/fediops/fediops/internal/testenv"
)

func TestMain(m *testing.M) {
	testenv.AfterAll(func() {
		fmt.Printf("e2e: %d DigitalOcean API requests checked against DO's specification\n", dofake.CheckedAll())
	})
	Main(m)
}
