package main

import (
	"encoding/json"
	"fmt"
	"image/color"
	"math"
	"regexp"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// fieldCustom is the part of a timeseries panel's fieldConfig.custom the
// pictures follow: steps, stacking, fill and width.
type fieldCustom struct {
	LineInterpolation string   `json:"lineInterpolation"`
	FillOpacity       *float64 `json:"fillOpacity"`
	LineWidth         *float64 `json:"lineWidth"`
	Stacking          struct {
		Mode string `json:"mode"`
	} `json:"stacking"`
}

// override is a fieldConfig override matched by series name (byName) or
// name pattern (byRegexp), as Grafana applies it.
type override struct {
	Matcher struct {
		ID      string `json:"id"`
		Options string `json:"options"`
	} `json:"matcher"`
	Properties []struct {
		ID    string          `json:"id"`
		Value json.RawMessage `json:"value"`
	} `json:"properties"`
}

// styleFor returns the custom style of the series called name.
func (pn panel) styleFor(name string) fieldCustom {
	st := pn.FieldConfig.Defaults.Custom
	for _, o := range pn.FieldConfig.Overrides {
		match := false
		switch o.Matcher.ID {
		case "byName":
			match = o.Matcher.Options == name
		case "byRegexp":
			re, err := regexp.Compile("^(?:" + o.Matcher.Options + ")$")
			match = err == nil && re.MatchString(name)
		}
		if !match {
			continue
		}
		for _, p := range o.Properties {
			switch p.ID {
			case "custom.lineInterpolation":
				json.Unmarshal(p.Value, &st.LineInterpolation)
			case "custom.stacking":
				json.Unmarshal(p.Value, &st.Stacking)
			case "custom.fillOpacity":
				var v float64
				if json.Unmarshal(p.Value, &v) == nil {
					st.FillOpacity = &v
				}
			case "custom.lineWidth":
				var v float64
				if json.Unmarshal(p.Value, &v) == nil {
					st.LineWidth = &v
				}
			}
		}
	}
	return st
}

// drawn is one series ready to draw.
type drawn struct {
	name  string
	xy    plotter.XYs
	style fieldCustom
	color color.Color
}

// addSeries adds the series to pl as Grafana draws them: stacked series on
// top of each other (filled, in a lighter shade of their colour), steps
// where the panel asks for them, the rest as lines.
func addSeries(pl *plot.Plot, series []drawn) error {
	// Stack in legend order: each stacked series adds to the ones before.
	cum := map[float64]float64{}
	var stacked, plain []drawn
	for _, s := range series {
		if s.style.Stacking.Mode != "normal" {
			plain = append(plain, s)
			continue
		}
		xy := make(plotter.XYs, len(s.xy))
		for i, p := range s.xy {
			cum[p.X] += p.Y
			xy[i] = plotter.XY{X: p.X, Y: cum[p.X]}
		}
		s.xy = xy
		stacked = append(stacked, s)
	}
	// The highest area first, so that the ones below paint over it.
	for i := len(stacked) - 1; i >= 0; i-- {
		if err := addLine(pl, stacked[i], true); err != nil {
			return err
		}
	}
	for _, s := range plain {
		if err := addLine(pl, s, false); err != nil {
			return err
		}
	}
	return nil
}

func addLine(pl *plot.Plot, s drawn, fill bool) error {
	l, err := plotter.NewLine(s.xy)
	if err != nil {
		return err
	}
	l.Color = s.color
	l.Width = vg.Points(1.5)
	if s.style.LineWidth != nil && *s.style.LineWidth >= 2 {
		l.Width = vg.Points(2.5)
	}
	if s.style.LineInterpolation == "stepAfter" {
		l.StepStyle = plotter.PostStep
	}
	if fill {
		op := 0.6
		if s.style.FillOpacity != nil {
			op = *s.style.FillOpacity / 100
		}
		l.FillColor = lighter(s.color, op)
	}
	pl.Add(l)
	return nil
}

// lighter mixes c with white: opacity 1 is c, 0 is white.
func lighter(c color.Color, opacity float64) color.Color {
	r, g, b, _ := c.RGBA()
	mix := func(v uint32) uint8 { return uint8(float64(v>>8)*opacity + 255*(1-opacity)) }
	return color.RGBA{mix(r), mix(g), mix(b), 0xff}
}

func seriesColor(i int) color.Color { return plotutil.Color(i) }

// unitAxis labels the Y axis in the panel's unit: durations for s, binary
// sizes for bytes (and per second for Bps), percentages for percentunit, a
// rate word beside plain numbers for reqps and ops.
func unitAxis(pl *plot.Plot, unit string) {
	pl.Y.Tick.Marker = unitTicks{unit}
	switch unit {
	case "reqps":
		pl.Y.Label.Text = "requests/s"
	case "ops":
		pl.Y.Label.Text = "per second"
	}
	pl.Y.Label.TextStyle.Font.Size = 8
}

type unitTicks struct{ unit string }

func (u unitTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = tickLabel(ticks[i].Value, u.unit)
		}
	}
	return ticks
}

func tickLabel(v float64, unit string) string {
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
		return tickLabel(v, "bytes") + "/s"
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
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return trimZeros(fmt.Sprintf("%.2f", v))
}

func trimZeros(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// legendEntry is one name and colour of a panel's legend.
type legendEntry struct {
	name  string
	color color.Color
}

// drawPanel draws pl in c with the legend under the plot, as Grafana's
// bottom legend: entries side by side, wrapped onto as many lines as
// they need.
func drawPanel(pl *plot.Plot, entries []legendEntry, c draw.Canvas) {
	ts := pl.Legend.TextStyle
	ts.Font.Size = 8
	lineH := vg.Length(11)
	width := c.Max.X - c.Min.X - 12
	// Lay the entries out in lines.
	var lines [][]legendEntry
	x := vg.Length(0)
	for _, e := range entries {
		w := 14 + ts.Rectangle(e.name).Max.X + 10
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
			c.StrokeLine2(draw.LineStyle{Color: e.color, Width: vg.Points(2.5)}, x, y+4, x+10, y+4)
			c.FillText(ts, vg.Point{X: x + 14, Y: y}, e.name)
			x += 14 + ts.Rectangle(e.name).Max.X + 10
		}
		y -= lineH
	}
}
