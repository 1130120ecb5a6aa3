package chart_test

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/png"
	"math"
	"strings"
	"testing"

	"github.com/fediops/fediops/chart"
)

// seed is the seed's budget on 2 vCPU web droplets: 2 x 3 x 9 web, 2 x 25
// Sidekiq, 2 x 10 streaming, 5 direct, against 4 and 8 GiB clusters; a
// second column without Sidekiq.
func seed() chart.Budget {
	return chart.Budget{
		Title: "seed",
		Kinds: []chart.BudgetKind{{Name: "web", About: "WEB_CONCURRENCY×DB_POOL"}, {Name: "Sidekiq"}, {Name: "streaming"}, {Name: "direct"}},
		Columns: []chart.BudgetColumn{
			{Label: "2 vCPU", Segments: []chart.Segment{{"web", 54, "WEB_CONCURRENCY×DB_POOL\n3×9 on each of 2 droplets"},
				{"Sidekiq", 50, "DB_POOL"}, {"streaming", 20, "DB_POOL"}, {"direct", 5, ""}}},
			{Label: "no Sidekiq", Segments: []chart.Segment{{"web", 54, ""}, {"Sidekiq", 0, ""}, {"streaming", 20, ""}, {"direct", 5, ""}}},
		},
		Limits:     []chart.BudgetLimit{{Name: "4 GiB", Conns: 97}, {Name: "8 GiB", Conns: 197}},
		LimitAbout: "limit",
	}
}

func near(a, b color.Color) bool {
	r1, g1, b1, _ := a.RGBA()
	r2, g2, b2, _ := b.RGBA()
	d := func(x, y uint32) float64 { return math.Abs(float64(x>>8) - float64(y>>8)) }
	return d(r1, r2) <= 4 && d(g1, g2) <= 4 && d(b1, b2) <= 4
}

// TestBudgetPicture reads the picture back: each column's segments are
// stacked bottom to top in their kinds' colours with heights in
// proportion to their connections, a kind without connections is not
// drawn, and each limit line crosses the picture at its height on the
// same scale.
func TestBudgetPicture(t *testing.T) {
	b := seed()
	var buf bytes.Buffer
	if err := b.WritePNG(&buf); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Bounds().Size(); got != (image.Point{740, 600}) {
		t.Errorf("size %v, want 740x600 (270 per column + 200)", got)
	}
	fill := func(i int) color.Color { return chart.Lighter(chart.Color(i+1), 0.55) }
	// The first column's bar: the left-most run of the web fill on the
	// row just above its bottom edge.
	W, H := img.Bounds().Dx(), img.Bounds().Dy()
	barX := -1
	for y := H - 1; y >= 0 && barX < 0; y-- {
		for x := 0; x < W/2; x++ {
			if near(img.At(x, y), fill(0)) {
				barX = x + 6 // inside, clear of the outline and of the count in the middle
				break
			}
		}
	}
	if barX < 0 {
		t.Fatal("no web segment drawn")
	}
	// Walk up the bar: the runs of each kind's fill, bottom to top.
	type run struct {
		kind        int
		bottom, top int // pixel rows
	}
	var runs []run
	for y := H - 1; y >= 0; y-- {
		for k := range b.Kinds {
			if near(img.At(barX, y), fill(k)) {
				if len(runs) == 0 || runs[len(runs)-1].kind != k {
					runs = append(runs, run{kind: k, bottom: y})
				}
				runs[len(runs)-1].top = y
			}
		}
	}
	if len(runs) != 4 {
		t.Fatalf("%d runs of colour up the first bar, want web, Sidekiq, streaming, direct: %+v", len(runs), runs)
	}
	for i := range runs {
		if runs[i].kind != i {
			t.Errorf("run %d is kind %d, want %d (stacked in order)", i, runs[i].kind, i)
		}
	}
	// Each run is a segment's inside; the segments meet half way between
	// two runs, the outlines at the ends are 1.5 px wide.
	edges := []float64{float64(runs[0].bottom) + 1.5}
	for i := 1; i < len(runs); i++ {
		edges = append(edges, float64(runs[i-1].top+runs[i].bottom)/2)
	}
	edges = append(edges, float64(runs[len(runs)-1].top)-1.5)
	axis := edges[0]
	ppc := (axis - edges[4]) / 129 // pixels per connection
	for i, want := range []int{54, 50, 20, 5} {
		if got := (edges[i] - edges[i+1]) / ppc; math.Abs(got-float64(want)) > 1.5 {
			t.Errorf("%s: %.1f connections high, want %d", b.Kinds[i].Name, got, want)
		}
	}
	// The limit lines: rows where the limit colour crosses most of the
	// plot, at 97 and 197 connections on the bars' scale.
	var lines []float64
	for y := 0; y < H; y++ {
		n := 0
		for x := 0; x < W; x++ {
			if near(img.At(x, y), chart.LimitColor) {
				n++
			}
		}
		if n > W/3 {
			if len(lines) > 0 && float64(y)-lines[len(lines)-1] < 3 {
				continue // the same line's second row
			}
			lines = append(lines, float64(y))
		}
	}
	if len(lines) != 2 {
		t.Fatalf("%d limit lines found at rows %v, want 2", len(lines), lines)
	}
	for i, want := range []float64{197, 97} { // top of the picture first
		if got := (axis - lines[i]) / ppc; math.Abs(got-want) > 2 {
			t.Errorf("limit line %d at %.1f connections, want %.0f", i, got, want)
		}
	}
	// The second column has no Sidekiq: its colour appears once, in the
	// first column only.
	sk := 0
	for x := W / 2; x < W; x++ {
		for y := 0; y < H; y++ {
			if near(img.At(x, y), fill(1)) {
				sk++
			}
		}
	}
	if sk != 0 {
		t.Errorf("%d pixels of Sidekiq's fill in the column without Sidekiq", sk)
	}
}

func TestBudgetVerdict(t *testing.T) {
	b := seed()
	for i, want := range []string{"fits 8 GiB, 68 spare", "fits 4 GiB, 18 spare"} {
		if got, ok := b.Verdict(i); got != want || !ok {
			t.Errorf("column %d: %q %t, want %q", i, got, ok, want)
		}
	}
	b.Limits = b.Limits[:1]
	if got, ok := b.Verdict(0); got != "over 4 GiB by 32" || ok {
		t.Errorf("over: %q %t", got, ok)
	}
	b.Limits = nil
	if got, ok := b.Verdict(0); got != "" || !ok {
		t.Errorf("no limits: %q %t", got, ok)
	}
}

func TestBudgetValidate(t *testing.T) {
	for _, c := range []struct {
		change func(*chart.Budget)
		want   string
	}{
		{func(b *chart.Budget) { b.Columns = nil }, "Columns: none"},
		{func(b *chart.Budget) { b.Width = 100 }, "at least 400x300"},
		{func(b *chart.Budget) { b.Kinds = append(b.Kinds, chart.BudgetKind{Name: "web"}) }, `Kinds[4]: name "web" empty or repeated`},
		{func(b *chart.Budget) { b.Columns[1].Segments[0].Kind = "cron" }, `Columns[1].Segments[0]: kind "cron" is not in Kinds`},
		{func(b *chart.Budget) { b.Columns[0].Segments[2].Conns = -1 }, "Columns[0].Segments[2]: -1 connections"},
		{func(b *chart.Budget) { b.Limits[1].Conns = 0 }, "Limits[1]: limit 0"},
	} {
		b := seed()
		c.change(&b)
		err := b.WritePNG(&bytes.Buffer{})
		if !errors.Is(err, chart.ErrBadBudget) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v, want %q", err, c.want)
		}
	}
}
