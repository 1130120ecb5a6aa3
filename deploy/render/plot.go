package main

import (
	"context"
	"encoding/json"
	"fmt"
	"image/color"
	"math"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/fediops/fediops/chart"
)

type panel struct {
	Title   string                   `json:"title"`
	Type    string                   `json:"type"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		Expr         string `json:"expr"`
		LegendFormat string `json:"legendFormat"`
	} `json:"targets"`
	FieldConfig struct {
		Defaults struct {
			Unit   string      `json:"unit"`
			Custom fieldCustom `json:"custom"`
		} `json:"defaults"`
		Overrides []override `json:"overrides"`
	} `json:"fieldConfig"`
}

// vars stands in for the dashboards' variables: every value selected.
var vars = strings.NewReplacer("$__rate_interval", "15s", "$service", ".*", "$queue", ".*", "$source", ".*", "$check", ".*")

var legendRE = regexp.MustCompile(`\{\{\s*(\w+)\s*\}\}`)

const cellH = 26 // pixels per grid unit of height

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
	font := plot.DefaultFont
	font.Size = 16
	ts := draw.TextStyle{Color: color.Black, Font: font, Handler: plot.DefaultTextHandler}
	ts.Font.Variant = "Sans"
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
			rs := ts
			rs.Font.Size = 14
			dc.FillText(rs, vg.Point{X: x0 + 6, Y: bottom + 6}, pn.Title)
			continue
		}
		cell.SetColor(color.White)
		cell.Fill(cell.Rectangle.Path())
		if pn.Type == "table" {
			if err := drawTable(ctx, p, pn, end, cell, ts); err != nil {
				return fmt.Errorf("panel %q: %w", pn.Title, err)
			}
			continue
		}
		pl, entries, err := panelPlot(ctx, p, pn, start, end, step)
		if err != nil {
			return fmt.Errorf("panel %q: %w", pn.Title, err)
		}
		chart.DrawWithLegend(pl, entries, cell)
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

func panelPlot(ctx context.Context, p *promServer, pn panel, start, end time.Time, step time.Duration) (*plot.Plot, []chart.LegendEntry, error) {
	pl := plot.New()
	pl.Title.Text = pn.Title
	pl.Title.TextStyle.Font.Size = 12
	pl.X.Tick.Marker = plot.TimeTicks{Format: "15:04:05"}
	pl.X.Tick.Label.Font.Size = 8
	pl.Y.Tick.Label.Font.Size = 8
	pl.Legend.TextStyle.Font.Size = 8
	chart.UnitAxis(pl, pn.FieldConfig.Defaults.Unit)
	pl.Add(plotter.NewGrid())
	var series []drawn
	var entries []chart.LegendEntry
	var last []string
	for _, tg := range pn.Targets {
		res, err := p.queryRange(ctx, vars.Replace(tg.Expr), start, end, step)
		if err != nil {
			return nil, nil, err
		}
		sort.Slice(res, func(i, j int) bool {
			return legend(tg.LegendFormat, res[i].labels) < legend(tg.LegendFormat, res[j].labels)
		})
		for _, s := range res {
			if len(s.t) == 0 {
				continue
			}
			xy := make(plotter.XYs, 0, len(s.t))
			for i := range s.t {
				if !math.IsNaN(s.v[i]) && !math.IsInf(s.v[i], 0) { // 0/0: a gap in Grafana
					xy = append(xy, plotter.XY{X: s.t[i], Y: s.v[i]})
				}
			}
			if len(xy) == 0 {
				continue
			}
			name := legend(tg.LegendFormat, s.labels)
			c := chart.Color(len(series))
			series = append(series, drawn{name: name, xy: xy, style: pn.styleFor(name), color: c})
			if name != "" && len(pn.Targets)+len(res) > 2 && len(entries) < 10 {
				entries = append(entries, chart.LegendEntry{Name: name, Color: c})
			}
			last = append(last, strings.TrimSpace(name+" "+format(s.v[len(s.v)-1], pn.FieldConfig.Defaults.Unit)))
		}
	}
	if err := addSeries(pl, series); err != nil {
		return nil, nil, err
	}
	if pn.Type == "stat" && len(last) > 0 { // the value a stat panel shows, in its title
		if len(last) > 6 {
			last = append(last[:6], "…")
		}
		pl.Title.Text += ": " + strings.Join(last, ", ")
		entries = nil
	}
	if len(series) == 0 {
		pl.Title.Text += " (no data)"
	}
	if pl.Y.Min > 0 && !math.IsInf(pl.Y.Min, 0) {
		pl.Y.Min = 0
	}
	return pl, entries, nil
}

func legend(format string, labels map[string]string) string {
	return legendRE.ReplaceAllStringFunc(format, func(m string) string { return labels[legendRE.FindStringSubmatch(m)[1]] })
}

func format(v float64, unit string) string {
	switch unit {
	case "percentunit":
		return fmt.Sprintf("%.0f%%", v*100)
	case "s":
		if math.Abs(v) < 60 {
			return fmt.Sprintf("%.1fs", v)
		}
		return (time.Duration(v * float64(time.Second))).Round(time.Second).String()
	case "bytes":
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	}
	if v == math.Trunc(v) && math.Abs(v) < 1e9 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

// drawTable draws a table panel as Grafana's merge transformation shows it:
// one row per series key (the labels but __name__), one column per query,
// the values at end.
func drawTable(ctx context.Context, p *promServer, pn panel, end time.Time, c draw.Canvas, ts draw.TextStyle) error {
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
	ts.Font.Size = 12
	title := ts
	title.Font.Size = 13
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
		return format(v, "s")
	case "bytes":
		return fmt.Sprintf("%.1f KiB", v/1024)
	}
	return format(v, "")
}
