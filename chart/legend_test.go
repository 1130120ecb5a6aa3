package chart_test

import (
	"image"
	"image/color"
	"math"
	"testing"

	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/fediops/fediops/chart"
)

// legendPicture draws entries with DrawLegend on a white canvas of the
// given size (points are pixels at 72 dpi) and returns the height it
// reported and the picture.
func legendPicture(t *testing.T, width, height int, entries []chart.LegendEntry) (vg.Length, image.Image) {
	t.Helper()
	img := vgimg.NewWith(vgimg.UseWH(vg.Length(width), vg.Length(height)), vgimg.UseDPI(72))
	dc := draw.New(img)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	h := chart.DrawLegend(dc, entries)
	return h, img.Image()
}

// sample finds the short line of colour col: its left end and its row
// (y grows downwards), or ok false when no pixel has the colour.
func sample(img image.Image, col color.Color) (x, y int, ok bool) {
	minX, sumY, n := math.MaxInt, 0, 0
	b := img.Bounds()
	for py := b.Min.Y; py < b.Max.Y; py++ {
		for px := b.Min.X; px < b.Max.X; px++ {
			if near(img.At(px, py), col) {
				minX = min(minX, px)
				sumY += py
				n++
			}
		}
	}
	if n == 0 {
		return 0, 0, false
	}
	return minX, sumY / n, true
}

// TestDrawLegendWraps draws the same three entries in a wide and in a
// narrow space: side by side in one row when they fit, the third on a
// second row under the first when they do not, the height following the
// rows. The legend sits at the bottom of the canvas.
func TestDrawLegendWraps(t *testing.T) {
	entries := []chart.LegendEntry{
		{Name: "api/v1/timelines/home#show", Color: color.RGBA{0xff, 0, 0, 0xff}},
		{Name: "api/v1/statuses#create", Color: color.RGBA{0, 0xc0, 0, 0xff}},
		{Name: "well_known/webfinger#show", Color: color.RGBA{0, 0, 0xff, 0xff}},
	}
	type pos struct{ x, y int }
	find := func(img image.Image) []pos {
		var out []pos
		for _, e := range entries {
			x, y, ok := sample(img, e.Color)
			if !ok {
				t.Fatalf("no sample line of %s drawn", e.Name)
			}
			out = append(out, pos{x, y})
		}
		return out
	}
	const H = 100

	wideH, wide := legendPicture(t, 700, H, entries)
	w := find(wide)
	if w[0].y != w[1].y || w[1].y != w[2].y {
		t.Errorf("wide: samples on rows %v, want one row", w)
	}
	if !(w[0].x < w[1].x && w[1].x < w[2].x) {
		t.Errorf("wide: samples at %v, want left to right in order", w)
	}
	if w[0].y < H-int(wideH) {
		t.Errorf("wide: row at y=%d, above the %v points the legend says it took at the bottom", w[0].y, wideH)
	}

	narrowH, narrow := legendPicture(t, 330, H, entries)
	n := find(narrow)
	if n[0].y != n[1].y {
		t.Errorf("narrow: the first two entries on rows %d and %d, want one", n[0].y, n[1].y)
	}
	if n[2].y <= n[0].y || n[2].x != n[0].x {
		t.Errorf("narrow: third entry at %v, want on a row below the first, at its left %v", n[2], n[0])
	}
	if d := n[2].y - n[0].y; d < 10 || d > 16 {
		t.Errorf("narrow: rows %d pixels apart, want one row's height (13)", d)
	}
	if narrowH-wideH != 13 {
		t.Errorf("heights %v (one row) and %v (two rows), want one row (13) apart", wideH, narrowH)
	}
	if n[0].y < H-int(narrowH) {
		t.Errorf("narrow: first row at y=%d, above the %v points the legend says it took", n[0].y, narrowH)
	}

	if h, _ := legendPicture(t, 330, H, nil); h != 0 {
		t.Errorf("no entries: height %v, want 0", h)
	}
}
