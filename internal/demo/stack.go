package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"
	"golang.org/x/sync/errgroup"

	"github.com/fediops/fediops/backup/b2store"
	"github.com/fediops/fediops/backup/pgdump"
	"github.com/fediops/fediops/internal/b2fake"
	"github.com/fediops/fediops/internal/envfile"
	"github.com/fediops/fediops/internal/s3fake"
	"github.com/fediops/fediops/pgpool"
	"github.com/fediops/fediops/redistls"
	"github.com/fediops/fediops/spaces"
)

// up starts the servers (PostgreSQL with pgBouncer, Redis and optionally
// MariaDB in parallel), the tunnel from a stunnel-format file, the S3 and
// B2 stand-ins, the web/streaming stand-ins and an age key for the run.
func (r *run) up(ctx context.Context) (string, error) {
	st := r.cfg.Stack
	mariaDone := make(chan struct{})
	if r.cfg.MySQL {
		go func() {
			defer close(mariaDone)
			mctx, cancel := context.WithTimeout(ctx, r.cfg.MySQLTimeout)
			defer cancel()
			r.maria, r.mariaErr = st.MariaDB(mctx)
		}()
	} else {
		close(mariaDone)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { r.bouncer, err = st.PgBouncer(gctx); return err })
	g.Go(func() (err error) { r.redis, err = st.Redis(gctx); return err })
	err := g.Wait()
	<-mariaDone
	if err != nil {
		return "", err
	}

	// The tunnel, configured exactly as the seed's /etc/stunnel/redis.conf,
	// plus verification (which the seed's file lacks).
	port, err := freePort()
	if err != nil {
		return "", err
	}
	r.tunConf = filepath.Join(st.Dir, "stunnel-redis.conf")
	conf := fmt.Sprintf("; written by the fediops demo: the seed's stunnel client, with verification\n"+
		"[redis]\nclient = yes\naccept = 127.0.0.1:%d\nconnect = localhost:%d\nCAfile = %s\nverifyChain = yes\ndelay = yes\n",
		port, r.redis.Port, r.redis.CAFile)
	if err := os.WriteFile(r.tunConf, []byte(conf), 0o644); err != nil {
		return "", fmt.Errorf("write tunnel config: %w", err)
	}
	tcfg, err := redistls.ReadConfig(r.tunConf)
	if err != nil {
		return "", err
	}
	tcfg.Username, tcfg.Password, tcfg.Logger = r.redis.User, r.redis.Password, r.log
	if r.tunnel, err = redistls.New(tcfg); err != nil {
		return "", err
	}
	if err := r.tunnel.Start(); err != nil {
		return "", fmt.Errorf("start tunnel: %w", err)
	}
	r.stop = append(r.stop, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.tunnel.Shutdown(sctx)
	})

	r.s3 = s3fake.New(nil)
	r.stop = append(r.stop, r.s3.Close)
	if err := r.s3.CreateBucket(MediaBucket); err != nil {
		return "", fmt.Errorf("s3fake: %w", err)
	}
	r.b2 = b2fake.New()
	r.stop = append(r.stop, r.b2.Close)
	r.b2.CreateBucket(BackupBucket)
	r.b2.CreateBucket(MirrorBucket)

	r.web = httptest.NewServer(okHandler("/health"))
	r.stop = append(r.stop, r.web.Close)
	r.stream = httptest.NewServer(okHandler("/api/v1/streaming/health"))
	r.stop = append(r.stop, r.stream.Close)

	if r.ageID, err = age.GenerateX25519Identity(); err != nil {
		return "", fmt.Errorf("age key: %w", err)
	}
	r.identity = filepath.Join(st.Dir, "backup-identity.txt")
	if err := os.WriteFile(r.identity, []byte("# the demo's private key: keep it off the backup host\n"+r.ageID.String()+"\n"), 0o600); err != nil {
		return "", err
	}

	var mysql string
	switch {
	case !r.cfg.MySQL:
		mysql = "no mariadb (-mysql=false)"
	case r.mariaErr != nil || r.maria == nil:
		mysql = fmt.Sprintf("mariadb left out (%v)", firstLine(fmt.Sprint(r.mariaErr)))
		r.maria = nil
	default:
		mysql = "mariadb " + r.maria.Addr()
	}
	r.rep.Served = []string{r.tunnel.Addr("redis").String(), r.s3.Addr, strings.TrimPrefix(r.b2.URL, "http://"),
		strings.TrimPrefix(r.web.URL, "http://"), strings.TrimPrefix(r.stream.URL, "http://")}
	return fmt.Sprintf("pgbouncer %s -> postgres %s, redis %s (TLS) <- tunnel %s, s3fake %s, b2fake %s, %s",
		r.bouncer.Addr(), r.bouncer.Backend.Addr(), r.redis.Addr(), r.tunnel.Addr("redis"), r.s3.Addr,
		strings.TrimPrefix(r.b2.URL, "http://"), mysql), nil
}

// writeEnv writes .env.production for the stack, reads it back with
// envfile and builds every package configuration from it.
func (r *run) writeEnv(ctx context.Context) (string, error) {
	b, pg := r.bouncer, r.bouncer.Backend
	tunHost, tunPort, _ := net.SplitHostPort(r.tunnel.Addr("redis").String())
	s3Host := r.s3.Addr
	akid, secret := randHex(10), randHex(20)
	type kv struct{ k, v string }
	section := func(comment string, kvs ...kv) string {
		var sb strings.Builder
		sb.WriteString("\n# " + comment + "\n")
		for _, e := range kvs {
			q, err := envfile.Quoted(e.v)
			if err != nil {
				q = e.v // caught by the read-back below
			}
			sb.WriteString(e.k + "=" + q + "\n")
		}
		return sb.String()
	}
	text := "# .env.production for the fediops demo stack (Mastodon reads the first groups,\n# fediops tools the FEDIOPS_*, B2_*, MYSQL_* and BACKUP_* ones)\n" +
		section("Federation", kv{"LOCAL_DOMAIN", "demo.fediops.test"}, kv{"RAILS_ENV", "production"}) +
		section("PostgreSQL through DO's connection pool (pgBouncer, transaction mode; DO's port 25061)",
			kv{"DB_HOST", b.Host}, kv{"DB_PORT", strconv.Itoa(b.Port)}, kv{"DB_NAME", b.Database},
			kv{"DB_USER", b.User}, kv{"DB_PASS", b.Password}, kv{"DB_SSLMODE", "verify-full"},
			kv{"PREPARED_STATEMENTS", "false"}, kv{"NODE_EXTRA_CA_CERTS", b.CAFile}) +
		section("fediops: the database behind the pool (DO's port 25060) and the cluster's CA",
			kv{pgpool.EnvPooled, "true"}, kv{pgpool.EnvDirectName, pg.Database},
			kv{pgpool.EnvDirectPort, strconv.Itoa(pg.Port)}, kv{pgpool.EnvCAFile, b.CAFile}) +
		section("Redis: plain to the local tunnel (stunnel's place), TLS from there on",
			kv{"REDIS_HOST", tunHost}, kv{"REDIS_PORT", tunPort}, kv{"REDIS_PASSWORD", r.redis.Password}) +
		section("Spaces (here s3fake); a real Space also sets S3_ALIAS_HOST to its CDN domain",
			kv{"S3_ENABLED", "true"}, kv{"S3_BUCKET", MediaBucket}, kv{"S3_REGION", "nyc3"},
			kv{"S3_PROTOCOL", "http"}, kv{"S3_HOSTNAME", s3Host}, kv{"S3_ENDPOINT", r.s3.URL},
			kv{"AWS_ACCESS_KEY_ID", akid}, kv{"AWS_SECRET_ACCESS_KEY", secret}) +
		section("Backblaze B2 (here b2fake) and the backups' age public key",
			kv{"B2_APPLICATION_KEY_ID", r.b2.KeyID}, kv{"B2_APPLICATION_KEY", r.b2.Key},
			kv{"B2_BUCKET", BackupBucket}, kv{"MIRROR_B2_BUCKET", MirrorBucket}, kv{"B2_API_BASE", r.b2.URL},
			kv{"BACKUP_AGE_RECIPIENTS", r.ageID.Recipient().String()})
	if r.maria != nil {
		m := r.maria
		text += section("MySQL of the WriteFreely fling (here MariaDB)",
			kv{"MYSQL_HOST", m.Host}, kv{"MYSQL_PORT", strconv.Itoa(m.Port)}, kv{"MYSQL_USER", m.User},
			kv{"MYSQL_PASSWORD", m.Password}, kv{"MYSQL_DATABASE", m.Database})
	}
	path := filepath.Join(r.cfg.Stack.Dir, ".env.production")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	r.rep.EnvFile = path

	// Read it back the way an admin's tools do.
	f, err := envfile.Read(path, envfile.WithLookup(nil))
	if err != nil {
		return "", err
	}
	r.env = f
	fmt.Fprintf(r.cfg.Out, "# %s (secrets redacted)\n%s\n", path, strings.TrimRight(string(f.Redacted()), "\n"))
	findings := envfile.Lint(f)
	for _, fd := range findings {
		r.printf("lint: %s", fd)
	}
	if len(findings) > 0 {
		return "", fmt.Errorf("%d lint findings in %s", len(findings), path)
	}
	get := f.Get
	if r.db, err = pgpool.ConfigFromEnv(get, pgpool.Options{Logger: r.log}); err != nil {
		return "", err
	}
	if r.db.Direct == nil {
		return "", fmt.Errorf("no direct connection: %w", r.db.DirectErr)
	}
	scfg, err := spaces.ConfigFromEnv(get)
	if err != nil {
		return "", err
	}
	scfg.Logger = r.log
	if r.media, err = spaces.New(scfg); err != nil {
		return "", err
	}
	ropt, err := redistls.ClientOptionsFromEnv(get, "REDIS_")
	if err != nil {
		return "", err
	}
	r.sq = redisClient(ropt)
	r.stop = append(r.stop, func() { r.sq.Close() })
	bcfg, err := b2store.ConfigFromEnv(get)
	if err != nil {
		return "", err
	}
	bcfg.Logger = r.log
	st, err := b2store.Open(ctx, bcfg)
	if err != nil {
		return "", err
	}
	r.store = st
	// pg_dump takes pgpool's direct connection (FEDIOPS_DB_DIRECT_*) and CA.
	if r.pgSrc, err = pgdump.SourceFromEnv(get, pgpool.Options{Logger: r.log}); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d variables, 0 lint findings; pooled %s, direct %s, TLS %s (CA from %s)",
		len(f.Map()), r.db.Pool, r.db.DirectEndpoint, r.db.TLS, r.db.CASource), nil
}

// backupPrefix is where the demo's backups go in the bucket, as `backup
// run`'s default.
const backupPrefix = "db/"

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return strings.ToUpper(hex.EncodeToString(b))
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
