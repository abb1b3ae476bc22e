package backend

import (
	"context"
	"errors"
	"fmt"
	"image/color"
	"time"

	"github.com/glowcast/glowcast/internal/clock"
	"github.com/glowcast/glowcast/ledstrip"
)

// LEDTest walks the strip through an installation check: each LED in turn
// red, green, blue and white at the brightness cap, then the colour scale
// swept from its coldest to its warmest stop along the strip, then off.
// Each colour holds for step, each sweep position for step/4. It ignores quiet hours and fades so that it
// looks the same at any hour. On ctx's end it turns the LEDs off and
// returns ctx.Err(). s must come from Open or OpenSPI.
func LEDTest(ctx context.Context, s Strip, step time.Duration) error {
	rs, ok := s.(rawShower)
	if !ok {
		return fmt.Errorf("ledstrip: LEDTest needs a strip from backend.Open, got %T", s)
	}
	n, sc := rs.info()
	err := ledTest(ctx, rs, n, sc, step)
	off := rs.showRaw(make([]color.RGBA, n), ledstrip.StateOff)
	return errors.Join(err, off)
}

var testColors = []color.RGBA{
	{R: 255, A: 255},
	{G: 255, A: 255},
	{B: 255, A: 255},
	{R: 255, G: 255, B: 255, A: 255},
}

func ledTest(ctx context.Context, rs rawShower, n int, sc ledstrip.Scale, step time.Duration) error {
	px := make([]color.RGBA, n)
	show := func(hold time.Duration) error {
		if err := rs.showRaw(px, ledstrip.StateLEDTest); err != nil {
			return err
		}
		return clock.Sleep(ctx, hold)
	}
	for i := range n {
		for _, c := range testColors {
			clear(px)
			px[i] = c
			if err := show(step); err != nil {
				return err
			}
		}
	}
	lo, hi := -20.0, 40.0
	if r, ok := sc.(interface{ Range() (float64, float64) }); ok {
		lo, hi = r.Range()
	}
	// The sweep moves a window a quarter of the scale wide along the strip,
	// one degree a step, so every LED passes through every colour.
	width := (hi - lo) / 4
	for t := lo - width; t <= hi; t++ {
		for i := range px {
			f := 0.0
			if n > 1 {
				f = float64(i) / float64(n-1)
			}
			px[i] = sc.Color(t + f*width)
		}
		if err := show(step / 4); err != nil {
			return err
		}
	}
	return nil
}
