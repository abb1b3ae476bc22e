package backend

import (
	"image/color"
	"math"
	"time"
)

// Current model of a WS2812-class LED: 20 mA per channel at full scale and
// about 1 mA for the controller even when dark.
const (
	fullWhiteMA = 60.0
	idleMA      = 1.0
)

// pixel is one LED's channel values as they go on the wire, before colour
// ordering.
type pixel struct{ r, g, b, w uint8 }

// output is the stage between a look and the wire: gamma, brightness cap,
// quiet hours, white extraction and the current limit. It exists only for
// physical LEDs; the jsonl and term backends show looks as designed.
type output struct {
	gamma   [256]float64 // channel/255 after gamma, 0..1
	cap     float64      // 0..1
	quiet   quietWindow
	limitMA float64
	white   string
	rgbw    bool
}

func newOutput(o Options) (*output, error) {
	q, err := o.Quiet.parse()
	if err != nil {
		return nil, err
	}
	out := &output{cap: o.Brightness / 100, quiet: q, limitMA: o.CurrentLimitMA, white: o.White, rgbw: o.RGBW}
	for i := range out.gamma {
		out.gamma[i] = math.Pow(float64(i)/255, o.Gamma)
	}
	return out, nil
}

// capAt returns the brightness cap in force at t.
func (o *output) capAt(t time.Time) float64 {
	if o.quiet.in(t) {
		return math.Min(o.cap, o.quiet.cap)
	}
	return o.cap
}

// apply fills dst (len(px) long) with what the LEDs should show for px
// under cap c.
func (o *output) apply(dst []pixel, px []color.RGBA, c float64) {
	var sum int
	for i, p := range px {
		q := pixel{r: o.level(p.R, c), g: o.level(p.G, c), b: o.level(p.B, c)}
		if o.rgbw && o.white != WhiteNone && o.white != "" {
			q.w = min(q.r, q.g, q.b)
			if o.white == WhiteExtract {
				q.r -= q.w
				q.g -= q.w
				q.b -= q.w
			}
		}
		dst[i] = q
		sum += int(q.r) + int(q.g) + int(q.b) + int(q.w)
	}
	o.limit(dst, sum)
}

// level is one channel after gamma and cap. A lit input stays lit: dim
// colours (the no-data grey) must not vanish at a low cap.
func (o *output) level(v uint8, c float64) uint8 {
	if v == 0 || c == 0 {
		return 0
	}
	l := math.Round(255 * o.gamma[v] * c)
	return uint8(math.Max(1, l))
}

// estimateMA is the modelled draw of px in mA.
func estimateMA(px []pixel) float64 {
	var sum int
	for _, p := range px {
		sum += int(p.r) + int(p.g) + int(p.b) + int(p.w)
	}
	return estimate(len(px), sum)
}

func estimate(n, channelSum int) float64 {
	return float64(channelSum)/765*fullWhiteMA + float64(n)*idleMA
}

// limit scales px down evenly until the estimate fits the budget.
// Flooring keeps the result at or below it.
func (o *output) limit(px []pixel, sum int) {
	if estimate(len(px), sum) <= o.limitMA {
		return
	}
	f := (o.limitMA - float64(len(px))*idleMA) / (float64(sum) / 765 * fullWhiteMA)
	f = math.Max(0, f)
	sc := func(v uint8) uint8 { return uint8(math.Floor(float64(v) * f)) }
	for i, p := range px {
		px[i] = pixel{r: sc(p.r), g: sc(p.g), b: sc(p.b), w: sc(p.w)}
	}
}

// lerp blends a into b by f (0..1) channel by channel. The estimate is
// linear in the channels, so a blend of two frames within the budget is
// within it too.
func lerp(dst, a, b []pixel, f float64) {
	mix := func(x, y uint8) uint8 { return uint8(math.Round(float64(x) + f*(float64(y)-float64(x)))) }
	for i := range dst {
		dst[i] = pixel{r: mix(a[i].r, b[i].r), g: mix(a[i].g, b[i].g), b: mix(a[i].b, b[i].b), w: mix(a[i].w, b[i].w)}
	}
}
