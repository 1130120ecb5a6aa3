//go:build !testcontainers

package testenv

// Containers reports whether this build starts the servers in containers
// (go test -tags testcontainers) instead of from the local binaries.
const Containers = false

func newProvider(s *Stack) (provider, error) { return local{s}, nil }
