package ledstrip

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"strconv"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// WriteScalePNG draws sc as a PNG: the colours from its coldest to its
// warmest stop (−20 to 40 °C for a scale without stops), a tick every 5 °C,
// a label every 10 °C and, at the right, the swatch for missing data.
// Colours are the looks as designed, before gamma and the brightness cap.
func WriteScalePNG(w io.Writer, sc Scale, width, height int) error {
	return WriteScalePNGIn(w, sc, width, height, UnitC)
}

// WriteScalePNGIn is WriteScalePNG with ticks and labels in unit (UnitC or
// UnitF): the owner's unit setting. The colours are the same in both.
func WriteScalePNGIn(w io.Writer, sc Scale, width, height int, unit string) error {
	img, err := ScaleImageIn(sc, width, height, unit)
	if err != nil {
		return err
	}
	if err := png.Encode(w, img); err != nil {
		return fmt.Errorf("ledstrip: encode scale PNG: %w", err)
	}
	return nil
}

// Layout of the scale picture, in pixels.
const (
	pngMargin   = 12 // left and right of the bar, so end labels fit
	pngLabelH   = 18 // text row under the bar
	pngSwatchW  = 56 // missing-data swatch and its gap
	pngMinWidth = 2*pngMargin + pngSwatchW + 60
)

// ScaleImage is the picture WriteScalePNG encodes.
func ScaleImage(sc Scale, width, height int) (*image.RGBA, error) {
	return ScaleImageIn(sc, width, height, UnitC)
}

// ScaleImageIn is ScaleImage with ticks and labels in unit: every 5 and 10
// degrees of that unit, placed where that temperature's colour is.
func ScaleImageIn(sc Scale, width, height int, unit string) (*image.RGBA, error) {
	if unit != UnitC && unit != UnitF {
		return nil, fmt.Errorf("ledstrip: scale unit %q: use %q or %q", unit, UnitC, UnitF)
	}
	if width < pngMinWidth || height < pngLabelH+8 {
		return nil, fmt.Errorf("ledstrip: scale picture %dx%d too small: use at least %dx%d", width, height, pngMinWidth, pngLabelH+8)
	}
	lo, hi := -20.0, 40.0
	if r, ok := sc.(interface{ Range() (float64, float64) }); ok {
		lo, hi = r.Range()
	}
	if c, ok := sc.(Stops); ok {
		g, err := c.compile()
		if err != nil {
			return nil, err
		}
		sc = g
	}
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.RGBA{R: 24, G: 24, B: 24, A: 255}), image.Point{}, draw.Src)
	barH := height - pngLabelH
	x0, x1 := pngMargin, width-pngMargin-pngSwatchW
	for x := x0; x < x1; x++ {
		t := lo + (hi-lo)*float64(x-x0)/float64(x1-x0-1)
		draw.Draw(img, image.Rect(x, 0, x+1, barH), image.NewUniform(sc.Color(t)), image.Point{}, draw.Src)
	}
	// Ticks and labels count in the unit; positions are in °C.
	toUnit, toC := func(c float64) float64 { return c }, func(u float64) float64 { return u }
	if unit == UnitF {
		toUnit, toC = ToF, ToC
	}
	xOf := func(u float64) int { return x0 + int(math.Round((toC(u)-lo)/(hi-lo)*float64(x1-x0-1))) }
	tick := image.NewUniform(color.RGBA{R: 230, G: 230, B: 230, A: 255})
	d := &font.Drawer{Dst: img, Src: tick, Face: basicfont.Face7x13}
	for t := math.Ceil(toUnit(lo)/5) * 5; t <= toUnit(hi)+1e-9; t += 5 {
		x := xOf(t)
		h := 4
		if math.Mod(t, 10) == 0 {
			h = 8
			label := strconv.FormatFloat(t, 'f', -1, 64)
			if t == 0 {
				label = "0" // not "-0" when the first tick is rounded up from below zero
			}
			lw := d.MeasureString(label).Round()
			d.Dot = fixed.P(x-lw/2, height-4)
			d.DrawString(label)
		}
		draw.Draw(img, image.Rect(x, barH-h, x+1, barH), tick, image.Point{}, draw.Src)
	}
	sx := x1 + pngMargin
	draw.Draw(img, image.Rect(sx, 0, width-pngMargin, barH), image.NewUniform(noData), image.Point{}, draw.Src)
	label := "n/a"
	d.Dot = fixed.P(sx+(width-pngMargin-sx-d.MeasureString(label).Round())/2, height-4)
	d.DrawString(label)
	return img, nil
}
