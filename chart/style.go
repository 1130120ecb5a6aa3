package chart

import (
	"image/color"

	"gonum.org/v1/plot/plotutil"
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
