package testenv

import "context"

// provider starts the stack's servers. The default build runs the local
// Debian binaries (local); the build tag testcontainers runs the same
// servers, with the same certificates and settings, in containers
// (provider_testcontainers.go).
type provider interface {
	postgres(ctx context.Context) (*Postgres, error)
	pgbouncer(ctx context.Context, pg *Postgres) (*PgBouncer, error)
	redis(ctx context.Context, name, pass string) (*Redis, error)
	mariadb(ctx context.Context) (*MariaDB, error)
}

// local starts servers from the Debian binaries on free loopback ports.
type local struct{ s *Stack }

func (l local) postgres(ctx context.Context) (*Postgres, error) { return l.s.startPostgres(ctx) }
func (l local) pgbouncer(ctx context.Context, pg *Postgres) (*PgBouncer, error) {
	return l.s.startPgBouncer(ctx, pg)
}
func (l local) redis(ctx context.Context, name, pass string) (*Redis, error) {
	return l.s.startRedis(ctx, name, pass)
}
func (l local) mariadb(ctx context.Context) (*MariaDB, error) { return l.s.startMariaDB(ctx) }
