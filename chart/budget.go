package chart

import (
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Budget is a picture of database connections against a cluster's
// connection limit: one column per sizing, each a stack of the
// connections its parts may open, and one line per cluster size.
type Budget struct {
	// Title is written over the plot.
	Title string
	// Kinds are the parts that hold connections, in legend order: each
	// has its colour, and its About in the legend says what sets its
	// connections ("web droplets × WEB_CONCURRENCY × DB_POOL").
	Kinds []BudgetKind
	// Columns are drawn left to right, each a stack of Segments.
	Columns []BudgetColumn
	// Limits are the connection limits to draw, one line each.
	Limits []BudgetLimit
	// LimitAbout, when set, is the legend's entry for the limit lines
	// ("limit: 25 per GiB of RAM − 3, DigitalOcean's rule").
	LimitAbout string
	// Width and Height are the picture's size in pixels; 0 means 270 per
	// column and 200 more (at least 640), and 600.
	Width, Height int
}

// BudgetKind is one part of the instance that holds connections.
type BudgetKind struct {
	Name  string // "web", "Sidekiq", "streaming", "direct"
	About string // the legend's text; "" means Name
	// Color is the kind's colour; nil means the palette's, in order,
	// leaving out the red of the limit lines.
	Color color.Color
}

// BudgetColumn is one sizing: its label under the column (lines split on
// "\n") and its segments, bottom to top.
type BudgetColumn struct {
	Label    string
	Segments []Segment
}

// Segment is the connections of one kind in a column, and the text beside
// it: the variable that sets it, with its values
// ("2 × WEB_CONCURRENCY×DB_POOL 3×9").
type Segment struct {
	Kind  string // one of Budget.Kinds' names
	Conns int
	Label string
}

// BudgetLimit is one cluster's connection limit: a line at Conns, named
// by Name ("4 GiB") in the right margin.
type BudgetLimit struct {
	Name  string
	Conns int
}

// LimitColor is the colour of the limit lines.
var LimitColor color.Color = color.RGBA{0xb4, 0x1e, 0x1e, 0xff}

// ErrBadBudget is wrapped by Budget's errors; the message names the field.
var ErrBadBudget = errors.New("invalid budget picture")

// Validate reports the first field that cannot be drawn.
func (b Budget) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrBadBudget, fmt.Sprintf(format, a...))
	}
	if len(b.Columns) == 0 {
		return bad("Columns: none")
	}
	if b.Width < 0 || b.Height < 0 || b.Width > 0 && b.Width < 400 || b.Height > 0 && b.Height < 300 {
		return bad("Width and Height: %dx%d pixels, want at least 400x300 (0 for the default)", b.Width, b.Height)
	}
	kinds := map[string]bool{}
	for i, k := range b.Kinds {
		if k.Name == "" || kinds[k.Name] {
			return bad("Kinds[%d]: name %q empty or repeated", i, k.Name)
		}
		kinds[k.Name] = true
	}
	for i, c := range b.Columns {
		for j, s := range c.Segments {
			if !kinds[s.Kind] {
				return bad("Columns[%d].Segments[%d]: kind %q is not in Kinds", i, j, s.Kind)
			}
			if s.Conns < 0 {
				return bad("Columns[%d].Segments[%d]: %d connections", i, j, s.Conns)
			}
		}
	}
	for i, l := range b.Limits {
		if l.Conns < 1 {
			return bad("Limits[%d]: limit %d, want 1 or more", i, l.Conns)
		}
	}
	return nil
}

// Total is the connections of column i.
func (b Budget) Total(i int) int {
	n := 0
	for _, s := range b.Columns[i].Segments {
		n += s.Conns
	}
	return n
}

// Verdict says how column i fits the limits: the smallest limit that holds
// it and what is left ("fits 4 GiB, 43 spare"), or by how much the largest
// is passed ("over 8 GiB by 12"); "" without limits.
func (b Budget) Verdict(i int) (string, bool) {
	total := b.Total(i)
	var best, largest *BudgetLimit
	for j := range b.Limits {
		l := &b.Limits[j]
		if l.Conns >= total && (best == nil || l.Conns < best.Conns) {
			best = l
		}
		if largest == nil || l.Conns > largest.Conns {
			largest = l
		}
	}
	switch {
	case best != nil:
		return fmt.Sprintf("fits %s, %d spare", best.Name, best.Conns-total), true
	case largest != nil:
		return fmt.Sprintf("over %s by %d", largest.Name, total-largest.Conns), false
	}
	return "", true
}

// WritePNG draws the picture and writes it as PNG.
func (b Budget) WritePNG(w io.Writer) error {
	if err := b.Validate(); err != nil {
		return err
	}
	width, height := b.Width, b.Height
	if width == 0 {
		width = max(640, 200+270*len(b.Columns))
	}
	if height == 0 {
		height = 600
	}
	img := vgimg.NewWith(vgimg.UseWH(vg.Length(width), vg.Length(height)), vgimg.UseDPI(72))
	dc := draw.New(img)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	b.draw(dc)
	_, err := vgimg.PngCanvas{Canvas: img}.WriteTo(w)
	return err
}

// kindColors gives each kind its colour: its own, else the palette's in
// order without red (index 0), which the limit lines use.
func (b Budget) kindColors() map[string]color.Color {
	out := map[string]color.Color{}
	for i, k := range b.Kinds {
		out[k.Name] = k.Color
		if k.Color == nil {
			out[k.Name] = Color(i + 1)
		}
	}
	return out
}

// Layout in data units: column i spans [i-0.5, i+0.5]; its bar the left
// part, its segment labels the right part.
const (
	barLeft  = -0.40
	barRight = -0.14
	labelAt  = -0.11
	// margin is the room right of the last column for the limits' names.
	margin = 0.28
)

func (b Budget) draw(dc draw.Canvas) {
	colors := b.kindColors()
	ymax := 0
	for i := range b.Columns {
		ymax = max(ymax, b.Total(i))
	}
	for _, l := range b.Limits {
		ymax = max(ymax, l.Conns)
	}
	pl := plot.New()
	sans := func(f *font.Font) { f.Variant = "Sans" }
	for _, f := range []*font.Font{&pl.Title.TextStyle.Font, &pl.X.Tick.Label.Font, &pl.Y.Tick.Label.Font, &pl.Y.Label.TextStyle.Font, &pl.Legend.TextStyle.Font} {
		sans(f)
	}
	pl.Title.Text = b.Title
	pl.Title.TextStyle.Font.Size = 14
	pl.Title.Padding = vg.Points(8)
	pl.X.Min, pl.X.Max = -0.5, float64(len(b.Columns))-0.5+margin
	pl.Y.Min, pl.Y.Max = 0, float64(ymax)*1.15+1
	var ticks []plot.Tick
	for i, c := range b.Columns {
		ticks = append(ticks, plot.Tick{Value: float64(i) + (barLeft+barRight)/2, Label: c.Label})
	}
	pl.X.Tick.Marker = plot.ConstantTicks(ticks)
	pl.X.Tick.Label.Font.Size = 10
	pl.X.Tick.Length = 0
	pl.Y.Tick.Label.Font.Size = 9
	pl.Y.Tick.Marker = UnitTicks("", 0)
	pl.Y.Label.Text = "database connections"
	pl.Y.Label.TextStyle.Font.Size = 10
	grid := plotter.NewGrid()
	grid.Vertical.Color = nil
	pl.Add(grid)

	var entries []LegendEntry
	for _, k := range b.Kinds {
		entries = append(entries, LegendEntry{Name: strings.TrimSpace(k.Name + ": " + k.About), Color: colors[k.Name]})
		if k.About == "" {
			entries[len(entries)-1].Name = k.Name
		}
	}
	if b.LimitAbout != "" && len(b.Limits) > 0 {
		entries = append(entries, LegendEntry{Name: b.LimitAbout, Color: LimitColor})
	}
	area := draw.Crop(dc, 6, -14, 6, -4)
	area.Min.Y += DrawLegend(area, entries)
	pl.Draw(area)
	data := pl.DataCanvas(area)
	tx, ty := pl.Transforms(&data)

	text := draw.TextStyle{Color: color.Black, Font: pl.Y.Tick.Label.Font, Handler: plot.DefaultTextHandler}
	text.Font.Size = 10
	small := text
	small.Font.Size = 9
	small.Color = color.RGBA{0x33, 0x33, 0x33, 0xff}
	lh := small.Height("X") * 1.3
	// A label is lines of text with the top of its first line at at.Y,
	// starting at at.X (centred on it when centre), written after the
	// limit lines on a white ground so that no line crosses the letters.
	type label struct {
		at     vg.Point
		centre bool
		// from is the middle of the segment's right edge: a label moved
		// away from it to make room is joined to it by a leader line.
		from   *vg.Point
		leader color.Color
		lines  []string
		styles []draw.TextStyle
	}
	var labels []label
	for i, c := range b.Columns {
		x0, x1 := tx(float64(i)+barLeft), tx(float64(i)+barRight)
		bottom := 0
		floor := data.Min.Y // the top of the label below: labels never overlap, nor leave the plot
		for _, s := range c.Segments {
			if s.Conns == 0 {
				continue
			}
			y0, y1 := ty(float64(bottom)), ty(float64(bottom+s.Conns))
			rect := vg.Rectangle{Min: vg.Point{X: x0, Y: y0}, Max: vg.Point{X: x1, Y: y1}}
			data.SetColor(Lighter(colors[s.Kind], 0.55))
			data.Fill(rect.Path())
			data.SetLineStyle(draw.LineStyle{Color: colors[s.Kind], Width: vg.Points(1.5)})
			data.Stroke(rect.Path())
			// The count inside the bar where it fits, the kind and its
			// variable beside it.
			count := text
			count.XAlign, count.YAlign = draw.XCenter, draw.YCenter
			if y1-y0 >= 14 {
				data.FillText(count, vg.Point{X: (x0 + x1) / 2, Y: (y0 + y1) / 2}, fmt.Sprint(s.Conns))
			}
			head := text
			head.Color = darker(colors[s.Kind])
			l := label{lines: []string{fmt.Sprintf("%s %d", s.Kind, s.Conns)}, styles: []draw.TextStyle{head}}
			for _, line := range strings.Split(strings.TrimSpace(s.Label), "\n") {
				if line != "" {
					l.lines, l.styles = append(l.lines, line), append(l.styles, small)
				}
			}
			h := lh * vg.Length(len(l.lines))
			top := max((y0+y1)/2+h/2, floor+h+2)
			l.at = vg.Point{X: tx(float64(i) + labelAt), Y: top}
			l.from, l.leader = &vg.Point{X: x1, Y: (y0 + y1) / 2}, colors[s.Kind]
			labels = append(labels, l)
			floor = top
			bottom += s.Conns
		}
		// The total and the verdict over the bar and its labels.
		head := text
		verdict, fits := b.Verdict(i)
		v := head
		v.Color = color.RGBA{0x1d, 0x6b, 0x2a, 0xff}
		if !fits {
			v.Color = LimitColor
		}
		l := label{centre: true, lines: []string{fmt.Sprintf("%d connections", bottom)}, styles: []draw.TextStyle{head}}
		if verdict != "" {
			l.lines, l.styles = append(l.lines, verdict), append(l.styles, v)
		}
		l.at = vg.Point{X: (x0 + x1) / 2, Y: max(ty(float64(bottom)), floor) + lh*vg.Length(len(l.lines)) + 4}
		labels = append(labels, l)
	}
	// The limits over the bars, named in the right margin.
	name := text
	name.Color = LimitColor
	name.YAlign = draw.YCenter
	right := tx(float64(len(b.Columns)) - 0.5)
	for _, l := range b.Limits {
		y := ty(float64(l.Conns))
		data.StrokeLine2(draw.LineStyle{Color: LimitColor, Width: vg.Points(2), Dashes: []vg.Length{vg.Points(7), vg.Points(3)}},
			data.Min.X, y, right, y)
		data.FillText(name, vg.Point{X: right + 4, Y: y}, fmt.Sprintf("%s: limit %d", l.Name, l.Conns))
	}
	for _, l := range labels {
		w := vg.Length(0)
		for i, line := range l.lines {
			w = max(w, l.styles[i].Width(line))
		}
		x := l.at.X
		if l.centre {
			x -= w / 2
		}
		if mid := l.at.Y - lh/2; l.from != nil && math.Abs(float64(mid-l.from.Y)) > 4 {
			data.StrokeLines(draw.LineStyle{Color: l.leader, Width: vg.Points(1)},
				[]vg.Point{*l.from, {X: l.from.X + 4, Y: l.from.Y}, {X: x - 4, Y: mid}, {X: x - 2, Y: mid}})
		}
		for i, line := range l.lines {
			lx, lw := x, l.styles[i].Width(line)
			if l.centre {
				lx = l.at.X - lw/2
			}
			bg := vg.Rectangle{Min: vg.Point{X: lx - 2, Y: l.at.Y - lh*vg.Length(i+1)}, Max: vg.Point{X: lx + lw + 2, Y: l.at.Y - lh*vg.Length(i)}}
			data.SetColor(color.White)
			data.Fill(bg.Path())
		}
		for i, line := range l.lines {
			st := l.styles[i]
			st.XAlign = draw.XLeft
			if l.centre {
				st.XAlign = draw.XCenter
			}
			data.FillText(st, vg.Point{X: l.at.X, Y: l.at.Y - lh*vg.Length(i+1) + lh*0.25}, line)
		}
	}
}

// darker mixes c with black, for text in a kind's colour.
func darker(c color.Color) color.Color {
	r, g, b, _ := c.RGBA()
	mix := func(v uint32) uint8 { return uint8(float64(v>>8) * 0.6) }
	return color.RGBA{mix(r), mix(g), mix(b), 0xff}
}
