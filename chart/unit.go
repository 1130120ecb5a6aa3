package chart

import (
	"math"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
)

// Format writes v in a Grafana unit as a dashboard shows it, with a space
// between the number and the unit as Grafana writes them:
//
//   - s: 4 ms, 250 ms, 1.5 s, 1.5 min, 2 h (and µs, ns below a millisecond)
//   - bytes: 512 B, 1.5 KiB, 3.5 GiB (binary steps); Bps the same per second
//   - percentunit: 0.125 is 12.5%
//   - ops: 2.5/s; reqps: 40 req/s
//   - anything else (short, none, "" or a word): a plain number, 12.3 K
//     from ten thousand up and 1.2 M from a million up
//
// decimals is the number of digits after the point, as a panel's decimals
// setting gives them; -1 means automatic: three significant digits at
// most, without trailing zeros (0.004, 12.5, 250). Plain numbers are
// scaled to K and M only with automatic decimals, so that a count with
// decimals 0 keeps all its digits.
func Format(v float64, unit string, decimals int) string {
	switch unit {
	case "s":
		return seconds(v, decimals)
	case "bytes":
		return binary(v, decimals)
	case "Bps":
		return binary(v, decimals) + "/s"
	case "percentunit":
		return number(v*100, decimals) + "%"
	case "ops":
		return short(v, decimals) + "/s"
	case "reqps":
		return short(v, decimals) + " req/s"
	}
	return short(v, decimals)
}

// UnitName is the word for a Grafana unit on an axis ("seconds",
// "requests/s"), or "" for plain numbers.
func UnitName(unit string) string {
	switch unit {
	case "s":
		return "seconds"
	case "bytes":
		return "bytes"
	case "Bps":
		return "bytes/s"
	case "ops":
		return "per second"
	case "reqps":
		return "requests/s"
	case "percentunit":
		return "percent"
	}
	return ""
}

// UnitTicks returns the tick marker of an axis in a Grafana unit: ticks at
// round numbers of the unit shown (binary steps for bytes and Bps,
// minutes and hours for long durations), labelled by Format with
// decimals. With decimals 0 the axis counts things: only whole numbers
// are labelled, every one of them over a range of 8 or less.
func UnitTicks(unit string, decimals int) plot.Ticker {
	return unitTicks{unit: unit, decimals: decimals}
}

type unitTicks struct {
	unit     string
	decimals int
}

func (u unitTicks) Ticks(lo, hi float64) []plot.Tick {
	count := u.decimals == 0
	if count && hi-lo <= 8 {
		var ts []plot.Tick
		for v := math.Ceil(lo); v <= hi; v++ {
			ts = append(ts, plot.Tick{Value: v, Label: Format(v, u.unit, u.decimals)})
		}
		return ts
	}
	scale := 1.0
	top := math.Max(math.Abs(lo), math.Abs(hi))
	switch u.unit {
	case "bytes", "Bps":
		for top/scale >= 1024 {
			scale *= 1024
		}
	case "s":
		switch {
		case top >= 2*3600:
			scale = 3600
		case top >= 2*60:
			scale = 60
		}
	}
	ts := plot.DefaultTicks{}.Ticks(lo/scale, hi/scale)
	for i := range ts {
		ts[i].Value *= scale
		if ts[i].Label == "" {
			continue
		}
		if count && ts[i].Value != math.Trunc(ts[i].Value) {
			ts[i].Label = ""
			continue
		}
		ts[i].Label = Format(ts[i].Value, u.unit, u.decimals)
	}
	return ts
}

// seconds writes a duration in seconds in the largest unit under it.
func seconds(v float64, decimals int) string {
	av := math.Abs(v)
	switch {
	case av == 0 || math.IsNaN(v) || math.IsInf(v, 0):
		return number(v, decimals) + " s"
	case av < 1e-6:
		return number(v*1e9, decimals) + " ns"
	case av < 1e-3:
		return number(v*1e6, decimals) + " µs"
	case av < 1:
		return number(v*1e3, decimals) + " ms"
	case av < 60:
		return number(v, decimals) + " s"
	case av < 3600:
		return number(v/60, decimals) + " min"
	}
	return number(v/3600, decimals) + " h"
}

// binary writes a size in bytes in binary steps of 1024.
func binary(v float64, decimals int) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	i := 0
	for math.Abs(v) >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return number(v, decimals) + " " + units[i]
}

// short writes a plain number, in thousands (K) from ten thousand and in
// millions (M) from a million when the decimals are automatic.
func short(v float64, decimals int) string {
	switch av := math.Abs(v); {
	case decimals < 0 && av >= 1e6:
		return number(v/1e6, decimals) + " M"
	case decimals < 0 && av >= 1e4:
		return number(v/1e3, decimals) + " K"
	}
	return number(v, decimals)
}

// number writes x with decimals digits after the point, or with three
// significant digits at most and no trailing zeros when decimals is -1.
func number(x float64, decimals int) string {
	if decimals >= 0 {
		return strconv.FormatFloat(x, 'f', decimals, 64)
	}
	ax := math.Abs(x)
	if ax == math.Trunc(ax) || math.IsInf(x, 0) || math.IsNaN(x) {
		return strconv.FormatFloat(x, 'f', 0, 64)
	}
	d := min(10, max(0, 2-int(math.Floor(math.Log10(ax)))))
	s := strconv.FormatFloat(x, 'f', d, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}
