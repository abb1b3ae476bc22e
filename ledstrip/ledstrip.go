package ledstrip

import (
	"fmt"
	"image/color"
	"math"
	"time"
)

// State names what a frame represents. The values are part of the jsonl
// output and therefore fixed.
type State string

// States a frame can carry. Others may be added; consumers must tolerate
// unknown values.
const (
	StateStarting     State = "starting"
	StateWaiting      State = "waiting"
	StateFresh        State = "fresh"
	StateStale        State = "stale"
	StateAgentOffline State = "agent-offline"
	StateBrokerDown   State = "broker-unreachable"
	StateOff          State = "off"
	// StateLEDTest marks the frames of LEDTest.
	StateLEDTest State = "ledtest"
)

// Frame is one picture for the strip.
type Frame struct {
	// TS is when the frame was composed.
	TS time.Time
	// Temps holds the temperatures in °C, now first; NaN marks a missing
	// value. It is nil when there is no data (waiting, off). With more LEDs
	// than temperatures each temperature lights an equal run of LEDs.
	Temps []float64
	// State says what the frame represents.
	State State
	// Source names where the temperatures came from when displays should
	// say so: "sample" for the bundled demo forecast. Empty otherwise.
	Source string
	// Brightness is the owner's brightness setting in force for this
	// frame, in percent of the configured look (and below the hardware
	// cap); nil means 100. It scales every colour.
	Brightness *int
	// Unit is the owner's temperature unit for labels, UnitC or UnitF;
	// empty means UnitC. Temps stay in °C: a colour belongs to a
	// temperature, not to the unit it is read in.
	Unit string
	// Fade is how long the change to this frame takes; nil means the
	// strip's configured fade (Options.Fade). Only strips with an output
	// stage (spi) fade; the recording backends record it.
	Fade *time.Duration
}

// Units a frame's labels can be in.
const (
	UnitC = "C"
	UnitF = "F"
)

// Label formats a temperature in °C for people in unit (UnitC or UnitF;
// anything else reads as UnitC), one decimal: "21.5 °C", "70.7 °F".
func Label(celsius float64, unit string) string {
	if unit == UnitF {
		return fmt.Sprintf("%.1f °F", ToF(celsius))
	}
	return fmt.Sprintf("%.1f °C", celsius)
}

// ToF converts °C to °F.
func ToF(c float64) float64 { return c*9/5 + 32 }

// ToC converts °F to °C.
func ToC(f float64) float64 { return (f - 32) * 5 / 9 }

// BrightnessPercent is f.Brightness with nil read as 100.
func (f Frame) BrightnessPercent() int {
	if f.Brightness == nil {
		return 100
	}
	return max(0, min(100, *f.Brightness))
}

// Render turns a frame into n colours: the scale for fresh temperatures, a
// dimmed scale for stale ones, and a distinct look for the other states.
// These are the colours as designed; the spi backend then applies gamma,
// the brightness cap and the current limit.
func Render(f Frame, n int, sc Scale) []color.RGBA {
	px := make([]color.RGBA, n)
	RenderInto(px, f, sc)
	return px
}

// Looks for the states and for missing data. None of them lies on the
// temperature scale, which is fully saturated: grey and white cannot be
// mistaken for a temperature, and magenta (hue ≈ 320°) sits in the gap
// between red (0°) and purple (275°).
var (
	noData     = color.RGBA{R: 90, G: 90, B: 90, A: 255}    // a missing value
	lookStart  = color.RGBA{R: 110, G: 110, B: 110, A: 255} // every LED: starting up
	lookWait   = color.RGBA{R: 160, G: 160, B: 160, A: 255} // first LED: waiting for data
	lookAgent  = color.RGBA{R: 255, G: 120, B: 0, A: 255}   // first LED: agent offline
	lookBroker = color.RGBA{R: 255, G: 0, B: 170, A: 255}   // first LED: broker unreachable
	staleDim   = 0.45                                       // stale temperatures, of full
)

// RenderInto is Render into px, one colour per LED, for a strip that
// renders every frame into the same buffer.
func RenderInto(px []color.RGBA, f Frame, sc Scale) {
	renderLook(px, f, sc)
	if b := f.BrightnessPercent(); b < 100 {
		for i := range px {
			px[i] = scaleRGB(px[i], float64(b)/100)
		}
	}
}

func renderLook(px []color.RGBA, f Frame, sc Scale) {
	clear(px)
	n := len(px)
	if n == 0 {
		return
	}
	switch f.State {
	case StateOff:
	case StateFresh, StateStale:
		last, c := -1, noData
		for i := range px {
			// A run of LEDs shares a temperature: colour it once.
			if k := i * len(f.Temps) / n; k != last || len(f.Temps) == 0 {
				last, c = k, noData
				if len(f.Temps) > 0 && !math.IsNaN(f.Temps[k]) {
					c = sc.Color(f.Temps[k])
					if f.State == StateStale {
						c = scaleRGB(c, staleDim)
					}
				}
			}
			px[i] = c
		}
	case StateStarting:
		for i := range px {
			px[i] = lookStart
		}
	case StateAgentOffline:
		px[0] = lookAgent
	case StateBrokerDown:
		px[0] = lookBroker
	default:
		// Waiting and states added later: one soft white LED says "alive,
		// no forecast", distinct from off.
		px[0] = lookWait
	}
}

func scaleRGB(c color.RGBA, f float64) color.RGBA {
	m := func(v uint8) uint8 { return uint8(math.Round(float64(v) * f)) }
	return color.RGBA{R: m(c.R), G: m(c.G), B: m(c.B), A: 255}
}
