package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fediops/fediops/internal/testenv"
)

// `backup verify` runs the drill of the backup's kind: MySQL into a
// scratch database (dropped afterwards), Redis into a scratch RDB checked
// by redis-check-rdb; a MySQL source that lost rows fails it with exit 1.
func TestCommandVerifyMySQLAndRedis(t *testing.T) {
	testenv.Binary(t, "mysqldump")
	testenv.Binary(t, "redis-cli")
	if _, err := exec.LookPath("redis-check-rdb"); err != nil {
		t.Fatal("redis-check-rdb is needed: apt-get install -y redis-tools")
	}
	mdb := testenv.Maria(t)
	rd := testenv.RedisTLS(t)
	maria := testenv.Binary(t, "mariadb")
	if mdb.Socket != "" { // the application user may create and drop its scratch databases
		grant := fmt.Sprintf("GRANT ALL ON `%s\\_verify\\_%%`.* TO '%s'@'127.0.0.1'", strings.ReplaceAll(mdb.Database, "_", "\\_"), mdb.User)
		if out, err := exec.Command(maria, "--no-defaults", "-uroot", "--socket="+mdb.Socket, "-e", grant).CombinedOutput(); err != nil {
			t.Fatalf("grant: %v: %s", err, out)
		}
	}
	t.Cleanup(func() { mdb.Exec(context.Background(), "DROP TABLE IF EXISTS cv_posts") })
	if err := mdb.Exec(t.Context(), "DROP TABLE IF EXISTS cv_posts; CREATE TABLE cv_posts (id INT PRIMARY KEY) ENGINE=InnoDB;"+
		"INSERT INTO cv_posts SELECT seq FROM seq_1_to_300"); err != nil {
		t.Fatal(err)
	}
	srv, env := bkBucket(t)
	id, idf := bkKeyFile(t)
	dir := t.TempDir()
	env = append(env, "MYSQL_HOST="+mdb.Host, fmt.Sprintf("MYSQL_PORT=%d", mdb.Port), "MYSQL_USER="+mdb.User,
		"MYSQL_PASSWORD="+mdb.Password, "MYSQL_DATABASE="+mdb.Database, "REDIS_URL="+rd.URL(), "TMPDIR="+dir)
	// run finds Redis's CA where every fediops Redis client does
	// (FEDIOPS_REDIS_CA_FILE); verify is given it by -redis-cacert.
	r := bkRun(t, append(env, "FEDIOPS_REDIS_CA_FILE="+rd.CAFile), "run", "-env", "", "-sources", "mysql,redis",
		"-lock", filepath.Join(dir, "lock"), "-recipient", id.Recipient().String())
	if r.code != 0 {
		t.Fatalf("run: exit %d, %s", r.code, r.stderr)
	}
	common := []string{"-env", "", "-redis-cacert", rd.CAFile, "-identity", idf}
	r = bkRun(t, env, append([]string{"verify", "-source", "mysql", "-tolerance", "0"}, common...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "verify OK") || !strings.Contains(r.stdout, "source        300  restored        300") {
		t.Fatalf("verify mysql: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = bkRun(t, env, append([]string{"verify", "-source", "redis"}, common...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "verify OK") || !strings.Contains(r.stdout, "keys") {
		t.Fatalf("verify redis: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if err := mdb.Exec(t.Context(), "DELETE FROM cv_posts WHERE id > 100"); err != nil {
		t.Fatal(err)
	}
	r = bkRun(t, env, append([]string{"verify", "-source", "mysql"}, common...)...)
	if r.code != 1 || !strings.Contains(r.stderr, "cv_posts: source 100 rows, restored 300") {
		t.Fatalf("verify mysql after deleting rows: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, s := range []string{mdb.Password, rd.Password, srv.Key} {
		if strings.Contains(r.stdout+r.stderr, s) {
			t.Error("a secret in the output")
		}
	}
	show := exec.Command(maria, "--no-defaults", "-N", "-h", mdb.Host, "-P", fmt.Sprint(mdb.Port), "-u", mdb.User,
		"-e", "SHOW DATABASES LIKE '%verify%'")
	show.Env = append(os.Environ(), "MYSQL_PWD="+mdb.Password)
	out, err := show.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("scratch databases left: %q %v", out, err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "redis_verify_*")); len(left) != 0 {
		t.Errorf("scratch RDB left: %v", left)
	}
}
