package backend

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/glowcast/glowcast/ledstrip"
)

// Options configure a strip: what it looks like, how bright it may get and
// how much current it may draw. The yaml names are those of the device
// configuration's strip: section; errors name fields as strip.<name>.
type Options struct {
	// LEDs is the number of LEDs on the strip.
	LEDs int `yaml:"leds"`
	// Order is the order the LED chip expects the colour bytes in: GRB
	// (WS2812B, SK6812), RGB, BRG, RBG, BGR or GBR.
	Order string `yaml:"order"`
	// RGBW selects a four-channel strip (SK6812 RGBW); the white byte
	// always comes last on the wire.
	RGBW bool `yaml:"rgbw"`
	// White says how an RGBW strip uses its white LED: "extract" moves the
	// grey part of a colour onto it, "add" lights it as well, "none" leaves
	// it dark.
	White string `yaml:"white"`
	// Brightness caps every channel, in percent of full scale.
	Brightness float64 `yaml:"brightness"`
	// Gamma corrects for the eye: channel' = 255·(channel/255)^Gamma. 1
	// turns it off. Non-zero inputs never round to dark.
	Gamma float64 `yaml:"gamma"`
	// CurrentLimitMA bounds the strip's estimated draw in mA, which sizes the
	// 5 V supply: Σ(R+G+B)/765 × 60 mA plus 1 mA idle per LED (an RGBW
	// strip's white channel counts like a colour channel). Frames that
	// would exceed it are scaled down evenly.
	CurrentLimitMA float64 `yaml:"current_limit_ma"`
	// Fade is how long a change of colours takes; 0s shows changes at once.
	Fade time.Duration `yaml:"fade"`
	// Quiet dims or darkens the strip during the night.
	Quiet QuietHours `yaml:"quiet_hours"`
	// Scale maps temperatures to colours.
	Scale ledstrip.Stops `yaml:"scale"`

	// Now is the wall clock for quiet hours; nil means time.Now.
	Now func() time.Time `yaml:"-"`
	// Logger receives warnings from the fade goroutine; nil means
	// slog.Default().
	Logger *slog.Logger `yaml:"-"`
}

// QuietHours is a daily window, in the clock's local time, during which the
// strip is capped lower or turned off. Start after End wraps past midnight.
// An empty Start disables it.
type QuietHours struct {
	// Start and End are "HH:MM".
	Start string `yaml:"start"`
	End   string `yaml:"end"`
	// Brightness is the cap in percent inside the window.
	Brightness float64 `yaml:"brightness"`
	// Off turns the LEDs off inside the window instead.
	Off bool `yaml:"off"`
}

// White-channel policies for RGBW strips.
const (
	WhiteNone    = "none"
	WhiteExtract = "extract"
	WhiteAdd     = "add"
)

// Orders lists the colour orders a strip can take.
var Orders = []string{"GRB", "RGB", "BRG", "RBG", "BGR", "GBR"}

// DefaultOptions returns the options for the glowcast shelf strip: five
// WS2812B LEDs at 40 % with a 500 mA budget.
func DefaultOptions() Options {
	return Options{
		LEDs:           5,
		Order:          "GRB",
		White:          WhiteExtract,
		Brightness:     40,
		Gamma:          2.2,
		CurrentLimitMA: 500,
		Fade:           400 * time.Millisecond,
		Scale:          ledstrip.DefaultScale(),
	}
}

// Validate reports the first option that cannot work, naming its field and
// the values it takes.
func (o Options) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("ledstrip: "+format, a...)) }
	if o.LEDs < 1 {
		bad("strip.leds: %d: must be at least 1", o.LEDs)
	}
	if !validOrder(o.Order) {
		bad("strip.order: %q unknown; use %s", o.Order, strings.Join(Orders, ", "))
	}
	switch o.White {
	case WhiteNone, WhiteExtract, WhiteAdd:
	case "":
		if o.RGBW {
			bad("strip.white: empty; an RGBW strip needs extract, add or none")
		}
	default:
		bad("strip.white: %q unknown; use extract, add or none", o.White)
	}
	if !(o.Brightness > 0 && o.Brightness <= 100) {
		bad("strip.brightness: %v: give a percentage above 0 and at most 100", o.Brightness)
	}
	if !(o.Gamma >= 1 && o.Gamma <= 4) {
		bad("strip.gamma: %v: must be between 1 (no correction) and 4; 2.2 suits WS2812", o.Gamma)
	}
	if idle := float64(max(o.LEDs, 0)) * idleMA; !(o.CurrentLimitMA > idle) || math.IsInf(o.CurrentLimitMA, 0) {
		bad("strip.current_limit_ma: %v: must exceed the strip's idle draw of %v mA (1 mA per LED); size it to the 5 V supply", o.CurrentLimitMA, idle)
	}
	if o.Fade < 0 || o.Fade > time.Minute {
		bad("strip.fade: %v: must be between 0s (off) and 1m", o.Fade)
	}
	if _, err := o.Quiet.parse(); err != nil {
		errs = append(errs, err)
	}
	if err := o.Scale.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func validOrder(s string) bool {
	for _, o := range Orders {
		if s == o {
			return true
		}
	}
	return false
}

// quietWindow is QuietHours in minutes after midnight.
type quietWindow struct {
	on         bool
	start, end int
	cap        float64 // 0..1; 0 is off
}

func (q QuietHours) parse() (quietWindow, error) {
	if q.Start == "" && q.End == "" {
		return quietWindow{}, nil
	}
	start, err := parseClock(q.Start)
	if err != nil {
		return quietWindow{}, fmt.Errorf("ledstrip: strip.quiet_hours.start: %w", err)
	}
	end, err := parseClock(q.End)
	if err != nil {
		return quietWindow{}, fmt.Errorf("ledstrip: strip.quiet_hours.end: %w", err)
	}
	if start == end {
		return quietWindow{}, fmt.Errorf("ledstrip: strip.quiet_hours: start and end are both %s; leave both empty to disable quiet hours", q.Start)
	}
	w := quietWindow{on: true, start: start, end: end}
	switch {
	case q.Off:
	case q.Brightness > 0 && q.Brightness <= 100:
		w.cap = q.Brightness / 100
	default:
		return quietWindow{}, fmt.Errorf("ledstrip: strip.quiet_hours.brightness: %v: give a percentage above 0 and at most 100, or set strip.quiet_hours.off: true", q.Brightness)
	}
	return w, nil
}

func parseClock(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("%q: write the time as HH:MM, e.g. \"22:30\"", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

// in reports whether t falls inside the window.
func (w quietWindow) in(t time.Time) bool {
	if !w.on {
		return false
	}
	m := t.Hour()*60 + t.Minute()
	if w.start < w.end {
		return m >= w.start && m < w.end
	}
	return m >= w.start || m < w.end
}

// next returns the first window edge after t, or the zero time when the
// window is off.
func (w quietWindow) next(t time.Time) time.Time {
	if !w.on {
		return time.Time{}
	}
	y, mo, d := t.Date()
	var best time.Time
	for day := 0; day <= 1; day++ {
		for _, m := range []int{w.start, w.end} {
			e := time.Date(y, mo, d+day, m/60, m%60, 0, 0, t.Location())
			if e.After(t) && (best.IsZero() || e.Before(best)) {
				best = e
			}
		}
	}
	return best
}
