package chart_test

import (
	"math"
	"strings"
	"testing"

	"github.com/fediops/fediops/chart"
)

func TestFormat(t *testing.T) {
	const GiB = 1 << 30
	for _, c := range []struct {
		v        float64
		unit     string
		decimals int
		want     string
	}{
		// Durations: the largest unit under the value, a space before it.
		{0.004, "s", -1, "4 ms"},
		{0.25, "s", -1, "250 ms"},
		{0.0125, "s", -1, "12.5 ms"},
		{0.0005, "s", -1, "500 µs"},
		{7.0349, "s", -1, "7.03 s"},
		{90, "s", -1, "1.5 min"},
		{2 * 3600, "s", -1, "2 h"},
		{0, "s", -1, "0 s"},
		{1.5, "s", 2, "1.50 s"},
		{-0.25, "s", -1, "-250 ms"},
		// Sizes in binary steps.
		{619, "bytes", -1, "619 B"},
		{1536, "bytes", -1, "1.5 KiB"},
		{3.5 * GiB, "bytes", -1, "3.5 GiB"},
		{1.25 * 1024 * GiB, "bytes", -1, "1.25 TiB"},
		{2048, "Bps", -1, "2 KiB/s"},
		{1536, "bytes", 0, "2 KiB"},
		// Shares and rates.
		{0.125, "percentunit", -1, "12.5%"},
		{0.0698, "percentunit", 0, "7%"},
		{0.5, "ops", -1, "0.5/s"},
		{48.94, "reqps", -1, "48.9 req/s"},
		// Plain numbers: K and M with automatic decimals only.
		{12345, "", -1, "12.3 K"},
		{12345, "short", -1, "12.3 K"},
		{2.5e6, "short", -1, "2.5 M"},
		{9999, "short", -1, "9999"},
		{12345, "short", 0, "12345"},
		{3, "short", 0, "3"},
		{2.6, "short", 0, "3"},
		{97, "database connections", -1, "97"},
		{0.004, "short", -1, "0.004"},
		{0.0125, "none", -1, "0.0125"},
		{-0.005, "", -1, "-0.005"},
		{0.30000000000000004, "", -1, "0.3"},
		{-1e-12, "", -1, "0"},
		{math.NaN(), "s", -1, "NaN s"},
	} {
		if got := chart.Format(c.v, c.unit, c.decimals); got != c.want {
			t.Errorf("Format(%v, %q, %d) = %q, want %q", c.v, c.unit, c.decimals, got, c.want)
		}
	}
}

// TestUnitTicks checks the labelled ticks of axes over real ranges: whole
// numbers only for counts, round numbers of the unit shown for sizes and
// long durations.
func TestUnitTicks(t *testing.T) {
	const KiB, GiB = 1 << 10, 1 << 30
	for _, c := range []struct {
		unit     string
		decimals int
		lo, hi   float64
		want     string
	}{
		// Counts over a small range: every whole number, none between.
		{"short", 0, 0, 5.25, "0 1 2 3 4 5"},
		{"", 0, 0, 1.05, "0 1"},
		// Counts over a larger range: the default steps, but no 2.5.
		{"short", 0, 0, 10.5, "0 5 10"},
		{"", 0, 0, 335, "0 100 200 300"},
		// Not counts: the steps between whole numbers are labelled.
		{"short", -1, 0, 1.05, "0 0.5 1"},
		// Bytes tick at whole GiB, not at 1e9 (931 MiB).
		{"bytes", -1, 0, 3.5 * GiB, "0 B|1 GiB|2 GiB|3 GiB"},
		{"Bps", -1, 0, 350 * KiB, "0 B/s|100 KiB/s|200 KiB/s|300 KiB/s"},
		{"bytes", -1, 0, 6 * KiB, "0 B|3 KiB|6 KiB"},
		// Durations: under a second in ms, long ones in minutes and hours.
		{"s", -1, 0, 1.05, "0 s|500 ms|1 s"},
		{"s", -1, 0, 600, "0 s|5 min|10 min"},
		{"s", -1, 0, 3 * 3600, "0 s|1 h|2 h|3 h"},
		{"percentunit", -1, 0, 1, "0%|50%|100%"},
		{"ops", -1, 0, 1.05, "0/s|0.5/s|1/s"},
	} {
		var labels []string
		for _, tk := range chart.UnitTicks(c.unit, c.decimals).Ticks(c.lo, c.hi) {
			if tk.Label != "" {
				labels = append(labels, tk.Label)
			}
		}
		sep := " "
		if strings.Contains(c.want, "|") {
			sep = "|"
		}
		if got := strings.Join(labels, sep); got != c.want {
			t.Errorf("UnitTicks(%q, %d) over [%v, %v]: %q, want %q", c.unit, c.decimals, c.lo, c.hi, got, c.want)
		}
	}
}

func TestUnitName(t *testing.T) {
	for unit, want := range map[string]string{"s": "seconds", "Bps": "bytes/s", "reqps": "requests/s", "ops": "per second", "percentunit": "percent", "short": ""} {
		if got := chart.UnitName(unit); got != want {
			t.Errorf("UnitName(%q) = %q, want %q", unit, got, want)
		}
	}
}
