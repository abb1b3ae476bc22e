package browsertest

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/glowcast/glowcast/agent"
	"github.com/glowcast/glowcast/device"
	"github.com/glowcast/glowcast/ledstrip"
	"github.com/glowcast/glowcast/test/kit/mqtttest"
)

// stripRecord is one jsonl frame with the settings fields.
type stripRecord struct {
	State      string   `json:"state"`
	RGB        []string `json:"rgb"`
	Brightness int      `json:"brightness"`
}

func lastRecord(t *testing.T, path string) stripRecord {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return stripRecord{}
	}
	defer f.Close()
	var rec stripRecord
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("jsonl record %q: %v", sc.Text(), err)
		}
	}
	return rec
}

// TestStatusPageControlsReachTheDevice runs Mosquitto (shipped config), an
// agent with an API token and a real device with a jsonl strip, then uses
// the page's controls in Chromium: without the token a change is refused
// and the device keeps its settings; with the token typed into the page the
// brightness slider and the on/off switch change what the device shows,
// and the page shows the device's report.
func TestStatusPageControlsReachTheDevice(t *testing.T) {
	const token = "s3cret-token-for-the-page-test"
	b := mqtttest.Start(t)
	tokenFile := filepath.Join(t.TempDir(), "api-token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	acfg := agent.Default()
	acfg.Broker, acfg.StateDir, acfg.HTTP = b.URL(), t.TempDir(), "127.0.0.1:0"
	acfg.Weather.Provider, acfg.Location = "sample", "52.52,13.40"
	acfg.APITokenFile = tokenFile
	a, err := agent.New(acfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	leds := filepath.Join(t.TempDir(), "leds.jsonl")
	dcfg := device.Default()
	dcfg.Broker, dcfg.DeviceID, dcfg.LED, dcfg.StateDir = b.URL(), "kitchen", "jsonl:"+leds, t.TempDir()
	strip, err := ledstrip.Open(dcfg.LED, dcfg.StripOptions())
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
	mqtttest.WaitFor(t, 15*time.Second, "the device to show fresh temps at full brightness", func() bool {
		r := lastRecord(t, leds)
		return r.State == string(ledstrip.StateFresh) && r.Brightness == 100 && a.HTTPAddr() != ""
	})
	mqtttest.WaitFor(t, 5*time.Second, "the agent to hear the device's report", func() bool {
		ds := a.Devices()
		return len(ds) == 1 && ds[0].Online && ds[0].LastTemps != nil
	})
	url := "http://" + a.HTTPAddr() + "/"
	if err := chromedp.Do(bctx, chromedp.Navigate(url), chromedp.WaitVisible(`tr[data-device="kitchen"] .power`)); err != nil {
		t.Fatalf("loading %s: %v", url, err)
	}
	eval := func(js string) string {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("evaluating %s: %v", js, err)
		}
		return v
	}
	waitPage := func(what, js string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			v, err := chromedp.Run(bctx, chromedp.Evaluate[bool](js))
			if err == nil && v {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for the page to show %s (%s); message: %q", what, js, eval(`document.getElementById("api-msg").textContent`))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	const row = `document.querySelector('tr[data-device="kitchen"]')`
	waitPage("the device's first report", row+`.querySelector(".reported").textContent.startsWith("on, 100 % (v0)")`)

	// Without the token: refused, said so, nothing sent to the device.
	if err := chromedp.Do(bctx, chromedp.Click(`tr[data-device="kitchen"] .power`)); err != nil {
		t.Fatal(err)
	}
	waitPage("the refusal", `document.getElementById("api-msg").textContent.includes("bearer token")`)
	waitPage("the switch back on, as reported", row+`.querySelector(".power").checked`)
	time.Sleep(300 * time.Millisecond)
	if r := lastRecord(t, leds); r.State == string(ledstrip.StateOff) {
		t.Fatal("the device went off on a request without the token")
	}

	// The operator types the token into the page.
	if err := chromedp.Do(bctx,
		chromedp.SendKeys(`#token`, token),
		chromedp.Click(`#token-form button`),
	); err != nil {
		t.Fatal(err)
	}
	waitPage("the token taken", `document.getElementById("token-state").textContent.includes("token set")`)

	// Brightness slider to 30.
	eval(`(() => { const s = ` + row + `.querySelector(".brightness"); s.focus(); s.value = "30"; s.dispatchEvent(new Event("input")); s.dispatchEvent(new Event("change")); return ""; })()`)
	mqtttest.WaitFor(t, 10*time.Second, "the device to show 30 %", func() bool {
		r := lastRecord(t, leds)
		return r.Brightness == 30 && r.State == string(ledstrip.StateFresh)
	})
	waitPage("the report of 30 %", row+`.querySelector(".reported").textContent.startsWith("on, 30 % (v1)")`)

	// The on/off switch.
	if err := chromedp.Do(bctx, chromedp.Click(`tr[data-device="kitchen"] .power`)); err != nil {
		t.Fatal(err)
	}
	mqtttest.WaitFor(t, 10*time.Second, "the device to switch off", func() bool {
		return lastRecord(t, leds).State == string(ledstrip.StateOff)
	})
	waitPage("the report of off", row+`.querySelector(".reported").textContent.startsWith("off, 30 % (v2)") && !`+row+`.querySelector(".power").checked`)
	for i, c := range lastRecord(t, leds).RGB {
		if c != "#000000" {
			t.Errorf("LED %d of a device switched off: %s, want dark", i, c)
		}
	}

	// A reload draws the device as it is now: dark swatches, controls as
	// reported; and the page holds no secret.
	if err := chromedp.Do(bctx, chromedp.Navigate(url), chromedp.WaitVisible(`tr[data-device="kitchen"] .power`)); err != nil {
		t.Fatal(err)
	}
	if got := eval(`Array.from(` + row + `.querySelectorAll(".led")).map(e => e.dataset.rgb).join(" ")`); got != strings.TrimSpace(strings.Repeat("#000000 ", 5)) {
		t.Errorf("swatches of a device switched off: %s, want five dark", got)
	}
	if got := eval(row + `.querySelector(".brightness").value + " " + ` + row + `.querySelector(".power").checked`); got != "30 false" {
		t.Errorf("controls after reload: %s, want 30 false", got)
	}
	if html := eval(`document.documentElement.outerHTML`); strings.Contains(html, token) {
		t.Error("the page's HTML contains the API token")
	}
	if got := eval(`sessionStorage.getItem("glowcast-api-token") || ""`); got != token {
		t.Errorf("the tab's sessionStorage holds %q, want the token typed in", got)
	}
}
