package ledstrip_test

import (
	"bytes"
	"flag"
	"image"
	"image/png"
	"math"
	"os"
	"testing"

	"github.com/glowcast/glowcast/ledstrip"
)

var update = flag.Bool("update", false, "rewrite docs/scale.png from the default scale")

const scalePNG = "../docs/scale.png"

// TestScalePNG keeps docs/scale.png in step with the default scale; run
// with -update after changing the scale or the picture.
func TestScalePNG(t *testing.T) {
	var buf bytes.Buffer
	if err := ledstrip.WriteScalePNG(&buf, ledstrip.DefaultScale(), 720, 72); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(scalePNG, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := png.Decode(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(scalePNG)
	if err != nil {
		t.Fatalf("%v (run go test ./ledstrip -run TestScalePNG -update)", err)
	}
	defer f.Close()
	want, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if got.Bounds() != want.Bounds() {
		t.Fatalf("got bounds %v, want %v (docs/scale.png is stale: rerun with -update)", got.Bounds(), want.Bounds())
	}
	for y := got.Bounds().Min.Y; y < got.Bounds().Max.Y; y++ {
		for x := got.Bounds().Min.X; x < got.Bounds().Max.X; x++ {
			if g, w := got.At(x, y), want.At(x, y); !sameColor(g, w) {
				t.Fatalf("pixel %d,%d: got %v, want %v (docs/scale.png is stale: rerun with -update)", x, y, g, w)
			}
		}
	}
}

func sameColor(a, b interface{ RGBA() (r, g, b, a uint32) }) bool {
	r1, g1, b1, a1 := a.RGBA()
	r2, g2, b2, a2 := b.RGBA()
	return r1 == r2 && g1 == g2 && b1 == b2 && a1 == a2
}

func TestScaleImageColours(t *testing.T) {
	const w, h = 720, 72
	img, err := ledstrip.ScaleImage(ledstrip.DefaultScale(), w, h)
	if err != nil {
		t.Fatal(err)
	}
	// The bar runs from x=12 (−20 °C) to x=w-12-56-1 (40 °C).
	x0, x1 := 12.0, float64(w-12-56-1)
	for _, tc := range []struct{ c, hue float64 }{{-20, 275}, {0, 207}, {20, 139}, {40, 0}} {
		x := int(math.Round(x0 + (tc.c+20)/60*(x1-x0)))
		got := ledstrip.Hue(img.RGBAAt(x, 10))
		d := math.Abs(got - tc.hue)
		if d = math.Min(d, 360-d); d > 1.5 {
			t.Errorf("%v °C at x=%d: got hue %.1f, want %v", tc.c, x, got, tc.hue)
		}
	}
	if _, err := ledstrip.ScaleImage(ledstrip.DefaultScale(), 20, 10); err == nil {
		t.Error("tiny picture: got nil error, want one")
	}
	if _, err := ledstrip.ScaleImage(ledstrip.Stops{}, w, h); err == nil {
		t.Error("invalid scale: got nil error, want one")
	}
	var _ image.Image = img
}

// TestScaleImageFahrenheit checks that the °F picture keeps the colours and
// puts its ticks at °F temperatures.
func TestScaleImageFahrenheit(t *testing.T) {
	const w, h = 720, 72
	c, err := ledstrip.ScaleImageIn(ledstrip.DefaultScale(), w, h, ledstrip.UnitC)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ledstrip.ScaleImageIn(ledstrip.DefaultScale(), w, h, ledstrip.UnitF)
	if err != nil {
		t.Fatal(err)
	}
	x0, x1 := 12.0, float64(w-12-56-1)
	xOf := func(celsius float64) int { return int(math.Round(x0 + (celsius+20)/60*(x1-x0))) }
	for x := int(x0); x < int(x1); x += 7 {
		if !sameColor(c.RGBAAt(x, 10), f.RGBAAt(x, 10)) {
			t.Fatalf("x=%d: °F bar %v, °C bar %v: the colours must not depend on the unit", x, f.RGBAAt(x, 10), c.RGBAAt(x, 10))
		}
	}
	barH := h - 18
	// A long (10°) tick reaches 8 px into the bar; a short one 4.
	long := func(img *image.RGBA, x int) bool {
		p := img.RGBAAt(x, barH-7)
		return p.R == 230 && p.G == 230 && p.B == 230
	}
	for _, tc := range []struct {
		name     string
		celsius  float64
		inC, inF bool
	}{
		{"0 °F", ledstrip.ToC(0), false, true},
		{"50 °F = 10 °C", 10, true, true},
		{"20 °C = 68 °F", 20, true, false},
	} {
		if got := long(c, xOf(tc.celsius)); got != tc.inC {
			t.Errorf("%s: long tick in the °C picture %v, want %v", tc.name, got, tc.inC)
		}
		if got := long(f, xOf(tc.celsius)); got != tc.inF {
			t.Errorf("%s: long tick in the °F picture %v, want %v", tc.name, got, tc.inF)
		}
	}
	if _, err := ledstrip.ScaleImageIn(ledstrip.DefaultScale(), w, h, "K"); err == nil {
		t.Error("unit K: got nil error, want one")
	}
}
