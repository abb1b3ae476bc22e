package backend_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/glowcast/glowcast/ledstrip"
	"github.com/glowcast/glowcast/ledstrip/backend"
	"github.com/glowcast/glowcast/ledstrip/ledstriptest"
)

func TestLEDTest(t *testing.T) {
	o := backend.DefaultOptions() // cap 40 %: full channels show as 102
	o.LEDs = 3
	// Quiet hours all day, off: the installation test must ignore them.
	o.Quiet = backend.QuietHours{Start: "00:00", End: "23:59", Off: true}
	o.Now = func() time.Time { return time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC) }
	p, s := open(t, o)
	if err := backend.LEDTest(context.Background(), s, 0); err != nil {
		t.Fatal(err)
	}
	frames := p.Frames()
	decode := func(i int) [][]byte {
		leds, err := ledstriptest.Decode(frames[i], 3, 3)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		return leds
	}
	// Wire order GRB.
	colours := [][]byte{{0, 102, 0}, {102, 0, 0}, {0, 0, 102}, {102, 102, 102}}
	for led := range 3 {
		for k, want := range colours {
			i := 4*led + k
			for j, got := range decode(i) {
				w := []byte{0, 0, 0}
				if j == led {
					w = want
				}
				if string(got) != string(w) {
					t.Errorf("frame %d LED %d: got %v, want %v", i, j, got, w)
				}
			}
		}
	}
	sweep := frames[12 : len(frames)-1]
	if len(sweep) < 60 {
		t.Errorf("got %d sweep frames, want at least 60", len(sweep))
	}
	for i := range sweep {
		for j, led := range decode(12 + i) {
			if led[0]|led[1]|led[2] == 0 {
				t.Errorf("sweep frame %d LED %d: got dark, want a scale colour", i, j)
			}
		}
	}
	for j, led := range decode(len(frames) - 1) {
		if led[0]|led[1]|led[2] != 0 {
			t.Errorf("last frame LED %d: got %v, want dark", j, led)
		}
	}
}

func TestLEDTestCancelled(t *testing.T) {
	o := plain(2)
	p, s := open(t, o)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := backend.LEDTest(ctx, s, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
	for j, led := range lastLEDs(t, p, o) {
		if led[0]|led[1]|led[2] != 0 {
			t.Errorf("LED %d: got %v, want dark", j, led)
		}
	}
}

type otherStrip struct{}

func (otherStrip) Show(ledstrip.Frame) error { return nil }
func (otherStrip) Close() error              { return nil }

func TestLEDTestNeedsOwnStrip(t *testing.T) {
	if err := backend.LEDTest(context.Background(), otherStrip{}, 0); err == nil {
		t.Error("got nil error, want one")
	}
}
