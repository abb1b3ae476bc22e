package ledstrip

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"strconv"
	"strings"
)

// Scale maps a temperature in °C to a colour.
type Scale interface {
	Color(celsius float64) color.RGBA
}

// Stop pins a colour to a temperature. Between stops the hue travels the
// shorter way round the colour wheel; saturation and value move linearly.
type Stop struct {
	// C is the temperature in °C.
	C float64 `yaml:"c" json:"c"`
	// Color is "#rrggbb". Quote it in YAML: an unquoted # starts a comment.
	Color string `yaml:"color" json:"color"`
}

// Stops is a scale given by stops in ascending temperature order. Below the
// first stop and above the last the end colours hold.
type Stops []Stop

// DefaultScale returns the glowcast scale: purple for −20 °C through blues,
// cyan, green and yellow to red at 40 °C. The hue never rises as the
// temperature rises, so warmer always reads as further along the same path.
func DefaultScale() Stops {
	return Stops{
		{C: -20, Color: hueHex(275)}, // purple
		{C: -10, Color: hueHex(235)}, // deep blue
		{C: 0, Color: hueHex(207)},   // blue-cyan
		{C: 10, Color: hueHex(180)},  // cyan
		{C: 20, Color: hueHex(139)},  // green
		{C: 25, Color: hueHex(60)},   // yellow
		{C: 30, Color: hueHex(39)},   // orange
		{C: 35, Color: hueHex(19)},   // orange-red
		{C: 40, Color: hueHex(0)},    // red
	}
}

func hueHex(h float64) string { return Hex(hsv{h: h, s: 1, v: 1}.rgba()) }

// Color implements Scale. An invalid scale (see Validate) shows black; Open
// refuses one, so a running strip never gets here with bad stops.
func (s Stops) Color(celsius float64) color.RGBA {
	g, err := s.compile()
	if err != nil {
		return color.RGBA{A: 255}
	}
	return g.Color(celsius)
}

// Range returns the temperatures of the first and last stop.
func (s Stops) Range() (lo, hi float64) {
	if len(s) == 0 {
		return 0, 0
	}
	return s[0].C, s[len(s)-1].C
}

// Validate reports the first stop that cannot be used, naming it as it is
// written in the device configuration.
func (s Stops) Validate() error {
	_, err := s.compile()
	return err
}

// Compile parses the stops once, so that a strip's frames do no string
// work; the error is Validate's.
func (s Stops) Compile() (Scale, error) {
	g, err := s.compile()
	if err != nil {
		return nil, err
	}
	return g, nil
}

// gradient is Stops parsed once, so a frame does no string work.
type gradient struct {
	c   []float64
	hsv []hsv
}

func (s Stops) compile() (*gradient, error) {
	if len(s) < 2 {
		return nil, fmt.Errorf("ledstrip: strip.scale has %d stops: give at least two, e.g. {c: -10, color: \"#0000ff\"} and {c: 35, color: \"#ff0000\"}", len(s))
	}
	g := &gradient{c: make([]float64, len(s)), hsv: make([]hsv, len(s))}
	for i, st := range s {
		if math.IsNaN(st.C) || math.IsInf(st.C, 0) {
			return nil, fmt.Errorf("ledstrip: strip.scale[%d].c: %v is not a temperature", i, st.C)
		}
		if i > 0 && st.C <= s[i-1].C {
			return nil, fmt.Errorf("ledstrip: strip.scale[%d].c: %g °C must be above the stop before it (%g °C): list stops from cold to warm", i, st.C, s[i-1].C)
		}
		c, err := ParseHex(st.Color)
		if err != nil {
			return nil, fmt.Errorf("ledstrip: strip.scale[%d].color: %w", i, err)
		}
		g.c[i] = st.C
		g.hsv[i] = toHSV(c)
	}
	return g, nil
}

// Color implements Scale.
func (g *gradient) Color(t float64) color.RGBA {
	n := len(g.c)
	switch {
	case math.IsNaN(t):
		return noData
	case t <= g.c[0]:
		return g.hsv[0].rgba()
	case t >= g.c[n-1]:
		return g.hsv[n-1].rgba()
	}
	i := 1
	for t > g.c[i] {
		i++
	}
	a, b := g.hsv[i-1], g.hsv[i]
	f := (t - g.c[i-1]) / (g.c[i] - g.c[i-1])
	dh := b.h - a.h
	// Take the shorter arc: a step of more than half the wheel goes the
	// other way round.
	if dh > 180 {
		dh -= 360
	} else if dh < -180 {
		dh += 360
	}
	h := math.Mod(a.h+f*dh+360, 360)
	return hsv{h: h, s: a.s + f*(b.s-a.s), v: a.v + f*(b.v-a.v)}.rgba()
}

func (g *gradient) Range() (lo, hi float64) { return g.c[0], g.c[len(g.c)-1] }

// hsv is hue in degrees [0,360), saturation and value in [0,1].
type hsv struct{ h, s, v float64 }

func toHSV(c color.RGBA) hsv {
	r, g, b := float64(c.R)/255, float64(c.G)/255, float64(c.B)/255
	mx := math.Max(r, math.Max(g, b))
	mn := math.Min(r, math.Min(g, b))
	d := mx - mn
	out := hsv{v: mx}
	if mx > 0 {
		out.s = d / mx
	}
	if d == 0 {
		return out
	}
	switch mx {
	case r:
		out.h = 60 * math.Mod((g-b)/d, 6)
	case g:
		out.h = 60 * ((b-r)/d + 2)
	default:
		out.h = 60 * ((r-g)/d + 4)
	}
	if out.h < 0 {
		out.h += 360
	}
	return out
}

// Hue returns the hue of c in degrees [0,360); grey has hue 0.
func Hue(c color.RGBA) float64 { return toHSV(c).h }

func (c hsv) rgba() color.RGBA {
	h := math.Mod(c.h, 360) / 60
	x := c.v * c.s * (1 - math.Abs(math.Mod(h, 2)-1))
	ch := c.v * c.s
	var r, g, b float64
	switch int(h) {
	case 0:
		r, g = ch, x
	case 1:
		r, g = x, ch
	case 2:
		g, b = ch, x
	case 3:
		g, b = x, ch
	case 4:
		r, b = x, ch
	default:
		r, b = ch, x
	}
	m := c.v - ch
	u8 := func(f float64) uint8 { return uint8(math.Round(255 * math.Max(0, math.Min(1, f+m)))) }
	return color.RGBA{R: u8(r), G: u8(g), B: u8(b), A: 255}
}

// Hex formats c as #rrggbb.
func Hex(c color.RGBA) string {
	const digits = "0123456789abcdef"
	return string([]byte{'#',
		digits[c.R>>4], digits[c.R&15],
		digits[c.G>>4], digits[c.G&15],
		digits[c.B>>4], digits[c.B&15]})
}

// ParseHex reads "#rrggbb" (the # may be left out).
func ParseHex(s string) (color.RGBA, error) {
	if s == "" {
		return color.RGBA{}, errors.New(`empty: write "#rrggbb" in quotes (an unquoted # starts a YAML comment)`)
	}
	h := strings.TrimPrefix(s, "#")
	if len(h) != 6 {
		return color.RGBA{}, fmt.Errorf("%q is not a colour: write \"#rrggbb\"", s)
	}
	v, err := strconv.ParseUint(h, 16, 32)
	if err != nil {
		return color.RGBA{}, fmt.Errorf("%q is not a colour: write \"#rrggbb\"", s)
	}
	return color.RGBA{R: uint8(v >> 16), G: uint8(v >> 8), B: uint8(v), A: 255}, nil
}
