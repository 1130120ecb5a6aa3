package devstack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/fediops/fediops/internal/envfile"
	"github.com/fediops/fediops/internal/testenv"
	"github.com/fediops/fediops/pgpool"
)

// Names of the files Start writes into Dir.
const (
	EnvFileName      = ".env.production"
	SeedEnvFileName  = "seed.env.production"
	ShellFileName    = "stack.env"
	IdentityFileName = "backup-identity.txt"
)

type setting struct{ key, value string }

// section is a commented group of .env lines, each value quoted so that
// Ruby dotenv and node's dotenv read it alike.
func section(comment string, kvs ...setting) (string, error) {
	var sb strings.Builder
	sb.WriteString("\n# " + comment + "\n")
	for _, e := range kvs {
		q, err := envfile.Quoted(e.value)
		if err != nil {
			return "", fmt.Errorf("%s: %w", e.key, err)
		}
		sb.WriteString(e.key + "=" + q + "\n")
	}
	return sb.String(), nil
}

// writeFiles writes .env.production, seed.env.production, the age
// identity and stack.env.
func (s *Stack) writeFiles(context.Context) error {
	b, pg := s.bouncer, s.bouncer.Backend
	tunHost, tunPort, _ := net.SplitHostPort(s.tunnel.Addr("redis").String())
	parts := []struct {
		comment string
		kvs     []setting
	}{
		{"Federation", []setting{{"LOCAL_DOMAIN", "demo.fediops.test"}, {"RAILS_ENV", "production"}}},
		{"PostgreSQL through DO's connection pool (pgBouncer, transaction mode; DO's port 25061)", []setting{
			{"DB_HOST", b.Host}, {"DB_PORT", strconv.Itoa(b.Port)}, {"DB_NAME", b.Database},
			{"DB_USER", b.User}, {"DB_PASS", b.Password}, {"DB_SSLMODE", "verify-full"},
			{"PREPARED_STATEMENTS", "false"}, {"NODE_EXTRA_CA_CERTS", b.CAFile}}},
		{"fediops: the database behind the pool (DO's port 25060) and the cluster's CA", []setting{
			{pgpool.EnvPooled, "true"}, {pgpool.EnvDirectName, pg.Database},
			{pgpool.EnvDirectPort, strconv.Itoa(pg.Port)}, {pgpool.EnvCAFile, b.CAFile},
			{pgpool.EnvConnLimit, strconv.Itoa(ClusterLimit)}}},
		{"Redis: plain to the local tunnel (stunnel's place), TLS from there on", []setting{
			{"REDIS_HOST", tunHost}, {"REDIS_PORT", tunPort}, {"REDIS_PASSWORD", s.redis.Password}}},
		{"Spaces (here a local S3 stand-in); a real Space also sets S3_ALIAS_HOST to its CDN domain", []setting{
			{"S3_ENABLED", "true"}, {"S3_BUCKET", MediaBucket}, {"S3_REGION", "nyc3"},
			{"S3_PROTOCOL", "http"}, {"S3_HOSTNAME", s.s3.Addr}, {"S3_ENDPOINT", s.s3.URL},
			{"AWS_ACCESS_KEY_ID", randHex(10)}, {"AWS_SECRET_ACCESS_KEY", randHex(20)}}},
		{"Backblaze B2 (here a local stand-in) and the backups' age public key", []setting{
			{"B2_APPLICATION_KEY_ID", s.b2.KeyID}, {"B2_APPLICATION_KEY", s.b2.Key},
			{"B2_BUCKET", BackupBucket}, {"MIRROR_B2_BUCKET", MirrorBucket}, {"B2_API_BASE", s.b2.URL},
			{"BACKUP_AGE_RECIPIENTS", s.ageID.Recipient().String()}}},
	}
	if m := s.maria; m != nil {
		parts = append(parts, struct {
			comment string
			kvs     []setting
		}{"MySQL of the WriteFreely fling (here MariaDB)", []setting{
			{"MYSQL_HOST", m.Host}, {"MYSQL_PORT", strconv.Itoa(m.Port)}, {"MYSQL_USER", m.User},
			{"MYSQL_PASSWORD", m.Password}, {"MYSQL_DATABASE", m.Database}}})
	}
	text := "# .env.production for fediops's local stack (Mastodon reads the first groups,\n" +
		"# fediops's tools the FEDIOPS_*, B2_*, MYSQL_* and BACKUP_* ones)\n"
	for _, p := range parts {
		sec, err := section(p.comment, p.kvs...)
		if err != nil {
			return err
		}
		text += sec
	}
	s.EnvFile = filepath.Join(s.Dir, EnvFileName)
	s.SeedEnvFile = filepath.Join(s.Dir, SeedEnvFileName)
	s.IdentityFile = filepath.Join(s.Dir, IdentityFileName)
	s.ShellFile = filepath.Join(s.Dir, ShellFileName)
	for _, f := range []struct {
		path, data string
	}{
		{s.EnvFile, text},
		{s.SeedEnvFile, testenv.SeedEnv()},
		{s.IdentityFile, "# the stack's backup key: on a real instance the private key stays off the backup host\n" + s.ageID.String() + "\n"},
	} {
		if err := os.WriteFile(f.path, []byte(f.data), 0o600); err != nil {
			return err
		}
	}
	return s.writeShellFile()
}

// ShellEnv is what stack.env exports, as NAME=value: the directory and
// the values a command line against the stack needs that
// .env.production does not hold.
//
//	STACK_DIR               Dir
//	DIGITALOCEAN_TOKEN      the DO stand-in's token (provision reads it)
//	DIGITALOCEAN_API_URL    the DO stand-in (provision -api-url's default)
//	STACK_DO_CLUSTER        the database cluster's id (provision -cluster)
//	STACK_DO_CERT           a certificate id for the CDN (provision -cdn-cert-id)
//	STACK_WEB               the web stand-in (health -web)
//	STACK_STREAMING         the streaming stand-in (health -streaming)
//	STACK_SPACES_KEY        an object in the Space, once seeded (health -spaces-key)
//	STACK_PG_DIRECT_PORT    PostgreSQL's own port (FEDIOPS_DB_DIRECT_PORT in .env.production)
//	STACK_DB_CA             the database's CA file (FEDIOPS_DB_CA_FILE)
//	STACK_TRY_TUNNEL_PORT   the port stunnel-try.conf accepts on
func (s *Stack) ShellEnv() []string {
	key := ""
	if len(s.MediaKeys) > 0 {
		key = s.MediaKeys[0]
	}
	return []string{
		"STACK_DIR=" + s.Dir,
		"DIGITALOCEAN_TOKEN=" + s.DO.Token,
		"DIGITALOCEAN_API_URL=" + s.DO.URL,
		"STACK_DO_CLUSTER=" + s.DO.ClusterID,
		"STACK_DO_CERT=" + s.DO.CertificateID,
		"STACK_WEB=" + s.Web,
		"STACK_STREAMING=" + s.Streaming,
		"STACK_SPACES_KEY=" + key,
		"STACK_PG_DIRECT_PORT=" + strconv.Itoa(s.DirectPort),
		"STACK_DB_CA=" + s.DBCAFile,
		"STACK_TRY_TUNNEL_PORT=" + strconv.Itoa(s.tryPort),
	}
}

// writeShellFile writes ShellEnv as export lines (mode 0600: it holds the
// DO stand-in's token).
func (s *Stack) writeShellFile() error {
	var sb strings.Builder
	sb.WriteString("# stack.env: `. " + s.ShellFile + "` in a shell to try fediops's programs on the local stack\n")
	for _, kv := range s.ShellEnv() {
		k, v, _ := strings.Cut(kv, "=")
		sb.WriteString("export " + k + "=" + shellQuote(v) + "\n")
	}
	if err := os.WriteFile(s.ShellFile, []byte(sb.String()), 0o600); err != nil {
		return err
	}
	return nil
}

// shellQuote single-quotes v unless it is made only of safe characters.
func shellQuote(v string) string {
	if v != "" && strings.Trim(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:@,+=") == "" {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return strings.ToUpper(hex.EncodeToString(b))
}
