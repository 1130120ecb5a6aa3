package testenv_test

import (
	"context"
	"fmt"
	"time"

	"github.com/fediops/fediops/internal/testenv"
)

// A stack outside tests, as the demo uses it: a TLS-only Redis, then
// everything stopped and removed.
func ExampleNewStack() {
	s, err := testenv.NewStack("")
	if err != nil {
		panic(err)
	}
	defer s.Close(false)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := s.Redis(ctx)
	if err != nil {
		panic(err)
	}
	c := r.Client() // verifies the server against the stack's Redis CA
	defer c.Close()
	fmt.Println(c.Ping(ctx).Val(), r.User)
	// Output: PONG default
}
