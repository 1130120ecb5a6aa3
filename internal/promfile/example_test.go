package promfile_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/fediops/fediops/internal/promfile"
)

// A backup run records each source and leaves a file for node_exporter's
// textfile collector.
func Example() {
	dir, _ := os.MkdirTemp("", "textfile-")
	defer os.RemoveAll(dir)
	cfg := promfile.Config{Dir: dir} // or PushURL: "http://127.0.0.1:9091"

	runs, _ := promfile.NewRuns("backup")
	start := time.Date(2026, 11, 26, 4, 0, 0, 0, time.UTC)
	runs.Observe(promfile.Result{Source: "postgres", Start: start, Duration: 95 * time.Second, Bytes: 80 << 20, Objects: 1})
	runs.Observe(promfile.Result{Source: "redis", Start: start, Duration: 3 * time.Second, Err: fmt.Errorf("redis-cli: connection refused")})
	if err := runs.Write(context.Background(), cfg); err != nil {
		fmt.Println(err)
	}
	b, _ := os.ReadFile(cfg.File("backup"))
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "fediops_backup_success") || strings.HasPrefix(line, "fediops_backup_last_success") {
			fmt.Println(line)
		}
	}
	// Output:
	// fediops_backup_last_success_timestamp_seconds{source="postgres"} 1.7956656e+09
	// fediops_backup_success{source="postgres"} 1
	// fediops_backup_success{source="redis"} 0
}
