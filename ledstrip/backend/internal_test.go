package backend

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"io/fs"
	"math"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"periph.io/x/devices/v3/nrzled"

	"github.com/glowcast/glowcast/ledstrip/ledstriptest"
)

func TestGammaTable(t *testing.T) {
	o := DefaultOptions()
	o.Brightness = 100
	out, err := newOutput(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ in, want uint8 }{{0, 0}, {1, 1}, {128, 56}, {255, 255}} {
		if got := out.level(tc.in, 1); got != tc.want {
			t.Errorf("gamma 2.2 of %d: got %d, want %d", tc.in, got, tc.want)
		}
	}
	prev := uint8(0)
	for v := 1; v < 256; v++ {
		got := out.level(uint8(v), 1)
		if got < prev || got == 0 {
			t.Fatalf("gamma 2.2 of %d: got %d after %d, want monotone and lit", v, got, prev)
		}
		prev = got
	}
}

func TestEstimate(t *testing.T) {
	white := []pixel{{255, 255, 255, 0}, {255, 255, 255, 0}, {255, 255, 255, 0}, {255, 255, 255, 0}, {255, 255, 255, 0}}
	if got, want := estimateMA(white), 305.0; math.Abs(got-want) > 1e-9 {
		t.Errorf("5 white LEDs: got %v mA, want %v", got, want)
	}
	if got, want := estimateMA(make([]pixel, 5)), 5.0; got != want {
		t.Errorf("5 dark LEDs: got %v mA, want %v", got, want)
	}
}

func TestDeviceError(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want []string
	}{
		{"missing", &fs.PathError{Op: "open", Path: "/dev/spidev0.0", Err: syscall.ENOENT}, []string{"dtparam=spi=on", "spi group"}},
		{"permission", &fs.PathError{Op: "open", Path: "/dev/spidev0.0", Err: syscall.EACCES}, []string{"spi group", "SupplementaryGroups=spi"}},
		{"other", &fs.PathError{Op: "open", Path: "/dev/spidev0.0", Err: syscall.EIO}, []string{"open SPI device /dev/spidev0.0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := deviceError("/dev/spidev0.0", tc.err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to name %s", err, w)
				}
			}
			if !errors.Is(err, tc.err.(*fs.PathError).Err) {
				t.Errorf("got %v, want it to wrap %v", err, tc.err)
			}
		})
	}
}

func TestEncoderMatchesNrzled(t *testing.T) {
	// Our RGBW encoder uses the same symbols as nrzled's RGB path; with
	// three channels both must produce the same bytes.
	r := rand.New(rand.NewPCG(1, 2))
	const n = 7
	p := &ledstriptest.Port{}
	d, err := nrzled.NewSPI(p, &nrzled.Opts{NumPixels: n, Channels: 3, Freq: spiFreq})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		rgb := make([]byte, 3*n)
		for i := range rgb {
			rgb[i] = byte(r.IntN(256))
		}
		if _, err := d.Write(rgb); err != nil {
			t.Fatal(err)
		}
		grb := make([]byte, 3*n)
		for i := 0; i < len(rgb); i += 3 {
			grb[i], grb[i+1], grb[i+2] = rgb[i+1], rgb[i], rgb[i+2]
		}
		own := make([]byte, frameLen(n, 3))
		encodeNRZ(own, grb)
		if got, want := own, p.Last(); !bytes.Equal(got, want) {
			t.Fatalf("got % x, want % x", got, want)
		}
	}
}

func TestQuietWindow(t *testing.T) {
	at := func(h, m int) time.Time { return time.Date(2025, 6, 1, h, m, 0, 0, time.UTC) }
	for _, tc := range []struct {
		q    QuietHours
		t    time.Time
		in   bool
		next time.Time
	}{
		{QuietHours{Start: "22:00", End: "07:00", Off: true}, at(21, 0), false, at(22, 0)},
		{QuietHours{Start: "22:00", End: "07:00", Off: true}, at(23, 0), true, at(24+7, 0)},
		{QuietHours{Start: "22:00", End: "07:00", Off: true}, at(6, 59), true, at(7, 0)},
		{QuietHours{Start: "08:15", End: "09:00", Off: true}, at(9, 0), false, at(24+8, 15)},
		{QuietHours{}, at(9, 0), false, time.Time{}},
	} {
		t.Run(fmt.Sprintf("%s-%s at %s", tc.q.Start, tc.q.End, tc.t.Format("15:04")), func(t *testing.T) {
			w, err := tc.q.parse()
			if err != nil {
				t.Fatal(err)
			}
			if got := w.in(tc.t); got != tc.in {
				t.Errorf("in: got %v, want %v", got, tc.in)
			}
			if got := w.next(tc.t); !got.Equal(tc.next) {
				t.Errorf("next: got %v, want %v", got, tc.next)
			}
		})
	}
}

// FuzzOutput checks the output stage's promises for any colours and
// settings: no channel above the cap, the estimate within the budget, and
// RGBW white extraction never brightening a channel.
func FuzzOutput(f *testing.F) {
	f.Add([]byte{255, 255, 255, 255, 255, 255}, uint8(100), uint16(500), false)
	f.Add([]byte{1, 2, 3, 128, 0, 255, 9, 9, 9}, uint8(40), uint16(10), true)
	f.Fuzz(func(t *testing.T, data []byte, capPct uint8, limit uint16, rgbw bool) {
		n := len(data) / 3
		if n == 0 || n > 400 {
			return
		}
		o := DefaultOptions()
		o.LEDs, o.RGBW = n, rgbw
		o.Brightness = float64(capPct%100 + 1)
		o.CurrentLimitMA = float64(n) + 1 + float64(limit)
		if err := o.Validate(); err != nil {
			t.Fatal(err)
		}
		out, err := newOutput(o)
		if err != nil {
			t.Fatal(err)
		}
		px := make([]color.RGBA, n)
		for i := range px {
			px[i] = color.RGBA{R: data[3*i], G: data[3*i+1], B: data[3*i+2], A: 255}
		}
		dst := make([]pixel, n)
		out.apply(dst, px, out.cap)
		top := uint8(max(1, math.Round(255*out.cap)))
		for i, p := range dst {
			if p.r > top || p.g > top || p.b > top || p.w > top {
				t.Fatalf("LED %d: got %v, want every channel at most %d", i, p, top)
			}
		}
		if got := estimateMA(dst); got > o.CurrentLimitMA+1e-9 {
			t.Fatalf("got estimate %v mA, want at most %v", got, o.CurrentLimitMA)
		}
	})
}
