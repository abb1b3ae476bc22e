package browser

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"math"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.uber.org/goleak"

	"github.com/glowcast/glowcast/agent"
	"github.com/glowcast/glowcast/agent/statuspage"
	"github.com/glowcast/glowcast/device"
	"github.com/glowcast/glowcast/ledstrip"
	"github.com/glowcast/glowcast/ledstrip/backend"
	"github.com/glowcast/glowcast/protocol"
	"github.com/glowcast/glowcast/test/kit/mqtttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// chromium finds the browser; tests fail (not skip) without it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Fatal("chromium not found: apt-get install -y chromium, or set $CHROMIUM")
	return ""
}

// browser starts a headless Chromium with a fresh profile for one test.
func browser(t *testing.T) context.Context {
	t.Helper()
	// chromedp's defaults (headless, no first run, sRGB colour profile,
	// no background networking or sync) and the rest of what CI needs.
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-quic", true),
		// Pixels in sRGB as written, with no display profile applied.
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.WindowSize(1000, 700),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	// A bound for a hung browser, not a speed target: a cold Chromium on a
	// loaded 2-core machine took over 30 s to answer.
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// swatch is one LED swatch as laid out on the page.
type swatch struct {
	Device string  `json:"device"`
	X      float64 `json:"x"`
	Y      float64 `json:"y"`
	RGB    string  `json:"rgb"`
}

const swatchesJS = `Array.from(document.querySelectorAll('tr.device')).flatMap(r =>
  Array.from(r.querySelectorAll('.led')).map(e => {
    const b = e.getBoundingClientRect();
    return {device: r.dataset.device, x: b.x + b.width / 2, y: b.y + b.height / 2, rgb: e.dataset.rgb};
  }))`

// shoot loads url and returns the swatches and a screenshot of the page.
func shoot(t *testing.T, ctx context.Context, url string) ([]swatch, image.Image) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("loading %s: %v", url, err)
	}
	sw, err := chromedp.Run(ctx, chromedp.Evaluate[[]swatch](swatchesJS))
	if err != nil {
		t.Fatalf("finding the swatches: %v", err)
	}
	dpr, err := chromedp.Run(ctx, chromedp.Evaluate[float64]("window.devicePixelRatio"))
	if err != nil {
		t.Fatalf("device pixel ratio: %v", err)
	}
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("decoding the screenshot: %v", err)
	}
	for i := range sw {
		sw[i].X *= dpr
		sw[i].Y *= dpr
	}
	if dir := os.Getenv("GLOWCAST_SCREENSHOTS"); dir != "" {
		os.WriteFile(filepath.Join(dir, t.Name()[len("Test"):]+".png"), shot, 0o644)
	}
	return sw, img
}

// pixel returns the colour at the swatch's centre as #rrggbb.
func pixel(img image.Image, s swatch) string {
	r, g, b, _ := img.At(int(math.Round(s.X)), int(math.Round(s.Y))).RGBA()
	return fmt.Sprintf("#%02x%02x%02x", r>>8, g>>8, b>>8)
}

// close reports whether two #rrggbb colours differ by at most 2 per
// channel (the compositor may round).
func near(a, b string) bool {
	ca, err1 := ledstrip.ParseHex(a)
	cb, err2 := ledstrip.ParseHex(b)
	if err1 != nil || err2 != nil {
		return false
	}
	d := func(x, y uint8) bool { return math.Abs(float64(x)-float64(y)) <= 2 }
	return d(ca.R, cb.R) && d(ca.G, cb.G) && d(ca.B, cb.B)
}

// lastFrame reads the device's jsonl LED log and returns its last record.
func lastFrame(t *testing.T, path string) (state ledstrip.State, rgb []string) {
	t.Helper()
	r, _, err := backend.LastJSONL(path)
	if err != nil {
		t.Fatal(err)
	}
	return r.State, r.RGB
}

// TestStatusPageShowsTheDevicesColours runs Mosquitto, an agent with the
// bundled sample forecast and a real device whose strip is the jsonl
// backend, then compares the swatches Chromium draws with the colours the
// device wrote.
func TestStatusPageShowsTheDevicesColours(t *testing.T) {
	b := mqtttest.Start(t)
	acfg := agent.Default()
	acfg.Broker, acfg.StateDir, acfg.HTTP = b.URL(), t.TempDir(), "127.0.0.1:0"
	acfg.Weather.Provider, acfg.Location = "sample", "52.52,13.40"
	a, err := agent.New(acfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	leds := filepath.Join(t.TempDir(), "leds.jsonl")
	dcfg := device.Default()
	dcfg.Broker, dcfg.DeviceID, dcfg.LED = b.URL(), "kitchen", "jsonl:"+leds
	strip, err := backend.Open(dcfg.LED, dcfg.StripOptions())
	if err != nil {
		t.Fatal(err)
	}
	d, err := device.New(dcfg, strip, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { a.Run(ctx); done <- struct{}{} }()
	go func() { d.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done })

	bctx := browser(t)
	mqtttest.WaitFor(t, 15*time.Second, "the device to show fresh temps", func() bool {
		st, _ := lastFrame(t, leds)
		return st == ledstrip.StateFresh && a.HTTPAddr() != ""
	})
	mqtttest.WaitFor(t, 5*time.Second, "the agent to know the temps", func() bool {
		ds := a.Devices()
		return len(ds) == 1 && ds[0].LastTemps != nil && ds[0].Online
	})

	// The device re-slots at each hour: should the hour turn between its
	// frame and the screenshot, compare again.
	var mismatch []string
	for attempt := 0; attempt < 3; attempt++ {
		_, want := lastFrame(t, leds)
		sw, img := shoot(t, bctx, "http://"+a.HTTPAddr()+"/")
		mismatch = nil
		if len(sw) != len(want) || len(want) != 5 {
			t.Fatalf("got %d swatches, device shows %d LEDs (%v); want 5", len(sw), len(want), want)
		}
		for i, s := range sw {
			if s.Device != "kitchen" {
				t.Fatalf("swatch %d belongs to %q, want kitchen", i, s.Device)
			}
			if got := pixel(img, s); !near(got, want[i]) || s.RGB != want[i] {
				mismatch = append(mismatch, fmt.Sprintf("LED %d: screenshot %s, page %s, device %s", i, got, s.RGB, want[i]))
			}
		}
		if len(mismatch) == 0 {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Errorf("status page swatches differ from the device:\n%v", mismatch)
}

// TestStatusPageLooks checks the looks other than fresh in the browser:
// stale temps dimmed, missing values grey, waiting, against the device's
// renderer.
func TestStatusPageLooks(t *testing.T) {
	now := time.Now()
	base := now.UTC().Truncate(time.Hour)
	hourly := make(protocol.TempList, 24)
	for i := range hourly {
		hourly[i] = float64(-15 + 3*i)
	}
	hourly[6] = math.NaN()
	tp := &protocol.Temps{TempsC: protocol.TempList{-15, -6, math.NaN(), 12, 21}, OffsetsH: protocol.Offsets,
		IssuedAt: now.Add(-3 * time.Hour), ValidUntil: now.Add(9 * time.Hour), Location: protocol.Location{Lat: 1, Lon: 2},
		Hourly: protocol.Hourly{Start: base, TempsC: hourly}}
	devs := []statuspage.Device{
		{ID: "a-stale", Online: true, Temps: tp},
		{ID: "b-waiting", Online: true},
	}
	srv := httptest.NewServer(statuspage.New(func() []statuspage.Device { return devs }, statuspage.Options{}))
	defer srv.Close()

	sw, img := shoot(t, browser(t), srv.URL+"/")
	want := map[string][]string{}
	for _, d := range devs {
		want[d.ID] = statuspage.Swatches(d, now, statuspage.Options{})
	}
	if want["a-stale"][2] != "#5a5a5a" {
		t.Fatalf("test setup: LED 2 should be the no-data grey, got %s", want["a-stale"][2])
	}
	if len(sw) != 10 {
		t.Fatalf("got %d swatches, want 10", len(sw))
	}
	seen := map[string]int{}
	for _, s := range sw {
		i := seen[s.Device]
		seen[s.Device]++
		if got := pixel(img, s); !near(got, want[s.Device][i]) {
			t.Errorf("%s LED %d: screenshot %s, want %s", s.Device, i, got, want[s.Device][i])
		}
	}
}
