package backend

import (
	"fmt"
	"testing"
	"time"

	"github.com/glowcast/glowcast/ledstrip"
	"github.com/glowcast/glowcast/ledstrip/ledstriptest"
)

// BenchmarkShow measures one frame through Show: looks, output stage,
// encoding and the SPI write (to a port that drops it). The 300 µs frame
// gap is left out: it is waiting, not work.
func BenchmarkShow(b *testing.B) {
	for _, bc := range []struct {
		leds int
		rgbw bool
	}{{5, false}, {300, false}, {5, true}, {300, true}} {
		name := fmt.Sprintf("leds=%d/rgb", bc.leds)
		if bc.rgbw {
			name = fmt.Sprintf("leds=%d/rgbw", bc.leds)
		}
		b.Run(name, func(b *testing.B) {
			o := DefaultOptions()
			o.LEDs, o.RGBW, o.Fade, o.CurrentLimitMA = bc.leds, bc.rgbw, 0, 2000
			s, err := openSPI(&ledstriptest.Discard{}, o)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			f := ledstrip.Frame{TS: time.Now(), State: ledstrip.StateFresh, Temps: []float64{-3.5, 4, 18.2, 27, 33.9}}
			b.ReportAllocs()
			for b.Loop() {
				s.mu.Lock()
				s.lastTx = time.Time{}
				s.mu.Unlock()
				if err := s.Show(f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
