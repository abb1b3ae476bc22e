package ledstrip_test

import (
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/glowcast/glowcast/ledstrip"
	"github.com/glowcast/glowcast/ledstrip/ledstriptest"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
)

// plain returns options that put looks on the wire unchanged: no gamma,
// full brightness, no fade, a budget no test frame reaches.
func plain(leds int) ledstrip.Options {
	o := ledstrip.DefaultOptions()
	o.LEDs = leds
	o.Gamma = 1
	o.Brightness = 100
	o.CurrentLimitMA = 100000
	o.Fade = 0
	return o
}

// flat is a scale that shows hex at every temperature.
func flat(hex string) ledstrip.Stops {
	return ledstrip.Stops{{C: -50, Color: hex}, {C: 50, Color: hex}}
}

func fresh(n int, t float64) ledstrip.Frame {
	temps := make([]float64, n)
	for i := range temps {
		temps[i] = t
	}
	return ledstrip.Frame{State: ledstrip.StateFresh, Temps: temps}
}

func open(t *testing.T, o ledstrip.Options) (*ledstriptest.Port, ledstrip.Strip) {
	t.Helper()
	p := &ledstriptest.Port{MaxTx: 1 << 16}
	s, err := ledstrip.OpenSPI(p, o)
	if err != nil {
		t.Fatalf("OpenSPI: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return p, s
}

func channels(o ledstrip.Options) int {
	if o.RGBW {
		return 4
	}
	return 3
}

// lastLEDs decodes the last transfer, failing the test on a malformed one.
func lastLEDs(t *testing.T, p *ledstriptest.Port, o ledstrip.Options) [][]byte {
	t.Helper()
	f := p.Last()
	if f == nil {
		t.Fatal("no frame was written")
	}
	leds, err := ledstriptest.Decode(f, o.LEDs, channels(o))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	return leds
}

func TestSPIWire(t *testing.T) {
	for _, tc := range []struct {
		name string
		leds int
		rgbw bool
	}{
		{"rgb 1", 1, false},
		{"rgb 5", 5, false},
		{"rgb 300", 300, false},
		{"rgbw 5", 5, true},
		{"rgbw 60", 60, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := ledstrip.DefaultOptions()
			o.LEDs, o.RGBW, o.Fade, o.CurrentLimitMA = tc.leds, tc.rgbw, 0, 20000
			p, s := open(t, o)
			for _, f := range []ledstrip.Frame{
				{State: ledstrip.StateStarting},
				fresh(5, 21.5),
				{State: ledstrip.StateStale, Temps: []float64{-3, math.NaN(), 12, 28, 41}},
			} {
				if err := s.Show(f); err != nil {
					t.Fatalf("Show: %v", err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			frames := p.Frames()
			if got, want := len(frames), 4; got != want {
				t.Fatalf("got %d frames, want %d", got, want)
			}
			ch := channels(o)
			for i, f := range frames {
				if got, want := len(f), 4*ch*tc.leds+6; got != want {
					t.Errorf("frame %d: got %d bytes, want %d", i, got, want)
				}
				// Decode checks padding and that every nibble is 0x8 or 0xE.
				if _, err := ledstriptest.Decode(f, tc.leds, ch); err != nil {
					t.Errorf("frame %d: %v", i, err)
				}
			}
			want := ledstriptest.Connect{Freq: 2500 * physic.KiloHertz, Mode: spi.Mode3, Bits: 8}
			if got := p.Connects(); len(got) != 1 || got[0] != want {
				t.Errorf("got Connect calls %v, want exactly one %v", got, want)
			}
			if got := p.Closed(); got != 1 {
				t.Errorf("got port closed %d times, want 1", got)
			}
		})
	}
}

func TestColourOrder(t *testing.T) {
	// #c83c14 is R 0xc8, G 0x3c, B 0x14.
	val := map[byte]byte{'R': 0xc8, 'G': 0x3c, 'B': 0x14}
	for _, rgbw := range []bool{false, true} {
		for _, order := range ledstrip.Orders {
			name := order
			if rgbw {
				name += "W"
			}
			t.Run(name, func(t *testing.T) {
				o := plain(3)
				o.Order, o.RGBW, o.White = order, rgbw, ledstrip.WhiteNone
				o.Scale = flat("#c83c14")
				p, s := open(t, o)
				if err := s.Show(fresh(3, 20)); err != nil {
					t.Fatal(err)
				}
				want := []byte{val[order[0]], val[order[1]], val[order[2]]}
				if rgbw {
					want = append(want, 0)
				}
				for i, led := range lastLEDs(t, p, o) {
					if string(led) != string(want) {
						t.Errorf("LED %d: got wire bytes % x, want % x", i, led, want)
					}
				}
			})
		}
	}
}

func TestWhitePolicy(t *testing.T) {
	// #c83c14: the grey part is 0x14 in every channel.
	for _, tc := range []struct {
		policy string
		want   []byte // G R B W
	}{
		{ledstrip.WhiteNone, []byte{0x3c, 0xc8, 0x14, 0}},
		{ledstrip.WhiteExtract, []byte{0x28, 0xb4, 0, 0x14}},
		{ledstrip.WhiteAdd, []byte{0x3c, 0xc8, 0x14, 0x14}},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			o := plain(2)
			o.RGBW, o.White, o.Scale = true, tc.policy, flat("#c83c14")
			p, s := open(t, o)
			if err := s.Show(fresh(2, 0)); err != nil {
				t.Fatal(err)
			}
			for i, led := range lastLEDs(t, p, o) {
				if string(led) != string(tc.want) {
					t.Errorf("LED %d: got % x, want % x", i, led, tc.want)
				}
			}
		})
	}
}

func TestGammaAndCap(t *testing.T) {
	for _, tc := range []struct {
		name       string
		hex        string
		gamma, cap float64
		want       byte // every channel that is lit
	}{
		{"gamma 2.2 of 128", "#808080", 2.2, 100, 56},
		{"gamma 2.2 of 255", "#ffffff", 2.2, 100, 255},
		{"gamma 2.2 keeps 1 lit", "#010101", 2.2, 100, 1},
		{"gamma 1 is identity", "#808080", 1, 100, 128},
		{"cap 40 of white", "#ffffff", 2.2, 40, 102},
		{"cap 40 keeps dim lit", "#020202", 2.2, 40, 1},
		{"cap 10 of white", "#ffffff", 1, 10, 26},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := plain(5)
			o.Gamma, o.Brightness, o.Scale = tc.gamma, tc.cap, flat(tc.hex)
			p, s := open(t, o)
			if err := s.Show(fresh(5, 0)); err != nil {
				t.Fatal(err)
			}
			for i, led := range lastLEDs(t, p, o) {
				for c, v := range led {
					if v != tc.want {
						t.Errorf("LED %d channel %d: got %d, want %d", i, c, v, tc.want)
					}
				}
			}
		})
	}
}

// estimate is the documented current model.
func estimate(leds [][]byte) float64 {
	var sum int
	for _, l := range leds {
		for _, v := range l {
			sum += int(v)
		}
	}
	return float64(sum)/765*60 + float64(len(leds))
}

func TestCurrentLimit(t *testing.T) {
	for _, tc := range []struct {
		name      string
		limit     float64
		wantFull  bool
		wantMaxMA float64
	}{
		{"5 white fit 500 mA", 500, true, 305},
		{"5 white fit 305 mA exactly", 305, true, 305},
		{"5 white scaled to 200 mA", 200, false, 200},
		{"5 white scaled to 50 mA", 50, false, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := plain(5)
			o.CurrentLimitMA, o.Scale = tc.limit, flat("#ffffff")
			p, s := open(t, o)
			if err := s.Show(fresh(5, 0)); err != nil {
				t.Fatal(err)
			}
			leds := lastLEDs(t, p, o)
			got := estimate(leds)
			if got > tc.wantMaxMA {
				t.Errorf("got estimate %.1f mA, want at most %.1f", got, tc.wantMaxMA)
			}
			// Scaling must not throw light away: within one step of the budget.
			if lo := tc.wantMaxMA - 5*3*60.0/765; got < lo {
				t.Errorf("got estimate %.1f mA, want at least %.1f", got, lo)
			}
			if full := leds[0][0] == 255; full != tc.wantFull {
				t.Errorf("got first channel %d, want full scale %v", leds[0][0], tc.wantFull)
			}
			for i, led := range leds {
				if led[0] != led[1] || led[1] != led[2] || led[0] != leds[0][0] {
					t.Errorf("LED %d: got % x, want all channels equal to %d", i, led, leds[0][0])
				}
			}
		})
	}
}

func TestCloseLeavesStripDark(t *testing.T) {
	for _, rgbw := range []bool{false, true} {
		o := plain(5)
		o.RGBW = rgbw
		o.Fade = 400 * time.Millisecond
		o.Scale = flat("#ffffff")
		p := &ledstriptest.Port{}
		s, err := ledstrip.OpenSPI(p, o)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Show(fresh(5, 0)); err != nil {
			t.Fatal(err)
		}
		// Close mid-fade: the fade must stop and the last frame be dark.
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		n := len(p.Frames())
		for i, led := range lastLEDs(t, p, o) {
			for c, v := range led {
				if v != 0 {
					t.Errorf("rgbw=%v LED %d channel %d: got %d after Close, want 0", rgbw, i, c, v)
				}
			}
		}
		if err := s.Show(fresh(5, 0)); err == nil {
			t.Errorf("rgbw=%v: Show after Close: got nil error, want one", rgbw)
		}
		if err := s.Close(); err != nil {
			t.Errorf("rgbw=%v: second Close: got %v, want nil", rgbw, err)
		}
		if got := len(p.Frames()); got != n {
			t.Errorf("rgbw=%v: got %d frames after a second Close, want %d", rgbw, got, n)
		}
	}
}

func TestOpenSPIErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		leds  int
		rgbw  bool
		maxTx int
		want  string // "" for success
	}{
		{"340 RGB LEDs fit 4096", 340, false, 4096, ""},
		{"341 RGB LEDs overflow 4096", 341, false, 4096, "spidev.bufsiz"},
		{"255 RGBW LEDs fit 4096", 255, true, 4096, ""},
		{"256 RGBW LEDs overflow 4096", 256, true, 4096, "spidev.bufsiz"},
		{"bad options", 0, false, 4096, "strip.leds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := ledstrip.DefaultOptions()
			o.LEDs, o.RGBW, o.CurrentLimitMA = tc.leds, tc.rgbw, 100000
			p := &ledstriptest.Port{MaxTx: tc.maxTx}
			s, err := ledstrip.OpenSPI(p, o)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("got %v, want success", err)
				}
				s.Close()
				return
			}
			if err == nil {
				s.Close()
				t.Fatalf("got success, want error naming %s", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %q, want it to name %s", err, tc.want)
			}
			if got := p.Closed(); got != 1 {
				t.Errorf("got port closed %d times, want 1", got)
			}
			if got := len(p.Connects()); got != 0 {
				t.Errorf("got %d Connect calls, want 0", got)
			}
		})
	}
}

func TestOpenSPIDeviceMissing(t *testing.T) {
	_, err := ledstrip.Open("spi:"+t.TempDir()+"/spidev0.0", ledstrip.DefaultOptions())
	if err == nil {
		t.Fatal("got nil error, want one")
	}
	for _, want := range []string{"dtparam=spi=on", "spi group"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q, want it to name %s", err, want)
		}
	}
}

func TestFade(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := plain(5)
		o.Fade = 400 * time.Millisecond
		o.Scale = flat("#c8c8c8")
		p, s := open(t, o)
		if err := s.Show(fresh(5, 0)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		synctest.Wait()
		mid := lastLEDs(t, p, o)[0][0]
		if mid < 80 || mid > 120 {
			t.Errorf("half way: got %d, want about 100 of 200", mid)
		}
		time.Sleep(250 * time.Millisecond)
		synctest.Wait()
		if got := lastLEDs(t, p, o)[0][0]; got != 200 {
			t.Errorf("after the fade: got %d, want 200", got)
		}
		n := len(p.Frames())
		if n < 10 || n > 30 {
			t.Errorf("got %d frames for a 400 ms fade, want 10..30", n)
		}
		// Show returned at once; the fade ran in the strip's goroutine and
		// now rests: no frames while nothing changes.
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got := len(p.Frames()); got != n {
			t.Errorf("got %d frames while idle, want %d", got, n)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestFrameGap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, s := open(t, plain(5))
		for i := range 5 {
			if err := s.Show(fresh(5, float64(i))); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		times := p.Times()
		if len(times) != 6 {
			t.Fatalf("got %d frames, want 6", len(times))
		}
		for i := 1; i < len(times); i++ {
			if d := times[i].Sub(times[i-1]); d < 300*time.Microsecond {
				t.Errorf("frames %d and %d: got %v apart, want at least 300µs", i-1, i, d)
			}
		}
	})
}

func TestQuietHours(t *testing.T) {
	day := func(h, m int) time.Time { return time.Date(2025, 1, 15, h, m, 0, 0, time.UTC) }
	for _, tc := range []struct {
		name  string
		quiet ledstrip.QuietHours
		at    time.Time
		want  byte
	}{
		{"before window", ledstrip.QuietHours{Start: "22:00", End: "07:00", Brightness: 10}, day(21, 59), 102},
		{"window start", ledstrip.QuietHours{Start: "22:00", End: "07:00", Brightness: 10}, day(22, 0), 26},
		{"after midnight", ledstrip.QuietHours{Start: "22:00", End: "07:00", Brightness: 10}, day(3, 0), 26},
		{"window end", ledstrip.QuietHours{Start: "22:00", End: "07:00", Brightness: 10}, day(7, 0), 102},
		{"off inside", ledstrip.QuietHours{Start: "22:00", End: "07:00", Off: true}, day(23, 30), 0},
		{"off outside", ledstrip.QuietHours{Start: "22:00", End: "07:00", Off: true}, day(12, 0), 102},
		{"same-day window", ledstrip.QuietHours{Start: "13:00", End: "14:30", Off: true}, day(14, 29), 0},
		{"cap above brightness keeps brightness", ledstrip.QuietHours{Start: "13:00", End: "14:30", Brightness: 80}, day(13, 0), 102},
		{"no window", ledstrip.QuietHours{}, day(3, 0), 102},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := plain(5)
			o.Brightness, o.Quiet, o.Scale = 40, tc.quiet, flat("#ffffff")
			o.Now = func() time.Time { return tc.at }
			p, s := open(t, o)
			if err := s.Show(fresh(5, 0)); err != nil {
				t.Fatal(err)
			}
			for i, led := range lastLEDs(t, p, o) {
				if led[0] != tc.want {
					t.Errorf("LED %d: got %d, want %d", i, led[0], tc.want)
				}
			}
		})
	}
}

func TestQuietHoursEdgesWithoutShow(t *testing.T) {
	// The device shows a frame on the hour; a window edge at :30 must still
	// take effect on time.
	synctest.Test(t, func(t *testing.T) {
		o := plain(5)
		o.Quiet = ledstrip.QuietHours{Start: "00:30", End: "01:15", Off: true}
		o.Scale = flat("#ffffff")
		o.Now = func() time.Time { return time.Now().UTC() } // the bubble starts at midnight UTC
		p, s := open(t, o)
		if err := s.Show(fresh(5, 0)); err != nil {
			t.Fatal(err)
		}
		for _, step := range []struct {
			wait time.Duration
			want byte
		}{
			{29 * time.Minute, 255},
			{2 * time.Minute, 0},
			{43 * time.Minute, 0},
			{2 * time.Minute, 255},
		} {
			time.Sleep(step.wait)
			synctest.Wait()
			if got := lastLEDs(t, p, o)[0][0]; got != step.want {
				t.Errorf("at %s: got %d, want %d", time.Now().UTC().Format("15:04"), got, step.want)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// failPort fails every transfer, as a spidev whose device went away.
type failPort struct{ ledstriptest.Port }

func (f *failPort) Connect(fr physic.Frequency, m spi.Mode, b int) (spi.Conn, error) {
	c, err := f.Port.Connect(fr, m, b)
	return failConn{c}, err
}

type failConn struct{ spi.Conn }

func (failConn) Tx(w, r []byte) error { return errors.New("spidev gone") }

func TestShowReportsWriteErrors(t *testing.T) {
	o := plain(5)
	p := &failPort{}
	s, err := ledstrip.OpenSPI(p, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Show(fresh(5, 0)); err == nil || !strings.Contains(err.Error(), "spidev gone") {
		t.Errorf("Show: got %v, want the transfer error", err)
	}
	if err := s.Close(); err == nil {
		t.Error("Close: got nil, want the off frame's transfer error")
	}
}

func TestOpenSPINotAPort(t *testing.T) {
	path := t.TempDir() + "/spidev0.0"
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := ledstrip.Open("spi:"+path, ledstrip.DefaultOptions())
	if err == nil || !strings.Contains(err.Error(), "not an SPI port") || !strings.Contains(err.Error(), "ls /dev/spidev*") {
		t.Errorf("got %v, want an error saying it is not an SPI port and how to find one", err)
	}
}

// TestFrameFade checks that a frame's own fade (the owner's fade_ms) wins
// over strip.fade, in both directions.
func TestFrameFade(t *testing.T) {
	ms := func(n int) *time.Duration { d := time.Duration(n) * time.Millisecond; return &d }
	for _, tc := range []struct {
		name      string
		stripFade time.Duration
		frameFade *time.Duration
		// wantMid is the first LED's red 200 ms after Show (0 → 200).
		wantMidLo, wantMidHi byte
	}{
		{"frame asks for 400 ms on a strip without fade", 0, ms(400), 80, 120},
		{"frame asks for 800 ms", 0, ms(800), 40, 60},
		{"frame asks for none on a fading strip", 400 * time.Millisecond, ms(0), 200, 200},
		{"frame leaves it to the strip", 400 * time.Millisecond, nil, 80, 120},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				o := plain(5)
				o.Fade, o.Scale = tc.stripFade, flat("#c8c8c8")
				p, s := open(t, o)
				f := fresh(5, 0)
				f.Fade = tc.frameFade
				if err := s.Show(f); err != nil {
					t.Fatal(err)
				}
				time.Sleep(200 * time.Millisecond)
				synctest.Wait()
				if got := lastLEDs(t, p, o)[0][0]; got < tc.wantMidLo || got > tc.wantMidHi {
					t.Errorf("200 ms in: got %d, want %d..%d", got, tc.wantMidLo, tc.wantMidHi)
				}
				time.Sleep(time.Second)
				synctest.Wait()
				if got := lastLEDs(t, p, o)[0][0]; got != 200 {
					t.Errorf("after the fade: got %d, want 200", got)
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}
