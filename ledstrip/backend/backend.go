package backend

import (
	"errors"
	"fmt"
	"image/color"
	"strings"

	"github.com/glowcast/glowcast/ledstrip"
)

// Strip shows frames. Implementations are safe for use by one goroutine at a
// time; the device owns its strip.
type Strip interface {
	// Show renders f and writes it to the strip.
	Show(f ledstrip.Frame) error
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
	sc, err := opts.Scale.Compile()
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
	showRaw(px []color.RGBA, st ledstrip.State) error
	info() (leds int, sc ledstrip.Scale)
}

// logStrip is a strip whose backend records looks: jsonl, term, none.
type logStrip struct {
	opts   Options
	scale  ledstrip.Scale
	w      pixelWriter
	closed bool
}

func (s *logStrip) Show(f ledstrip.Frame) error {
	if s.closed {
		return errors.New("ledstrip: Show after Close")
	}
	if f.TS.IsZero() {
		f.TS = s.opts.Now()
	}
	return s.w.writePixels(ledstrip.Render(f, s.opts.LEDs, s.scale), f)
}

func (s *logStrip) showRaw(px []color.RGBA, st ledstrip.State) error {
	if s.closed {
		return errors.New("ledstrip: Show after Close")
	}
	out := make([]color.RGBA, s.opts.LEDs)
	copy(out, px)
	return s.w.writePixels(out, ledstrip.Frame{TS: s.opts.Now(), State: st})
}

func (s *logStrip) info() (int, ledstrip.Scale) { return s.opts.LEDs, s.scale }

func (s *logStrip) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.w.writePixels(make([]color.RGBA, s.opts.LEDs), ledstrip.Frame{TS: s.opts.Now(), State: ledstrip.StateOff})
	return errors.Join(err, s.w.close())
}
