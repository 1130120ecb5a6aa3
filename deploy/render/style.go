package main

import (
	"encoding/json"
	"image/color"
	"regexp"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/fediops/fediops/chart"
)

// fieldCustom is the part of a timeseries panel's fieldConfig.custom the
// pictures follow: steps, stacking, fill, width and the axis label.
type fieldCustom struct {
	AxisLabel         string   `json:"axisLabel"`
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

// styleFor returns the custom style of the series called name: the
// panel's, changed by the overrides that match the name.
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
// where the panel asks for them, the rest as lines; each broken where
// samples are missing (a gap longer than 1.5 steps), as Grafana leaves
// those gaps empty instead of drawing a ramp that never happened.
func addSeries(pl *plot.Plot, series []drawn, step time.Duration) error {
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
		if err := addLine(pl, stacked[i], true, step); err != nil {
			return err
		}
	}
	for _, s := range plain {
		if err := addLine(pl, s, false, step); err != nil {
			return err
		}
	}
	return nil
}

func addLine(pl *plot.Plot, s drawn, fill bool, step time.Duration) error {
	for _, xy := range segments(s.xy, step) {
		l, err := plotter.NewLine(xy)
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
			l.FillColor = chart.Lighter(s.color, op)
		}
		pl.Add(l)
	}
	return nil
}

// segments splits points where samples are missing.
func segments(xys plotter.XYs, step time.Duration) []plotter.XYs {
	var out []plotter.XYs
	var cur plotter.XYs
	gap := 1.5 * step.Seconds()
	for i, p := range xys {
		if i > 0 && p.X-xys[i-1].X > gap {
			out = append(out, cur)
			cur = nil
		}
		cur = append(cur, p)
	}
	return append(out, cur)
}
