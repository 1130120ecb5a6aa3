package envfile_test

import (
	"fmt"
	"log"

	"github.com/fediops/fediops/internal/envfile"
)

// Check a .env.production, fix what Rails and the streaming server read
// differently, and write it back. A real program starts with
// envfile.Read("/home/mastodon/live/.env.production") and ends with Save.
func Example() {
	f, err := envfile.Parse(".env.production", []byte(`# PostgreSQL
DB_HOST=db.internal
DB_PORT=25061
DB_PASS=Ourpassw0rd!sNoneofyourbu$iness
`), envfile.WithLookup(nil)) // nil: expand $NAME from the file only
	if err != nil {
		log.Fatal(err) // for example ".env.production:3: unterminated double quote in the value of DB_PASS"
	}

	port, _ := f.Get("DB_PORT")
	fmt.Println("Rails connects to port", port)

	for _, finding := range envfile.Lint(f) {
		fmt.Println(finding)
	}

	e, _ := f.Lookup("DB_PASS")
	if err := f.Set("DB_PASS", e.NodeValue); err != nil { // the text as written
		log.Fatal(err)
	}
	fmt.Print(string(f.Bytes()))
	fmt.Println(len(envfile.Lint(f)), "findings left")
	// Output:
	// Rails connects to port 25061
	// .env.production:4: DB_PASS: Rails/Sidekiq (Ruby dotenv) read only the first 25 of the 31 characters that the streaming server (node dotenv) reads (value not shown: secret): Ruby dotenv expands the $ and the name after it to '', since no such variable is set. Fix: only single quotes read the same in both: to keep the text as written, write DB_PASS='…' (value not shown: secret; envfile's Set writes it)
	// # PostgreSQL
	// DB_HOST=db.internal
	// DB_PORT=25061
	// DB_PASS='Ourpassw0rd!sNoneofyourbu$iness'
	// 0 findings left
}

// Print a file without its secrets.
func ExampleFile_Redacted() {
	f, err := envfile.Parse(".env.production", []byte(`DB_USER=mastodon
DB_PASS='hunter2' # set 2024-05
# DB_PASS=old-password
REDIS_URL=rediss://default:redis-password@redis.internal:25061
`), envfile.WithLookup(nil))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(f.Redacted()))
	// Output:
	// DB_USER=mastodon
	// DB_PASS=[redacted]
	// # DB_PASS=[redacted]
	// REDIS_URL=rediss://default:[redacted]@redis.internal:25061
}

// Point a file at a new database host and password as one unit, and print
// what changed without the secret.
func ExampleFile_SetAll() {
	f, err := envfile.Parse(".env.production", []byte("DB_HOST=old.internal\nDB_PORT=25061\nDB_PASS=hunter2\n"), envfile.WithLookup(nil))
	if err != nil {
		log.Fatal(err)
	}
	changes, err := f.SetAll(
		envfile.Setting{Key: "DB_HOST", Value: "new.internal"},
		envfile.Setting{Key: "DB_PORT", Value: "25061"},
		envfile.Setting{Key: "DB_PASS", Value: "correct horse"},
		envfile.Setting{Key: "PREPARED_STATEMENTS", Value: "false"},
	)
	if err != nil {
		log.Fatal(err) // nothing changed
	}
	for _, c := range changes {
		fmt.Println(c)
	}
	fmt.Print(string(f.Bytes())) // then f.Save()
	// Output:
	// set DB_HOST=new.internal (was "old.internal")
	// set DB_PASS=[redacted] (was "[redacted]")
	// set PREPARED_STATEMENTS=false (was unset)
	// DB_HOST='new.internal'
	// DB_PORT=25061
	// DB_PASS='correct horse'
	// PREPARED_STATEMENTS='false'
}
