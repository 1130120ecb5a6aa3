package mysqldump_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/internal/backuptest"
	"github.com/fediops/fediops/backup/mysqldump"
	"github.com/fediops/fediops/internal/testenv"
)

func TestMySQLDumpAndRestore(t *testing.T) {
	testenv.Binary(t, "mysqldump")
	mdb := testenv.Maria(t)
	ctx := backuptest.Context(t)
	if err := mdb.Exec(ctx, "DROP TABLE IF EXISTS posts; CREATE TABLE posts (id INT PRIMARY KEY AUTO_INCREMENT, body TEXT) ENGINE=InnoDB; "+
		"INSERT INTO posts (body) VALUES ('CANARY-mysql-99'), ('hello'), ('world');"); err != nil {
		t.Fatal(err)
	}
	srv, store := backuptest.B2(t)
	_, sealer, unsealer := backuptest.Keys(t)
	conn := mysqldump.Conn{Host: mdb.Host, Port: mdb.Port, User: mdb.User, Password: mdb.Password, Database: mdb.Database}
	p := &backup.Pipeline{Store: store, Prefix: "db/", Sealer: sealer, Logger: backuptest.Quiet}
	src := &mysqldump.Source{Conn: conn}
	m, err := p.Backup(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	backuptest.AssertNoPlaintext(t, srv, "CANARY-mysql-99", mdb.Password)
	if err := mdb.Exec(ctx, "DROP TABLE posts"); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Restore(ctx, store, m, unsealer, &mysqldump.Target{Conn: conn}); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, testenv.Binary(t, "mariadb"), "--no-defaults", "-N", "-h", mdb.Host, "-P", itoa(mdb.Port),
		"-u", mdb.User, "-p"+mdb.Password, mdb.Database, "-e", "SELECT body FROM posts ORDER BY id LIMIT 1").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "CANARY-mysql-99" {
		t.Fatalf("restored table: %q %v", out, err)
	}
}
