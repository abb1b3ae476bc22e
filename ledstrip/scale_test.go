package ledstrip_test

import (
	"image/color"
	"math"
	"strings"
	"testing"

	"github.com/glowcast/glowcast/ledstrip"
)

func TestDefaultScaleStops(t *testing.T) {
	sc := ledstrip.DefaultScale()
	for _, tc := range []struct {
		c   float64
		hue float64
	}{
		{-20, 275}, {-10, 235}, {0, 207}, {10, 180}, {20, 139},
		{25, 60}, {30, 39}, {35, 19}, {40, 0},
	} {
		t.Run(ledstrip.Hex(sc.Color(tc.c)), func(t *testing.T) {
			got := ledstrip.Hue(sc.Color(tc.c))
			d := math.Abs(got - tc.hue)
			d = math.Min(d, 360-d)
			if d > 1 {
				t.Errorf("%v °C: got hue %.2f°, want %v° ±1", tc.c, got, tc.hue)
			}
			c := sc.Color(tc.c)
			if max(c.R, c.G, c.B) != 255 {
				t.Errorf("%v °C: got %s, want a full-value colour", tc.c, ledstrip.Hex(c))
			}
		})
	}
}

func TestDefaultScaleHueNeverRises(t *testing.T) {
	sc := ledstrip.DefaultScale()
	prev := ledstrip.Hue(sc.Color(-30))
	for t10 := -300; t10 <= 500; t10++ {
		c := float64(t10) / 10
		h := ledstrip.Hue(sc.Color(c))
		if h > prev {
			t.Fatalf("%v °C: got hue %.3f°, above %.3f° at %v °C", c, h, prev, c-0.1)
		}
		prev = h
	}
}

func TestScaleClampsAtEnds(t *testing.T) {
	sc := ledstrip.DefaultScale()
	for _, tc := range []struct{ c, end float64 }{{-60, -20}, {-20.5, -20}, {40.5, 40}, {95, 40}} {
		if got, want := sc.Color(tc.c), sc.Color(tc.end); got != want {
			t.Errorf("%v °C: got %s, want %s", tc.c, ledstrip.Hex(got), ledstrip.Hex(want))
		}
	}
}

func TestScaleShorterArc(t *testing.T) {
	for _, tc := range []struct {
		name    string
		a, b    string
		wantHue float64 // half way
	}{
		{"blue to red through magenta", "#0000ff", "#ff0000", 300},
		{"red to blue through magenta", "#ff0000", "#0000ff", 300},
		{"red to green through yellow", "#ff0000", "#00ff00", 60},
		{"magenta to yellow through red", "#ff00ff", "#ffff00", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := ledstrip.Stops{{C: 0, Color: tc.a}, {C: 10, Color: tc.b}}
			got := ledstrip.Hue(sc.Color(5))
			d := math.Abs(got - tc.wantHue)
			if d = math.Min(d, 360-d); d > 1 {
				t.Errorf("got hue %.2f°, want %v°", got, tc.wantHue)
			}
		})
	}
}

func TestStopsValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stops ledstrip.Stops
		want  string
	}{
		{"one stop", ledstrip.Stops{{C: 0, Color: "#ffffff"}}, "strip.scale has 1 stops"},
		{"descending", ledstrip.Stops{{C: 10, Color: "#ffffff"}, {C: 0, Color: "#000000"}}, "strip.scale[1].c"},
		{"bad colour", ledstrip.Stops{{C: 0, Color: "#ffffff"}, {C: 10, Color: "red"}}, "strip.scale[1].color"},
		{"unquoted hex read as empty", ledstrip.Stops{{C: 0, Color: ""}, {C: 10, Color: "#ff0000"}}, "in quotes"},
		{"NaN", ledstrip.Stops{{C: math.NaN(), Color: "#ffffff"}, {C: 10, Color: "#ff0000"}}, "strip.scale[0].c"},
		{"fine without #", ledstrip.Stops{{C: 0, Color: "0000ff"}, {C: 10, Color: "#FF0000"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.stops.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestHexRoundTrip(t *testing.T) {
	for _, c := range []color.RGBA{{A: 255}, {R: 0xc8, G: 0x3c, B: 0x14, A: 255}, {R: 255, G: 255, B: 255, A: 255}} {
		got, err := ledstrip.ParseHex(ledstrip.Hex(c))
		if err != nil || got != c {
			t.Errorf("ParseHex(Hex(%v)): got %v, %v, want %v", c, got, err, c)
		}
	}
}

func TestRenderLooks(t *testing.T) {
	sc := ledstrip.DefaultScale()
	nan := math.NaN()
	looks := map[ledstrip.State][]color.RGBA{}
	for _, st := range []ledstrip.State{
		ledstrip.StateStarting, ledstrip.StateWaiting, ledstrip.StateAgentOffline, ledstrip.StateBrokerDown,
	} {
		px := ledstrip.Render(ledstrip.Frame{State: st}, 5, sc)
		if px[0] == (color.RGBA{}) {
			t.Errorf("%s: got LED 0 dark, want a look", st)
		}
		for k, other := range looks {
			if px[0] == other[0] {
				t.Errorf("%s: got the same first LED as %s (%s)", st, k, ledstrip.Hex(px[0]))
			}
		}
		looks[st] = px
	}
	for i, c := range ledstrip.Render(ledstrip.Frame{State: ledstrip.StateOff, Temps: []float64{20}}, 5, sc) {
		if c.R|c.G|c.B != 0 {
			t.Errorf("off: LED %d got %s, want dark", i, ledstrip.Hex(c))
		}
	}
	temps := []float64{20, nan, -5, 33, 10}
	fr := ledstrip.Render(ledstrip.Frame{State: ledstrip.StateFresh, Temps: temps}, 5, sc)
	st := ledstrip.Render(ledstrip.Frame{State: ledstrip.StateStale, Temps: temps}, 5, sc)
	for i, temp := range temps {
		if math.IsNaN(temp) {
			c := fr[i]
			if c.R != c.G || c.G != c.B || c.R == 0 {
				t.Errorf("missing value: got %s, want a lit grey", ledstrip.Hex(c))
			}
			continue
		}
		if got, want := fr[i], sc.Color(temp); got != want {
			t.Errorf("fresh LED %d: got %s, want %s", i, ledstrip.Hex(got), ledstrip.Hex(want))
		}
		if !(int(st[i].R)+int(st[i].G)+int(st[i].B) < int(fr[i].R)+int(fr[i].G)+int(fr[i].B)) {
			t.Errorf("stale LED %d: got %s, want dimmer than fresh %s", i, ledstrip.Hex(st[i]), ledstrip.Hex(fr[i]))
		}
		if d := math.Abs(ledstrip.Hue(st[i]) - ledstrip.Hue(fr[i])); d > 2 {
			t.Errorf("stale LED %d: got hue %.1f, want fresh hue %.1f", i, ledstrip.Hue(st[i]), ledstrip.Hue(fr[i]))
		}
	}
	// Ten LEDs, five temperatures: each temperature lights two LEDs.
	long := ledstrip.Render(ledstrip.Frame{State: ledstrip.StateFresh, Temps: temps}, 10, sc)
	for i := range long {
		if got, want := long[i], fr[i/2]; got != want {
			t.Errorf("10 LEDs: LED %d got %s, want %s", i, ledstrip.Hex(got), ledstrip.Hex(want))
		}
	}
}
