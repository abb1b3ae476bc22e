package backend_test

import (
	"bytes"
	"image"
	"image/color"
	"testing"

	"periph.io/x/conn/v3/physic"
	"periph.io/x/devices/v3/nrzled"

	"github.com/glowcast/glowcast/ledstrip"
	"github.com/glowcast/glowcast/ledstrip/backend"
	"github.com/glowcast/glowcast/ledstrip/ledstriptest"
)

// These tests pin down the nrzled v3.7.4 behaviour this package works
// around. If one fails after an upgrade, the library changed: check whether
// the workaround is still needed.

func newNrzled(t *testing.T, n, ch int) (*ledstriptest.Port, *nrzled.Dev) {
	t.Helper()
	p := &ledstriptest.Port{}
	d, err := nrzled.NewSPI(p, &nrzled.Opts{NumPixels: n, Channels: ch, Freq: 2500 * physic.KiloHertz})
	if err != nil {
		t.Fatal(err)
	}
	return p, d
}

func TestNrzledRGBWMisaligns(t *testing.T) {
	p, d := newNrzled(t, 2, 4)
	// Two RGBW pixels: R G B W.
	if _, err := d.Write([]byte{1, 2, 3, 4, 5, 6, 7, 8}); err != nil {
		t.Fatal(err)
	}
	frame := p.Last()
	if got, want := len(frame), 16*2+6; got != want {
		t.Fatalf("nrzled RGBW frame: got %d bytes, want %d", got, want)
	}
	want := [][]byte{{2, 1, 3, 4}, {6, 5, 7, 8}} // G R B W on the wire
	leds, err := ledstriptest.Decode(frame, 2, 4)
	if err == nil && equalLEDs(leds, want) {
		t.Fatalf("nrzled now encodes RGBW correctly (got %v); the own RGBW encoder may be dropped", leds)
	}
	// The encoder steps 12 bytes per pixel in a buffer laid out at 16: the
	// bytes where pixel 0's white belongs carry pixel 1's green.
	if got, want := nrzByte(frame[ledstriptest.Pad+12:]), byte(5); got != want {
		t.Errorf("nrzled RGBW: got %d where pixel 0's white goes, want %d (pixel 1's green, misaligned)", got, want)
	}

	// Our path puts the same pixels on the wire correctly.
	o := plain(2)
	o.RGBW, o.White = true, backend.WhiteNone
	o.Scale = flat("#010203")
	p2, s := open(t, o)
	if err := s.Show(fresh(2, 0)); err != nil {
		t.Fatal(err)
	}
	if got, want := lastLEDs(t, p2, o), [][]byte{{2, 1, 3, 0}, {2, 1, 3, 0}}; !equalLEDs(got, want) {
		t.Errorf("own RGBW encoder: got %v, want %v", got, want)
	}
}

func TestNrzledPartialDrawOffset(t *testing.T) {
	p, d := newNrzled(t, 4, 3)
	// Start from a valid all-dark strip so that only the offset is tested.
	if _, err := d.Write(make([]byte, 12)); err != nil {
		t.Fatal(err)
	}
	red := image.NewNRGBA(image.Rect(0, 0, 1, 1))
	red.Set(0, 0, color.NRGBA{R: 255, A: 255})
	if err := d.Draw(image.Rect(2, 0, 3, 1), red, image.Point{}); err != nil {
		t.Fatal(err)
	}
	leds, err := ledstriptest.Decode(p.Last(), 4, 3)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if leds[2][1] == 255 {
		t.Fatalf("nrzled now draws pixel 2 at its place (got %v); partial Draw may be usable", leds)
	}
	// The colour landed 4·2 bytes into the data: channel 2 of LED 0 holds
	// the green byte, LED 1 channel 0 the red one.
	if got, want := leds[1][0], byte(255); got != want {
		t.Errorf("nrzled partial Draw: got LED 1 channel 0 = %d, want %d (offset 4·x)", got, want)
	}
}

func TestNrzledBufferStartsUnencoded(t *testing.T) {
	p, d := newNrzled(t, 3, 3)
	px := image.NewNRGBA(image.Rect(0, 0, 1, 1))
	px.Set(0, 0, color.NRGBA{G: 255, A: 255})
	if err := d.Draw(image.Rect(0, 0, 1, 1), px, image.Point{}); err != nil {
		t.Fatal(err)
	}
	frame := p.Last()
	// LED 1's data would be 0x88 (encoded zero bits) if the buffer started
	// encoded; it is 0x00, which the LEDs read as no bits at all.
	if got := frame[ledstriptest.Pad+12 : ledstriptest.Pad+24]; !bytes.Equal(got, make([]byte, 12)) {
		t.Fatalf("nrzled now initialises its buffer (LED 1 bytes % x)", got)
	}
	if _, err := ledstriptest.Decode(frame, 3, 3); err == nil {
		t.Error("Decode of a frame with 0x00 data: got nil error, want one")
	}
}

func TestFirstFrameFullyEncoded(t *testing.T) {
	// Our first frame lights one LED and still carries valid zero symbols
	// for the rest: the whole strip is written every time.
	o := plain(3)
	o.Scale = flat("#00ff00")
	p, s := open(t, o)
	if err := s.Show(ledstrip.Frame{State: ledstrip.StateWaiting}); err != nil {
		t.Fatal(err)
	}
	leds := lastLEDs(t, p, o)
	if got := leds[1]; !bytes.Equal(got, []byte{0, 0, 0}) {
		t.Errorf("LED 1: got % x, want 00 00 00", got)
	}
	if frame := p.Last(); !bytes.Equal(frame[ledstriptest.Pad+12:ledstriptest.Pad+24], bytes.Repeat([]byte{0x88}, 12)) {
		t.Errorf("LED 1 bytes: got % x, want twelve 0x88", frame[ledstriptest.Pad+12:ledstriptest.Pad+24])
	}
}

func equalLEDs(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// nrzByte decodes the four SPI bytes at the start of b into one data byte.
func nrzByte(b []byte) byte {
	var v byte
	for _, x := range b[:4] {
		for _, nib := range [2]byte{x >> 4, x & 0xF} {
			v <<= 1
			if nib == 0xE {
				v |= 1
			}
		}
	}
	return v
}
