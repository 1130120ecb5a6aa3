package envfile

import (
	"strings"
	"testing"
)

func TestLint(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string // one entry per finding: parts of its String()
		hide []string // what no finding may show
	}{
		{"clean file", seedPuma + seedStreaming + seedObjectStore + "A='$x\\n'\nB=\"plain\"\n", nil, nil},
		{"expansion of a non-secret", "HOST=db\nURL=http://$HOST/$nope\n", []string{
			`t.env:2: URL: Rails/Sidekiq (Ruby dotenv) read "http://db/" but the streaming server (node dotenv) reads "http://$HOST/$nope": ` +
				`Ruby dotenv expands $HOST to the value of HOST from line 1, $nope to '' (nope is not set). ` +
				`Fix: only single quotes read the same in both: to keep the text as written, write URL='http://$HOST/$nope'; ` +
				`to keep what Ruby dotenv expands, write URL='http://db/'`,
		}, nil},
		{"secret with an unknown variable", "SECRET_KEY_BASE=abc$def\n", []string{
			"t.env:1: SECRET_KEY_BASE: Rails/Sidekiq (Ruby dotenv) read only the first 3 of the 7 characters",
		}, []string{"abc", "def"}},
		{"non-secret using a secret", "DB_PASS='pw'\nX=$DB_PASS\n", []string{
			"t.env:2: X: Rails/Sidekiq (Ruby dotenv) and the streaming server (node dotenv) read different values, of 2 and 8 characters (value not shown: secret): " +
				"Ruby dotenv replaces the $ and the name after it with the value of that variable",
		}, []string{"'pw'", `"pw"`}},
		{"shell command", "A=$(cat /etc/hostname)\nOTP_SECRET=$(cat /run/otp)\n", []string{
			"t.env:1: A: runs a shell command under Ruby dotenv: when Rails and Sidekiq boot, $(cat /etc/hostname) is replaced by the command's output",
			"t.env:2: OTP_SECRET: runs a shell command under Ruby dotenv: when Rails and Sidekiq boot, $(...) is replaced by the output of the command in it",
		}, []string{"/run/otp"}},
		{"expansion that becomes a command in 3.1", "A='$(id)'\nB=$A\n", []string{
			"t.env:2: B: $A expands to text holding $(, which Ruby dotenv 3.1",
			"t.env:2: B: Rails/Sidekiq (Ruby dotenv) read \"$(id)\" but the streaming server (node dotenv) reads \"$A\"",
		}, nil},
		{"backslashes", `A=C:\dir\$x` + "\n", []string{
			`t.env:1: A: Rails/Sidekiq (Ruby dotenv) read "C:dir$x" but the streaming server (node dotenv) reads "C:\\dir\\$x": ` +
				`Ruby dotenv reads \$ as $, node dotenv keeps the backslash; Ruby dotenv removes backslashes, node dotenv keeps them. ` +
				`Fix: only single quotes read the same in both: to keep the text as written, write A='C:\dir\$x'`,
		}, nil},
		{"newline escape in double quotes", `A="l1\nl2"` + "\n", []string{
			`in double quotes node dotenv turns \n into a line break, while Ruby dotenv 3 keeps the two characters \n`,
		}, nil},
		{"hash right after a value", "S3_BUCKET=media#2\nA=1 # fine\n", []string{
			`t.env:1: S3_BUCKET: a '#' right after "media" starts a comment, so both readers ignore the rest of the line. ` +
				`Fix: if the '#' belongs to the value, write S3_BUCKET='media#2'`,
		}, nil},
		{"secret cut by a hash", "DB_PASS=hunter#two\n", []string{
			"t.env:1: DB_PASS: a '#' right after the first 6 characters starts a comment",
		}, []string{"hunter", "two"}},
		{"key without =", "LOCAL_DOMAIN\n", []string{
			"t.env:1: LOCAL_DOMAIN: the line has no '=': Ruby dotenv 3.1.5 and later set LOCAL_DOMAIN to '', node dotenv skips the line",
		}, nil},
		{"export without a value", "A=1\nexport A=\n", []string{
			`t.env:2: A: Rails/Sidekiq (Ruby dotenv) end up with "1", the streaming server (node dotenv) with ""`,
		}, nil},
		{"backticks", "A=`x`\n", []string{"node dotenv removes backticks, Ruby dotenv keeps them"}, nil},
		{"backslash before the closing quote", `A='x\'` + "\n", []string{"ends in a backslash right before its closing quote"}, nil},
		{"node opening quote", "A=`x\n", []string{"sees an opening quote without a closing one"}, nil},
		{"url password", "DATABASE_URL=postgres://u:pw$x@h/db\n", []string{
			"t.env:1: DATABASE_URL: Rails/Sidekiq (Ruby dotenv) and the streaming server (node dotenv) read different values",
		}, []string{"pw"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Lint(mustParse(t, tt.text))
			if len(got) != len(tt.want) {
				t.Fatalf("got %d findings, want %d:\n%s", len(got), len(tt.want), joinFindings(got))
			}
			for i, want := range tt.want {
				if s := got[i].String(); !strings.Contains(s, want) {
					t.Errorf("finding %d:\n%s\ndoes not hold\n%s", i, s, want)
				}
			}
			all := joinFindings(got)
			for _, h := range tt.hide {
				if strings.Contains(all, h) {
					t.Errorf("findings show %q:\n%s", h, all)
				}
			}
		})
	}
}

func joinFindings(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(f.String() + "\n")
	}
	return b.String()
}
