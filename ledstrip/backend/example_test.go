package backend_test

import (
	"fmt"

	"github.com/glowcast/glowcast/ledstrip"
	"github.com/glowcast/glowcast/ledstrip/backend"
	"github.com/glowcast/glowcast/ledstrip/ledstriptest"
)

// A strip on a recording SPI port: the frame on the wire decodes back to
// the colours after gamma and the 40 % cap, in the strip's GRB order.
func ExampleOpenSPI() {
	port := &ledstriptest.Port{}
	opts := backend.DefaultOptions()
	opts.Fade = 0 // show at once
	s, err := backend.OpenSPI(port, opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = s.Show(ledstrip.Frame{State: ledstrip.StateFresh, Temps: []float64{-20, 10, 25, 40, 20}})
	leds, _ := ledstriptest.Decode(port.Last(), opts.LEDs, 3)
	for _, grb := range leds {
		fmt.Printf("G %3d  R %3d  B %3d\n", grb[0], grb[1], grb[2])
	}
	_ = s.Close()
	fmt.Println(len(port.Frames()), "frames, the last one dark")
	// Output:
	// G   0  R  31  B 102
	// G 102  R   0  B 102
	// G 102  R 102  B   0
	// G   0  R 102  B   0
	// G 102  R   0  B   8
	// 2 frames, the last one dark
}
