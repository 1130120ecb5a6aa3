package chart

import (
	"fmt"
	"image/color"
	"math"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Color is the i-th colour of the pictures' palette (plotutil's, as
// Grafana's classic palette: red, green, blue, orange ...).
func Color(i int) color.Color { return plotutil.Color(i) }

// Lighter mixes c with white: opacity 1 is c, 0 is white. Filled areas
// are drawn in a lighter shade of their line's colour.
func Lighter(c color.Color, opacity float64) color.Color {
	r, g, b, _ := c.RGBA()
	mix := func(v uint32) uint8 { return uint8(float64(v>>8)*opacity + 255*(1-opacity)) }
	return color.RGBA{mix(r), mix(g), mix(b), 0xff}
}

// UnitAxis labels pl's Y axis in a Grafana unit: durations for s, binary
// sizes for bytes (and per second for Bps), percentages for percentunit, a
// rate word beside plain numbers for reqps and ops, and the word itself
// for any other unit ("connections").
func UnitAxis(pl *plot.Plot, unit string) {
	pl.Y.Tick.Marker = unitTicks{unit}
	switch unit {
	case "reqps":
		pl.Y.Label.Text = "requests/s"
	case "ops":
		pl.Y.Label.Text = "per second"
	case "", "none", "short", "s", "Bps", "bytes", "percentunit":
	default:
		pl.Y.Label.Text = unit
	}
	pl.Y.Label.TextStyle.Font.Size = 8
}

type unitTicks struct{ unit string }

func (u unitTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = TickLabel(ticks[i].Value, u.unit)
		}
	}
	return ticks
}

// TickLabel writes v in unit as an axis tick says it: 250ms, 1.5s, 2m0s;
// 1.5 MiB; 12%; 0.25, 0.004.
func TickLabel(v float64, unit string) string {
	switch unit {
	case "s":
		switch {
		case v == 0:
			return "0"
		case math.Abs(v) < 1:
			return trimZeros(fmt.Sprintf("%.1f", v*1000)) + "ms"
		case math.Abs(v) < 120:
			return trimZeros(fmt.Sprintf("%.1f", v)) + "s"
		}
		return time.Duration(v * float64(time.Second)).Round(time.Second).String()
	case "Bps":
		return TickLabel(v, "bytes") + "/s"
	case "bytes":
		for _, u := range []struct {
			div  float64
			name string
		}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
			if math.Abs(v) >= u.div {
				return trimZeros(fmt.Sprintf("%.1f", v/u.div)) + " " + u.name
			}
		}
		return fmt.Sprintf("%.0f B", v)
	case "percentunit":
		return trimZeros(fmt.Sprintf("%.1f", v*100)) + "%"
	}
	switch {
	case v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) < 0.1: // 0.004, not 0
		return fmt.Sprintf("%.2g", v)
	}
	return trimZeros(fmt.Sprintf("%.2f", v))
}

func trimZeros(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// LegendEntry is one name and colour of a legend.
type LegendEntry struct {
	Name  string
	Color color.Color
}

// DrawWithLegend draws pl in c with the legend under the plot, as
// Grafana's bottom legend: entries side by side, wrapped onto as many
// lines as they need. It returns the part of c the plot took, for
// pl.DataCanvas and pl.Transforms.
func DrawWithLegend(pl *plot.Plot, entries []LegendEntry, c draw.Canvas) draw.Canvas {
	ts := pl.Legend.TextStyle
	ts.Font.Size = 8
	lineH := vg.Length(11)
	width := c.Max.X - c.Min.X - 12
	// Lay the entries out in lines.
	var lines [][]LegendEntry
	x := vg.Length(0)
	for _, e := range entries {
		w := 14 + ts.Rectangle(e.Name).Max.X + 10
		if len(lines) == 0 || x+w > width {
			lines = append(lines, nil)
			x = 0
		}
		lines[len(lines)-1] = append(lines[len(lines)-1], e)
		x += w
	}
	strip := vg.Length(len(lines))*lineH + 2
	if len(entries) == 0 {
		strip = 0
	}
	plotArea := draw.Canvas{Canvas: c.Canvas, Rectangle: vg.Rectangle{Min: vg.Point{X: c.Min.X, Y: c.Min.Y + strip}, Max: c.Max}}
	pl.Draw(plotArea)
	y := c.Min.Y + strip - lineH
	for _, line := range lines {
		x := c.Min.X + 8
		for _, e := range line {
			c.StrokeLine2(draw.LineStyle{Color: e.Color, Width: vg.Points(2.5)}, x, y+4, x+10, y+4)
			c.FillText(ts, vg.Point{X: x + 14, Y: y}, e.Name)
			x += 14 + ts.Rectangle(e.Name).Max.X + 10
		}
		y -= lineH
	}
	return plotArea
}
