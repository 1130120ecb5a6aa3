package testenv

import (
	"context"
	"os"
	"strings"
	"testing"
)

// run feeds stdin and env to the command and keeps both out of its error:
// that is where the set-up SQL with a new user's password goes.
func TestRunKeepsStdinAndEnvOutOfErrors(t *testing.T) {
	const secret = "pw-7f3a9c"
	sh := Binary(t, "sh")
	err := run(context.Background(), nil, os.DevNull, []string{"FEDIOPS_SECRET=" + secret},
		"CREATE USER x IDENTIFIED BY '"+secret+"';\n", sh, "-c", `read line; test -n "$FEDIOPS_SECRET" && test "${line#CREATE}" != "$line" && echo failed on purpose; exit 3`)
	if err == nil {
		t.Fatal("exit 3: no error")
	}
	if !strings.Contains(err.Error(), "failed on purpose") {
		t.Errorf("the command did not get its env and stdin, or its output is missing: %v", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error holds the secret: %v", err)
	}
}
