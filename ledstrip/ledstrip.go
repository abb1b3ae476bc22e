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

// Strip shows frames. Implementations are safe for use by one goroutine at a
// time; the device owns its strip.
type Strip interface {
	// Show renders f and writes it to the strip.
	Show(f Frame) error
	// Close turns the LEDs off and releases the hardware.
	Close() error
}

// Open opens the backend named by spec:
//
//	spi:PATH    NRZ LEDs (WS2812B, SK6812) on a spidev, e.g. spi:/dev/spidev0.0
//	jsonl:PATH  append one JSON object per frame to PATH
//	term        ANSI truecolour blocks on standard output
//	none        discard frames
//
// Zero fields of opts whose zero value is invalid (Order, Brightness, Gamma,
// CurrentLimitMA, Scale) take DefaultOptions' values; Fade and Quiet are
// taken as given.
//
// Only spi applies the output stage (gamma, brightness cap, quiet hours,
// current limit, fade): the other backends record the looks as designed,
// so their colours read as the scale and do not change with the hour.
func Open(spec string, opts Options) (Strip, error) {
	opts = fill(opts)
	kind, arg, _ := strings.Cut(spec, ":")
	if kind == "spi" {
		if arg == "" {
			return nil, errors.New("ledstrip: spi backend needs a device: use --led spi:/dev/spidev0.0")
		}
		if err := opts.Validate(); err != nil {
			return nil, err
		}
		port, err := openSPIDevice(arg)
		if err != nil {
			return nil, err
		}
		return OpenSPI(port, opts)
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	sc, err := opts.Scale.compile()
	if err != nil {
		return nil, err
	}
	var w pixelWriter
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
		return nil, fmt.Errorf("ledstrip: unknown LED backend %q: use spi:/dev/spidevB.C, jsonl:PATH, term or none (flag --led)", spec)
	}
	if err != nil {
		return nil, err
	}
	return &logStrip{opts: opts, scale: sc, w: w}, nil
}

// Off opens the strip, writes one all-dark frame and closes it: for a unit's
// ExecStopPost, so a crashed or killed daemon does not leave the LEDs lit.
func Off(spec string, opts Options) error {
	// A fade would only delay the off frame, which Close writes directly.
	opts.Fade = 0
	s, err := Open(spec, opts)
	if err != nil {
		return err
	}
	return s.Close()
}

func fill(o Options) Options {
	d := DefaultOptions()
	if o.Order == "" {
		o.Order = d.Order
	}
	if o.Brightness == 0 {
		o.Brightness = d.Brightness
	}
	if o.Gamma == 0 {
		o.Gamma = d.Gamma
	}
	if o.CurrentLimitMA == 0 {
		o.CurrentLimitMA = d.CurrentLimitMA
	}
	if o.Scale == nil {
		o.Scale = d.Scale
	}
	return withDefaults(o)
}

// rawShower is implemented by this package's strips: LEDTest shows plain
// colours through it.
type rawShower interface {
	showRaw(px []color.RGBA, st State) error
	info() (leds int, sc Scale)
}

// logStrip is a strip whose backend records looks: jsonl, term, none.
type logStrip struct {
	opts   Options
	scale  Scale
	w      pixelWriter
	closed bool
}

func (s *logStrip) Show(f Frame) error {
	if s.closed {
		return errors.New("ledstrip: Show after Close")
	}
	if f.TS.IsZero() {
		f.TS = s.opts.Now()
	}
	return s.w.writePixels(Render(f, s.opts.LEDs, s.scale), f)
}

func (s *logStrip) showRaw(px []color.RGBA, st State) error {
	if s.closed {
		return errors.New("ledstrip: Show after Close")
	}
	out := make([]color.RGBA, s.opts.LEDs)
	copy(out, px)
	return s.w.writePixels(out, Frame{TS: s.opts.Now(), State: st})
}

func (s *logStrip) info() (int, Scale) { return s.opts.LEDs, s.scale }

func (s *logStrip) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.w.writePixels(make([]color.RGBA, s.opts.LEDs), Frame{TS: s.opts.Now(), State: StateOff})
	return errors.Join(err, s.w.close())
}

// Render turns a frame into n colours: the scale for fresh temperatures, a
// dimmed scale for stale ones, and a distinct look for the other states.
// These are the colours as designed; the spi backend then applies gamma,
// the brightness cap and the current limit.
func Render(f Frame, n int, sc Scale) []color.RGBA {
	px := make([]color.RGBA, n)
	renderInto(px, f, sc)
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

func renderInto(px []color.RGBA, f Frame, sc Scale) {
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
