package backend_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/glowcast/glowcast/ledstrip"
	"github.com/glowcast/glowcast/ledstrip/backend"
	"go.yaml.in/yaml/v3"
)

func TestOptionsYAML(t *testing.T) {
	const doc = `
leds: 8
order: RGB
rgbw: true
white: add
brightness: 25
gamma: 2.5
current_limit_ma: 1200
fade: 250ms
quiet_hours: {start: "22:30", end: "06:45", brightness: 5}
scale:
  - {c: -5, color: "#0000ff"}
  - {c: 30, color: "#ff0000"}
`
	o := backend.DefaultOptions()
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&o); err != nil {
		t.Fatal(err)
	}
	if err := o.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	want := backend.Options{
		LEDs: 8, Order: "RGB", RGBW: true, White: "add", Brightness: 25, Gamma: 2.5,
		CurrentLimitMA: 1200, Fade: 250 * time.Millisecond,
		Quiet: backend.QuietHours{Start: "22:30", End: "06:45", Brightness: 5},
		Scale: ledstrip.Stops{{C: -5, Color: "#0000ff"}, {C: 30, Color: "#ff0000"}},
	}
	if got := o; got.LEDs != want.LEDs || got.Order != want.Order || got.RGBW != want.RGBW || got.White != want.White ||
		got.Brightness != want.Brightness || got.Gamma != want.Gamma || got.CurrentLimitMA != want.CurrentLimitMA ||
		got.Fade != want.Fade || got.Quiet != want.Quiet || len(got.Scale) != 2 || got.Scale[1] != want.Scale[1] {
		t.Errorf("got %+v, want %+v", got, want)
	}

	// The defaults survive a round trip, so a dumped device config is
	// loadable again.
	var buf bytes.Buffer
	if err := yaml.NewEncoder(&buf).Encode(backend.DefaultOptions()); err != nil {
		t.Fatal(err)
	}
	var back backend.Options
	dec = yaml.NewDecoder(&buf)
	dec.KnownFields(true)
	if err := dec.Decode(&back); err != nil {
		t.Fatalf("decode of encoded defaults: %v", err)
	}
	if err := back.Validate(); err != nil {
		t.Errorf("Validate of round-tripped defaults: %v", err)
	}
	if back.Fade != 400*time.Millisecond || len(back.Scale) != 9 {
		t.Errorf("round trip: got fade %v and %d stops, want 400ms and 9", back.Fade, len(back.Scale))
	}

	// Unknown fields are refused.
	dec = yaml.NewDecoder(strings.NewReader("led_count: 5\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&o); err == nil {
		t.Error("unknown field: got nil error, want one")
	}
}

func TestOptionsValidate(t *testing.T) {
	if err := backend.DefaultOptions().Validate(); err != nil {
		t.Fatalf("defaults: got %v, want nil", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*backend.Options)
		want string
	}{
		{"no LEDs", func(o *backend.Options) { o.LEDs = 0 }, "strip.leds"},
		{"unknown order", func(o *backend.Options) { o.Order = "XYZ" }, `strip.order: "XYZ" unknown; use GRB, RGB, BRG, RBG, BGR, GBR`},
		{"unknown white", func(o *backend.Options) { o.White = "max" }, "strip.white"},
		{"rgbw without white", func(o *backend.Options) { o.RGBW, o.White = true, "" }, "strip.white"},
		{"brightness 0", func(o *backend.Options) { o.Brightness = 0 }, "strip.brightness"},
		{"brightness 150", func(o *backend.Options) { o.Brightness = 150 }, "strip.brightness"},
		{"gamma 0.5", func(o *backend.Options) { o.Gamma = 0.5 }, "strip.gamma"},
		{"limit under idle", func(o *backend.Options) { o.CurrentLimitMA = 5 }, "strip.current_limit_ma"},
		{"negative fade", func(o *backend.Options) { o.Fade = -time.Second }, "strip.fade"},
		{"quiet start", func(o *backend.Options) { o.Quiet = backend.QuietHours{Start: "25:00", End: "07:00", Off: true} }, "strip.quiet_hours.start"},
		{"quiet end", func(o *backend.Options) { o.Quiet = backend.QuietHours{Start: "22:00", Off: true} }, "strip.quiet_hours.end"},
		{"quiet empty window", func(o *backend.Options) { o.Quiet = backend.QuietHours{Start: "22:00", End: "22:00", Off: true} }, "strip.quiet_hours"},
		{"quiet without cap", func(o *backend.Options) { o.Quiet = backend.QuietHours{Start: "22:00", End: "07:00"} }, "strip.quiet_hours.brightness"},
		{"scale", func(o *backend.Options) { o.Scale = ledstrip.Stops{} }, "strip.scale"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := backend.DefaultOptions()
			tc.edit(&o)
			err := o.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
