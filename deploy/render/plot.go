package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"image/color"
	"math"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/fediops/fediops/chart"
)

// panel is the part of a Grafana panel the pictures follow.
type panel struct {
	Title   string                   `json:"title"`
	Type    string                   `json:"type"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		Expr         string `json:"expr"`
		LegendFormat string `json:"legendFormat"`
	} `json:"targets"`
	FieldConfig struct {
		Defaults  fieldDefaults `json:"defaults"`
		Overrides []override    `json:"overrides"`
	} `json:"fieldConfig"`
	Options struct {
		Legend struct {
			ShowLegend *bool `json:"showLegend"`
		} `json:"legend"`
		GraphMode string `json:"graphMode"`
		ColorMode string `json:"colorMode"`
	} `json:"options"`
}

type fieldDefaults struct {
	Unit     string   `json:"unit"`
	Decimals *int     `json:"decimals"`
	Min      *float64 `json:"min"`
	Max      *float64 `json:"max"`
	Mappings []struct {
		Type    string `json:"type"`
		Options map[string]struct {
			Text  string `json:"text"`
			Color string `json:"color"`
		} `json:"options"`
	} `json:"mappings"`
	Thresholds struct {
		Steps []struct {
			Color string   `json:"color"`
			Value *float64 `json:"value"`
		} `json:"steps"`
	} `json:"thresholds"`
	Custom fieldCustom `json:"custom"`
}

// decimals is the panel's decimals for chart.Format: -1 when it sets none.
func (fd fieldDefaults) decimals() int {
	if fd.Decimals == nil {
		return -1
	}
	return *fd.Decimals
}

// vars stands in for the dashboards' variables: every value selected.
var vars = strings.NewReplacer("$__rate_interval", "15s", "$service", ".*", "$queue", ".*", "$source", ".*", "$check", ".*")

var legendRE = regexp.MustCompile(`\{\{\s*(\w+)\s*\}\}`)

const cellH = 26 // pixels per grid unit of height

// Grafana's named colours.
var namedColors = map[string]color.RGBA{
	"green": {0x73, 0xbf, 0x69, 0xff}, "red": {0xf2, 0x49, 0x5c, 0xff}, "orange": {0xff, 0x98, 0x30, 0xff},
	"yellow": {0xfa, 0xde, 0x2a, 0xff}, "blue": {0x57, 0x94, 0xf2, 0xff}, "purple": {0xb8, 0x77, 0xd9, 0xff},
	"text": {0x20, 0x20, 0x20, 0xff},
}

func init() { plot.DefaultFont.Variant = "Sans" }

// renderDashboard draws every panel of a dashboard where its gridPos puts it,
// from Prometheus range queries over [start, end].
func renderDashboard(ctx context.Context, p *promServer, file, png string, start, end time.Time, width int) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var d struct {
		Title  string  `json:"title"`
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return err
	}
	const header = 34
	rows := 0
	for _, pn := range d.Panels {
		rows = max(rows, pn.GridPos.Y+pn.GridPos.H)
	}
	H := header + rows*cellH
	img := vgimg.NewWith(vgimg.UseWH(vg.Length(width), vg.Length(H)), vgimg.UseDPI(72))
	dc := draw.New(img)
	dc.SetColor(color.RGBA{0xf4, 0xf5, 0xf5, 0xff})
	dc.Fill(dc.Rectangle.Path())
	ts := textStyle(16)
	sub := fmt.Sprintf("%s — demo stack, %s to %s UTC", d.Title, start.UTC().Format("15:04:05"), end.UTC().Format("15:04:05"))
	dc.FillText(ts, vg.Point{X: 10, Y: vg.Length(H - 24)}, sub)
	step := max(time.Second, end.Sub(start)/300)
	colW := float64(width) / 24
	for _, pn := range d.Panels {
		x0 := vg.Length(float64(pn.GridPos.X) * colW)
		x1 := vg.Length(float64(pn.GridPos.X+pn.GridPos.W) * colW)
		top := vg.Length(H - header - pn.GridPos.Y*cellH)
		bottom := vg.Length(H - header - (pn.GridPos.Y+pn.GridPos.H)*cellH)
		cell := draw.Canvas{Canvas: img, Rectangle: vg.Rectangle{Min: vg.Point{X: x0 + 3, Y: bottom + 3}, Max: vg.Point{X: x1 - 3, Y: top - 3}}}
		if pn.Type == "row" {
			dc.FillText(textStyle(14), vg.Point{X: x0 + 6, Y: bottom + 6}, pn.Title)
			continue
		}
		cell.SetColor(color.White)
		cell.Fill(cell.Rectangle.Path())
		var err error
		switch pn.Type {
		case "table":
			err = drawTable(ctx, p, pn, end, cell)
		case "stat":
			err = drawStat(ctx, p, pn, start, end, step, cell)
		case "state-timeline":
			err = drawTimeline(ctx, p, pn, start, end, step, cell)
		default:
			err = drawTimeseries(ctx, p, pn, start, end, step, cell)
		}
		if err != nil {
			return fmt.Errorf("panel %q: %w", pn.Title, err)
		}
	}
	f, err := os.Create(png)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func textStyle(size vg.Length) draw.TextStyle {
	f := plot.DefaultFont
	f.Size = size
	return draw.TextStyle{Color: color.Black, Font: f, Handler: plot.DefaultTextHandler}
}

// named is one series with its legend.
type named struct {
	name string
	series
}

// query runs every target of a panel over [start, end] and names the
// series by their legend format, sorted.
func query(ctx context.Context, p *promServer, pn panel, start, end time.Time, step time.Duration) ([]named, error) {
	var out []named
	for _, tg := range pn.Targets {
		res, err := p.queryRange(ctx, vars.Replace(tg.Expr), start, end, step)
		if err != nil {
			return nil, err
		}
		var part []named
		for _, s := range res {
			if len(s.t) > 0 {
				part = append(part, named{legend(tg.LegendFormat, s.labels), s})
			}
		}
		sort.Slice(part, func(i, j int) bool { return part[i].name < part[j].name })
		out = append(out, part...)
	}
	return out, nil
}

// drawTimeseries draws a time series panel as Grafana does: lines (steps
// for lineInterpolation stepAfter, gaps where samples are missing), the
// y-axis in the panel's unit with its axis label, the legend below the
// plot, never over the lines.
func drawTimeseries(ctx context.Context, p *promServer, pn panel, start, end time.Time, step time.Duration, c draw.Canvas) error {
	res, err := query(ctx, p, pn, start, end, step)
	if err != nil {
		return err
	}
	fd := pn.FieldConfig.Defaults
	pl := plot.New()
	pl.Title.Text = pn.Title
	pl.Title.TextStyle.Font.Size = 12
	pl.X.Tick.Marker = plot.TimeTicks{Format: "15:04:05"}
	pl.X.Tick.Label.Font.Size = 8
	pl.X.Min, pl.X.Max = float64(start.Unix()), float64(end.Unix())
	pl.Y.Tick.Label.Font.Size = 8
	pl.Y.Tick.Marker = mappedTicks{chart.UnitTicks(fd.Unit, fd.decimals()), fd}
	pl.Y.Label.Text = cmp.Or(fd.Custom.AxisLabel, chart.UnitName(fd.Unit))
	pl.Y.Label.TextStyle.Font.Size = 9
	pl.Add(plotter.NewGrid())
	var entries []chart.LegendEntry
	var series []drawn
	for _, s := range res {
		xy := make(plotter.XYs, 0, len(s.t))
		for i := range s.t {
			if !math.IsNaN(s.v[i]) && !math.IsInf(s.v[i], 0) { // 0/0: a gap in Grafana
				xy = append(xy, plotter.XY{X: s.t[i], Y: s.v[i]})
			}
		}
		if len(xy) == 0 {
			continue
		}
		col := chart.Color(len(series))
		series = append(series, drawn{name: s.name, xy: xy, style: pn.styleFor(s.name), color: col})
		entries = append(entries, chart.LegendEntry{Name: s.name, Color: col})
	}
	if err := addSeries(pl, series, step); err != nil {
		return err
	}
	if len(series) == 0 {
		pl.Title.Text += " (no data)"
	}
	// The y range: from 0 (or below) to the highest point, stacks summed.
	lo, hi := 0.0, 0.0
	stack := map[float64]float64{}
	for _, s := range series {
		for _, p := range s.xy {
			y := p.Y
			if s.style.Stacking.Mode == "normal" {
				stack[p.X] += p.Y
				y = stack[p.X]
			}
			lo, hi = math.Min(lo, y), math.Max(hi, y)
		}
	}
	if hi <= lo || fd.decimals() == 0 && hi < 1 {
		hi = lo + 1
	}
	pl.Y.Min, pl.Y.Max = lo, hi*1.05
	if fd.Min != nil {
		pl.Y.Min = *fd.Min
	}
	if fd.Max != nil {
		pl.Y.Max = *fd.Max * 1.05
	}
	show := (pn.Options.Legend.ShowLegend == nil || *pn.Options.Legend.ShowLegend) && len(entries) > 0 && (len(entries) > 1 || entries[0].Name != "")
	area := c
	if show {
		area.Min.Y += chart.DrawLegend(c, entries)
	}
	pl.Draw(area)
	return nil
}

// mappedTicks labels ticks whose value a value mapping names with the
// mapping's text ("ok", "failed"), the others as the panel's unit does.
type mappedTicks struct {
	plot.Ticker
	fd fieldDefaults
}

func (m mappedTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := m.Ticker.Ticks(lo, hi)
	for i := range ts {
		if text, _, ok := mapping(ts[i].Value, m.fd); ok && text != "" && ts[i].Label != "" {
			ts[i].Label = text
		}
	}
	return ts
}

func legend(format string, labels map[string]string) string {
	return legendRE.ReplaceAllStringFunc(format, func(m string) string { return labels[legendRE.FindStringSubmatch(m)[1]] })
}

// mapping is the text and colour a value mapping gives v, if one matches.
func mapping(v float64, fd fieldDefaults) (text, col string, ok bool) {
	for _, m := range fd.Mappings {
		if m.Type != "value" {
			continue
		}
		for k, o := range m.Options {
			if f, err := strconv.ParseFloat(k, 64); err == nil && f == v {
				return o.Text, o.Color, true
			}
		}
	}
	return "", "", false
}

// shown is how a value is shown: its mapping's text and colour when one
// matches, else the formatted value and its threshold colour.
func shown(v float64, fd fieldDefaults) (string, color.RGBA) {
	value := chart.Format(v, fd.Unit, fd.decimals())
	if text, col, ok := mapping(v, fd); ok {
		return cmp.Or(text, value), namedColors[cmp.Or(col, "text")]
	}
	col := namedColors["text"]
	for _, s := range fd.Thresholds.Steps {
		if s.Value == nil || v >= *s.Value {
			col = namedColors[s.Color]
		}
	}
	return value, col
}

// drawStat draws a stat panel as Grafana does: per series its name and
// last value, large, coloured by the thresholds or value mappings (the
// tile itself with colorMode background), over a faint sparkline unless
// graphMode is none.
func drawStat(ctx context.Context, p *promServer, pn panel, start, end time.Time, step time.Duration, c draw.Canvas) error {
	res, err := query(ctx, p, pn, start, end, step)
	if err != nil {
		return err
	}
	fd := pn.FieldConfig.Defaults
	title := panelTitle(c, pn.Title)
	if len(res) == 0 {
		c.FillText(title, vg.Point{X: (c.Min.X + c.Max.X) / 2, Y: (c.Min.Y + c.Max.Y) / 2}, "no data")
		return nil
	}
	if len(res) > 8 {
		res = res[:8]
	}
	area := vg.Rectangle{Min: vg.Point{X: c.Min.X + 4, Y: c.Min.Y + 4}, Max: vg.Point{X: c.Max.X - 4, Y: c.Max.Y - 22}}
	w := (area.Max.X - area.Min.X) / vg.Length(len(res))
	for i, s := range res {
		tile := draw.Canvas{Canvas: c.Canvas, Rectangle: vg.Rectangle{
			Min: vg.Point{X: area.Min.X + vg.Length(i)*w + 2, Y: area.Min.Y}, Max: vg.Point{X: area.Min.X + vg.Length(i+1)*w - 2, Y: area.Max.Y}}}
		text, col := shown(s.v[len(s.v)-1], fd)
		fg := color.Color(col)
		if pn.Options.ColorMode == "none" {
			fg, col = namedColors["text"], namedColors["blue"]
		}
		if pn.Options.ColorMode == "background" {
			tile.SetColor(col)
			tile.Fill(tile.Rectangle.Path())
			fg = color.White
		}
		if pn.Options.GraphMode != "none" && len(s.v) > 1 {
			lo, hi := s.v[0], s.v[0]
			for _, v := range s.v {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
			lo = math.Min(lo, 0)
			span := math.Max(hi-lo, 1e-9)
			x0, x1 := float64(start.Unix()), float64(end.Unix())
			var pts []vg.Point
			for j := range s.t {
				pts = append(pts, vg.Point{
					X: tile.Min.X + vg.Length((s.t[j]-x0)/(x1-x0))*(tile.Max.X-tile.Min.X),
					Y: tile.Min.Y + 2 + vg.Length((s.v[j]-lo)/span)*(tile.Max.Y-tile.Min.Y)*0.45})
			}
			spark := col
			spark.A = 0x90
			tile.StrokeLines(draw.LineStyle{Color: spark, Width: vg.Points(1.2)}, pts)
		}
		big := textStyle(min(28, vg.Length(float64(w)/float64(max(len(text), 2))*1.3)))
		big.Color, big.XAlign, big.YAlign = fg, draw.XCenter, draw.YCenter
		mid := vg.Point{X: (tile.Min.X + tile.Max.X) / 2, Y: (tile.Min.Y+tile.Max.Y)/2 + 2}
		tile.FillText(big, mid, text)
		if s.name != "" {
			small := textStyle(10)
			small.Color, small.XAlign = fg, draw.XCenter
			tile.FillText(small, vg.Point{X: mid.X, Y: tile.Max.Y - 12}, s.name)
		}
	}
	return nil
}

// drawTimeline draws a state-timeline panel: one band per series, each
// interval coloured by the value's mapping (green ok, orange warn, red
// fail), white where there is no sample; the mapping's legend below.
func drawTimeline(ctx context.Context, p *promServer, pn panel, start, end time.Time, step time.Duration, c draw.Canvas) error {
	res, err := query(ctx, p, pn, start, end, step)
	if err != nil {
		return err
	}
	fd := pn.FieldConfig.Defaults
	title := panelTitle(c, pn.Title)
	var entries []chart.LegendEntry
	for _, m := range fd.Mappings {
		keys := make([]string, 0, len(m.Options))
		for k := range m.Options {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			entries = append(entries, chart.LegendEntry{Name: m.Options[k].Text, Color: namedColors[m.Options[k].Color]})
		}
	}
	legendH := chart.DrawLegend(c, entries)
	label := textStyle(9)
	labelW := vg.Length(0)
	for _, s := range res {
		labelW = max(labelW, label.Width(s.name))
	}
	plotArea := vg.Rectangle{Min: vg.Point{X: c.Min.X + labelW + 12, Y: c.Min.Y + legendH + 14}, Max: vg.Point{X: c.Max.X - 10, Y: c.Max.Y - 24}}
	x0, x1 := float64(start.Unix()), float64(end.Unix())
	xOf := func(t float64) vg.Length {
		return plotArea.Min.X + vg.Length((t-x0)/(x1-x0))*(plotArea.Max.X-plotArea.Min.X)
	}
	ticks := plot.TimeTicks{Format: "15:04:05"}.Ticks(x0, x1)
	tick := textStyle(8)
	tick.XAlign = draw.XCenter
	grid := draw.LineStyle{Color: color.Gray{0xdd}, Width: vg.Points(0.5)}
	for _, t := range ticks {
		if t.Label == "" {
			continue
		}
		c.StrokeLine2(grid, xOf(t.Value), plotArea.Min.Y, xOf(t.Value), plotArea.Max.Y)
		c.FillText(tick, vg.Point{X: xOf(t.Value), Y: plotArea.Min.Y - 11}, t.Label)
	}
	if len(res) == 0 {
		c.FillText(title, vg.Point{X: (c.Min.X + c.Max.X) / 2, Y: (c.Min.Y + c.Max.Y) / 2}, "no data")
		return nil
	}
	rowH := (plotArea.Max.Y - plotArea.Min.Y) / vg.Length(len(res))
	label.YAlign = draw.YCenter
	for i, s := range res {
		y1 := plotArea.Max.Y - vg.Length(i)*rowH
		y0 := y1 - rowH*0.8
		c.FillText(label, vg.Point{X: c.Min.X + 6, Y: (y0 + y1) / 2}, s.name)
		// One rectangle per run of equal values (mergeValues), none where
		// samples are missing.
		for j := 0; j < len(s.t); {
			k := j
			for k+1 < len(s.t) && s.v[k+1] == s.v[j] && s.t[k+1]-s.t[k] <= 1.5*step.Seconds() {
				k++
			}
			next := s.t[k] + step.Seconds()
			if k+1 < len(s.t) && s.t[k+1]-s.t[k] <= 1.5*step.Seconds() {
				next = s.t[k+1]
			}
			_, col := shown(s.v[j], fd)
			r := vg.Rectangle{Min: vg.Point{X: xOf(s.t[j]), Y: y0}, Max: vg.Point{X: xOf(math.Min(next, x1)), Y: y1}}
			c.SetColor(col)
			c.Fill(r.Path())
			j = k + 1
		}
	}
	return nil
}

// drawTable draws a table panel as Grafana's merge transformation shows it:
// one row per series key (the labels but __name__), one column per query,
// the values at end.
func drawTable(ctx context.Context, p *promServer, pn panel, end time.Time, c draw.Canvas) error {
	cols := []string{"source"}
	rows := map[string][]string{}
	for i, tg := range pn.Targets {
		name := tg.LegendFormat
		if name == "" {
			name = fmt.Sprintf("query %d", i+1)
		}
		cols = append(cols, name)
		res, err := p.queryRange(ctx, vars.Replace(tg.Expr), end.Add(-time.Minute), end, 15*time.Second)
		if err != nil {
			return err
		}
		for _, s := range res {
			if len(s.v) == 0 {
				continue
			}
			key := s.labels["source"]
			if rows[key] == nil {
				rows[key] = make([]string, len(pn.Targets))
			}
			rows[key][i] = cellValue(name, s.v[len(s.v)-1])
		}
	}
	keys := make([]string, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	ts := textStyle(12)
	title := textStyle(13)
	w := (c.Max.X - c.Min.X - 20) / vg.Length(len(cols))
	y := c.Max.Y - 18
	c.FillText(title, vg.Point{X: c.Min.X + 10, Y: y}, pn.Title)
	y -= 22
	for i, h := range cols {
		c.FillText(title, vg.Point{X: c.Min.X + 10 + vg.Length(i)*w, Y: y}, h)
	}
	for _, k := range keys {
		y -= 18
		if y < c.Min.Y+4 {
			break
		}
		c.FillText(ts, vg.Point{X: c.Min.X + 10, Y: y}, k)
		for i, v := range rows[k] {
			c.FillText(ts, vg.Point{X: c.Min.X + 10 + vg.Length(i+1)*w, Y: y}, v)
		}
	}
	return nil
}

func cellValue(column string, v float64) string {
	switch column {
	case "ok":
		if v == 1 {
			return "yes"
		}
		return "FAILED"
	case "age", "duration":
		return chart.Format(v, "s", -1)
	case "bytes":
		return chart.Format(v, "bytes", -1)
	}
	return chart.Format(v, "", -1)
}

// panelTitle writes a panel's title centred at its top and returns the
// style, for a "no data" in the middle.
func panelTitle(c draw.Canvas, text string) draw.TextStyle {
	title := textStyle(12)
	title.XAlign = draw.XCenter
	c.FillText(title, vg.Point{X: (c.Min.X + c.Max.X) / 2, Y: c.Max.Y - 15}, text)
	return title
}
