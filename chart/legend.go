package chart

import (
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// LegendEntry is one name and colour of a legend.
type LegendEntry struct {
	Name  string
	Color color.Color
}

// Legend layout, in points: the text size, a row's height, the sample
// line's length and the gap before its name, the room between entries,
// and the margins left and right.
const (
	legendFont   = 9
	legendRowH   = 13
	legendSample = 14
	legendGap    = 4
	legendPad    = 12
	legendMargin = 8
)

// DrawLegend draws a legend at the bottom of c as Grafana's bottom legend
// does: each entry a short line in its colour and its name, side by side,
// wrapped onto as many rows as the width of c needs. It returns the height
// the rows took (0 without entries): the plot goes above it, in c with
// Min.Y raised by that much.
func DrawLegend(c draw.Canvas, entries []LegendEntry) vg.Length {
	if len(entries) == 0 {
		return 0
	}
	ts := legendText()
	width := func(e LegendEntry) vg.Length { return legendSample + legendGap + ts.Width(e.Name) + legendPad }
	var rows [][]LegendEntry
	var x vg.Length
	avail := c.Max.X - c.Min.X - 2*legendMargin
	for _, e := range entries {
		w := width(e)
		if len(rows) == 0 || x+w > avail {
			rows = append(rows, nil)
			x = 0
		}
		rows[len(rows)-1] = append(rows[len(rows)-1], e)
		x += w
	}
	h := vg.Length(len(rows)*legendRowH + 4)
	for i, row := range rows {
		y := c.Min.Y + h - vg.Length((i+1)*legendRowH)
		x := c.Min.X + legendMargin
		for _, e := range row {
			c.StrokeLine2(draw.LineStyle{Color: e.Color, Width: vg.Points(2.5)}, x, y+4, x+legendSample, y+4)
			c.FillText(ts, vg.Point{X: x + legendSample + legendGap, Y: y}, e.Name)
			x += width(e)
		}
	}
	return h
}

// legendText is the legend's text style: the pictures' sans-serif font.
func legendText() draw.TextStyle {
	f := plot.DefaultFont
	f.Variant = "Sans"
	f.Size = legendFont
	return draw.TextStyle{Color: color.Black, Font: f, Handler: plot.DefaultTextHandler}
}
