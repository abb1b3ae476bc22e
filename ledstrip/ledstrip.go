// Package ledstrip owns everything between a frame of temperatures and the
// light the user sees: the temperature colour scale, the looks for the
// device's states (waiting, stale, ...), and the backends that put colours
// on a strip, a terminal or a log file.
//
// It knows nothing of MQTT or the agent; the device package decides what to
// show and hands it over as a Frame.
package ledstrip

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"strings"
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
)

// Frame is one picture for the strip.
type Frame struct {
	// TS is when the frame was composed.
	TS time.Time
	// Temps holds one temperature per LED in °C; NaN marks a missing value.
	// It is nil when there is no data (waiting, off).
	Temps []float64
	// State says what the frame represents.
	State State
}

// Strip shows frames. Implementations are safe for use by one goroutine at a
// time; the device owns its strip.
type Strip interface {
	// Show renders f and writes it to the strip.
	Show(f Frame) error
	// Close turns the LEDs off and releases the hardware.
	Close() error
}

// Options configure how frames become colours.
type Options struct {
	// LEDs is the number of LEDs on the strip.
	LEDs int
	// Scale maps temperatures to colours.
	Scale Scale
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultOptions returns the options for the glowcast shelf strip.
func DefaultOptions() Options {
	return Options{LEDs: 5, Scale: DefaultScale()}
}

// Open opens the backend named by spec:
//
//	jsonl:PATH  append one JSON object per frame to PATH
//	term        ANSI truecolour blocks on standard output
//	none        discard frames
func Open(spec string, opts Options) (Strip, error) {
	if opts.LEDs <= 0 {
		return nil, fmt.Errorf("ledstrip: led count %d: must be at least 1 (flag --leds)", opts.LEDs)
	}
	if opts.Scale == nil {
		opts.Scale = DefaultScale()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	kind, arg, _ := strings.Cut(spec, ":")
	var w pixelWriter
	var err error
	switch kind {
	case "jsonl":
		if arg == "" {
			return nil, errors.New("ledstrip: jsonl backend needs a file: use --led jsonl:PATH")
		}
		w, err = openJSONL(arg)
	case "term":
		w = newTerm(nil)
	case "none":
		w = nopWriter{}
	default:
		return nil, fmt.Errorf("ledstrip: unknown LED backend %q: use jsonl:PATH, term or none (flag --led)", spec)
	}
	if err != nil {
		return nil, err
	}
	return &strip{opts: opts, w: w}, nil
}

// pixelWriter is what a backend implements: put these colours on the LEDs.
type pixelWriter interface {
	writePixels(px []color.RGBA, f Frame) error
	close() error
}

type strip struct {
	opts Options
	w    pixelWriter
}

func (s *strip) Show(f Frame) error {
	if f.TS.IsZero() {
		f.TS = s.opts.Now()
	}
	return s.w.writePixels(Render(f, s.opts.LEDs, s.opts.Scale), f)
}

func (s *strip) Close() error {
	err := s.w.writePixels(make([]color.RGBA, s.opts.LEDs), Frame{TS: s.opts.Now(), State: StateOff})
	return errors.Join(err, s.w.close())
}

// Render turns a frame into n colours: the scale for fresh temperatures, a
// dimmed scale for stale ones, and a distinct look for the other states.
func Render(f Frame, n int, sc Scale) []color.RGBA {
	px := make([]color.RGBA, n)
	switch f.State {
	case StateOff:
		return px
	case StateFresh, StateStale:
		for i := range px {
			t := math.NaN()
			if i < len(f.Temps) {
				t = f.Temps[i]
			}
			if math.IsNaN(t) {
				px[i] = noData
				continue
			}
			c := sc.Color(t)
			if f.State == StateStale {
				c = dim(c, 4)
			}
			px[i] = c
		}
	default:
		// Waiting and the other status looks: a soft white on the first LED
		// only, so a glance tells "alive, no forecast" apart from off.
		px[0] = lookFor(f.State)
	}
	return px
}

var noData = color.RGBA{R: 24, G: 24, B: 24, A: 255}

func lookFor(s State) color.RGBA {
	switch s {
	case StateBrokerDown:
		return color.RGBA{R: 64, A: 255}
	case StateAgentOffline:
		return color.RGBA{R: 48, G: 24, A: 255}
	default:
		return color.RGBA{R: 40, G: 40, B: 40, A: 255}
	}
}

func dim(c color.RGBA, by uint8) color.RGBA {
	return color.RGBA{R: c.R / by, G: c.G / by, B: c.B / by, A: 255}
}

// Scale maps a temperature in °C to a colour.
type Scale interface {
	Color(celsius float64) color.RGBA
}

// Gradient is a linear blue-to-red scale over [Min, Max] °C, clamped at the ends.
type Gradient struct{ Min, Max float64 }

// DefaultScale is the scale used when none is configured.
func DefaultScale() Scale { return Gradient{Min: -10, Max: 35} }

// Color implements Scale.
func (g Gradient) Color(t float64) color.RGBA {
	x := (t - g.Min) / (g.Max - g.Min)
	x = math.Max(0, math.Min(1, x))
	return color.RGBA{R: uint8(math.Round(255 * x)), B: uint8(math.Round(255 * (1 - x))), A: 255}
}

// Hex formats c as #rrggbb.
func Hex(c color.RGBA) string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }
