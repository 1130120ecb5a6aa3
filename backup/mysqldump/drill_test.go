package mysqldump_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/internal/backuptest"
	"github.com/fediops/fediops/backup/mysqldump"
	"github.com/fediops/fediops/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func itoa(n int) string { return fmt.Sprint(n) }

// mariaQuery runs sql as the test server's application user and returns
// the output (password in MYSQL_PWD).
func mariaQuery(t *testing.T, mdb *testenv.MariaDB, sql string) string {
	t.Helper()
	cmd := exec.CommandContext(backuptest.Context(t), testenv.Binary(t, "mariadb"), "--no-defaults", "-N", "--batch", "-h", mdb.Host,
		"-P", itoa(mdb.Port), "-u", mdb.User, mdb.Database, "-e", sql)
	cmd.Env = append(os.Environ(), "MYSQL_PWD="+mdb.Password)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", sql, err, out)
	}
	return strings.TrimSpace(string(out))
}

// The MySQL restore drill against real MariaDB: it passes on a fresh
// backup, fails with ErrVerify naming the table once the source lost rows
// (and passes again within Tolerance), and drops its scratch database
// every time, also when the restore fails.
func TestMySQLVerifyDrill(t *testing.T) {
	testenv.Binary(t, "mysqldump")
	mdb := testenv.Maria(t)
	if mdb.Socket == "" {
		t.Log("external MariaDB: the user needs CREATE and DROP on " + mdb.Database + "_verify_%")
	} else {
		// The application user may create and drop its scratch databases,
		// as the drill's documentation asks an admin to grant.
		grant := fmt.Sprintf("GRANT ALL ON `%s\\_verify\\_%%`.* TO '%s'@'127.0.0.1'", strings.ReplaceAll(mdb.Database, "_", "\\_"), mdb.User)
		if out, err := exec.Command(testenv.Binary(t, "mariadb"), "--no-defaults", "-uroot", "--socket="+mdb.Socket,
			"-e", grant).CombinedOutput(); err != nil {
			t.Fatalf("grant: %v: %s", err, out)
		}
	}
	t.Cleanup(func() {
		mdb.Exec(context.Background(), "DROP TABLE IF EXISTS vt_posts, vt_accounts, `vt odd``name`")
	})
	mariaQuery(t, mdb, "DROP TABLE IF EXISTS vt_posts, vt_accounts, `vt odd``name`;"+
		"CREATE TABLE vt_posts (id INT PRIMARY KEY AUTO_INCREMENT, body TEXT) ENGINE=InnoDB;"+
		"INSERT INTO vt_posts (body) SELECT CONCAT('post ', seq, REPEAT('x', 200)) FROM seq_1_to_1000;"+
		"CREATE TABLE vt_accounts (id INT PRIMARY KEY, name VARCHAR(40)) ENGINE=InnoDB;"+
		"INSERT INTO vt_accounts SELECT seq, CONCAT('user', seq) FROM seq_1_to_100;"+
		"CREATE TABLE `vt odd``name` (id INT PRIMARY KEY) ENGINE=InnoDB; INSERT INTO `vt odd``name` VALUES (1), (2), (3);"+
		"ANALYZE TABLE vt_posts, vt_accounts, `vt odd``name`") // the sizes the drill orders by
	_, store := backuptest.B2(t)
	_, sealer, unsealer := backuptest.Keys(t)
	src := &mysqldump.Source{Conn: mysqldump.Conn{Host: mdb.Host, Port: mdb.Port, User: mdb.User, Password: mdb.Password, Database: mdb.Database}}
	p := &backup.Pipeline{Store: store, Prefix: "db/", Sealer: sealer, Logger: backuptest.Quiet}
	m, err := p.Backup(backuptest.Context(t), src)
	if err != nil {
		t.Fatal(err)
	}
	scratchLeft := func() string {
		return mariaQuery(t, mdb, "SHOW DATABASES LIKE '"+strings.ReplaceAll(mdb.Database, "_", "\\_")+"\\_verify\\_%'")
	}
	v := &mysqldump.Drill{Source: src.Conn}
	rep, err := v.Run(backuptest.Context(t), store, m, unsealer)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	want := map[string]int64{"vt_posts": 1000, "vt_accounts": 100, "vt odd`name": 3}
	for _, tc := range rep.Tables {
		if n, ok := want[tc.Table]; ok && tc.Source == n && tc.Restored == n {
			delete(want, tc.Table)
		}
	}
	if len(want) != 0 || rep.Tables[0].Table != "vt_posts" || rep.Restore.DumpBytes != m.DumpBytes {
		t.Errorf("verify report: %+v (not matched: %v)", rep, want)
	}
	if !strings.HasPrefix(rep.Scratch, mdb.Database+"_verify_") {
		t.Errorf("scratch database %q", rep.Scratch)
	}
	if left := scratchLeft(); left != "" {
		t.Errorf("scratch database left after the drill: %s", left)
	}

	mariaQuery(t, mdb, "DELETE FROM vt_posts WHERE id % 2 = 0")
	_, err = v.Run(backuptest.Context(t), store, m, unsealer)
	if !errors.Is(err, backup.ErrVerify) || !strings.Contains(err.Error(), "vt_posts: source 500 rows, restored 1000") {
		t.Fatalf("verify after deleting half the rows: %v, want ErrVerify naming vt_posts", err)
	}
	if strings.Contains(err.Error(), mdb.Password) {
		t.Error("password in the error")
	}
	if left := scratchLeft(); left != "" {
		t.Errorf("scratch database left after a failed drill: %s", left)
	}
	// A live source that moved a little is within the tolerance.
	mariaQuery(t, mdb, "INSERT INTO vt_posts (body) SELECT 'new' FROM seq_1_to_490")
	tol := &mysqldump.Drill{Source: src.Conn, Tolerance: 0.02}
	if _, err := tol.Run(backuptest.Context(t), store, m, unsealer); err != nil {
		t.Fatalf("verify within 2%%: %v", err)
	}

	// A restore that fails (wrong key) leaves no scratch database either.
	_, _, other := backuptest.Keys(t)
	if _, err := v.Run(backuptest.Context(t), store, m, other); err == nil || errors.Is(err, backup.ErrVerify) {
		t.Fatalf("verify with the wrong key: %v", err)
	}
	if left := scratchLeft(); left != "" {
		t.Errorf("scratch database left after a failed restore: %s", left)
	}
	// A PostgreSQL backup is not restored into MariaDB.
	pgm := m
	pgm.Kind = "postgres"
	if _, err := v.Run(backuptest.Context(t), store, pgm, unsealer); err == nil || !strings.Contains(err.Error(), "not mysql") {
		t.Fatalf("verify of a postgres backup: %v", err)
	}
}
