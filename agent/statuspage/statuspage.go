// Package statuspage renders the agent's fleet overview: one row per device
// with its online state, location and where that came from, the age of its
// last forecast, and its LEDs drawn as coloured swatches in the colours the
// device shows (ledstrip.Render, the looks its jsonl backend records, at the
// brightness and on/off state the device reports). The page refreshes
// itself.
//
// Each row has controls, an on/off switch and a brightness slider, that
// change the device's desired settings through the agent's HTTP API
// (PATCH /api/v1/devices/{id}/settings) from the browser and follow the
// settings the device reports (GET /api/v1/devices). The page holds no
// secret: the operator types the API token into the page, which keeps it
// in the tab's sessionStorage and sends it only as the bearer token of its
// own API requests.
//
// It reads devices through a function it is given and knows nothing of
// MQTT or the agent's scheduler.
package statuspage

import (
	_ "embed"
	"fmt"
	"html/template"
	"maps"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/glowcast/glowcast/ledstrip"
	"github.com/glowcast/glowcast/protocol"
)

// Device is what the page shows of one device.
type Device struct {
	ID     string
	Online bool
	// Location and LocationSource (config, device, wifi, ip, default…)
	// say where its forecast is for; nil when not located yet.
	Location       *protocol.Location
	LocationSource string
	// Temps is the last forecast sent to it; nil when none was.
	Temps *protocol.Temps
	// Duplicate names the boot ids of two processes running with this one
	// device id (a cloned SD card); empty when there is one.
	Duplicate []string
	// Version is the glowcastd release the device announced in ready.
	Version string
	// Settings are the settings the device reports in force; nil before
	// its first report (the page then draws it on, at full brightness).
	Settings *protocol.Reported
}

// Options configure the page.
type Options struct {
	// Title heads the page.
	Title string
	// Refresh is how often the browser reloads the page. Default 10s.
	Refresh time.Duration
	// StaleAfter is the devices' stale_after: older temps are drawn dimmed,
	// as the device dims them. Default 1h (the device's default).
	StaleAfter time.Duration
	// LEDs is the number of swatches per device. Default 5.
	LEDs int
	// Scale maps temperatures to colours. Default ledstrip.DefaultScale.
	Scale ledstrip.Scale
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Title == "" {
		o.Title = "glowcast fleet"
	}
	if o.Refresh <= 0 {
		o.Refresh = 10 * time.Second
	}
	if o.StaleAfter <= 0 {
		o.StaleAfter = time.Hour
	}
	if o.LEDs <= 0 {
		o.LEDs = len(protocol.Offsets)
	}
	if o.Scale == nil {
		o.Scale = ledstrip.DefaultScale()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Frame is what a device running with d's last temps shows at now: the
// temperatures re-slotted to the current hour, dimmed once stale, the
// waiting look without temps. It follows the device's own rules.
func Frame(d Device, now time.Time, staleAfter time.Duration) ledstrip.Frame {
	f := look(d, now, staleAfter)
	if d.Settings == nil {
		return f
	}
	// As the device composes its frame: the brightness in force now, and
	// an off device keeps the brightness it will come back on at.
	set := d.Settings.Applied
	lit := set
	lit.On = nil
	b := lit.BrightnessAt(now)
	f.Brightness, f.Unit = &b, set.Unit
	if set.On != nil && !*set.On {
		f.State, f.Temps, f.Source = ledstrip.StateOff, nil, ""
	}
	return f
}

func look(d Device, now time.Time, staleAfter time.Duration) ledstrip.Frame {
	f := ledstrip.Frame{TS: now, State: ledstrip.StateWaiting}
	if d.Temps == nil {
		return f
	}
	f.Temps, _ = d.Temps.Slot(now)
	if d.Temps.Sample() {
		f.Source = protocol.ProviderSample
	}
	f.State = ledstrip.StateStale
	if d.Temps.Fresh(now, staleAfter) {
		f.State = ledstrip.StateFresh
	}
	return f
}

// Swatches returns the n colours ("#rrggbb") d shows at now.
func Swatches(d Device, now time.Time, o Options) []string {
	o = o.withDefaults()
	px := ledstrip.Render(Frame(d, now, o.StaleAfter), o.LEDs, o.Scale)
	out := make([]string, len(px))
	for i, c := range px {
		out[i] = ledstrip.Hex(c)
	}
	return out
}

// New returns the page's handler; devices is called once per request.
func New(devices func() []Device, o Options) http.Handler {
	o = o.withDefaults()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secure(w)
		if r.URL.Path == "/"+scriptName {
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
			w.Write(script)
			return
		}
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		now := o.Now()
		ds := devices()
		slices.SortFunc(ds, func(a, b Device) int { return strings.Compare(a.ID, b.ID) })
		v := page{Title: o.Title, Refresh: int(o.Refresh / time.Second), Now: now.UTC().Format("15:04:05 UTC")}
		for _, d := range ds {
			v.Rows = append(v.Rows, row(d, now, o))
			if d.Online {
				v.Online++
			}
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := tmpl.Execute(w, v); err != nil {
			http.Error(w, "statuspage: "+err.Error(), http.StatusInternalServerError)
		}
	})
}

// scriptName is the page's script, served next to it: the policy below
// allows no inline script.
const scriptName = "statuspage.js"

//go:embed statuspage.js
var script []byte

// secure sets the headers that keep the page's controls to itself: scripts
// only from the agent, requests only to the agent, no framing (a framed
// page could be tricked into clicks), no referrer.
func secure(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}

type page struct {
	Title   string
	Refresh int
	Now     string
	Rows    []rowView
	Online  int
}

type rowView struct {
	ID       string
	Version  string
	Online   bool
	Location string
	Source   string
	Age      string
	Provider string
	LEDs     []ledView
	// Duplicate says two devices run with this id.
	Duplicate string
	// On and Brightness are the reported settings in force, the controls'
	// starting values; Reported describes the report.
	On         bool
	Brightness int
	Reported   string
}

type ledView struct {
	// Hex is the colour; CSS is the same, typed as safe for the style
	// attribute (it is always #rrggbb from ledstrip.Hex).
	Hex   string
	CSS   template.CSS
	Label string
}

func row(d Device, now time.Time, o Options) rowView {
	r := rowView{ID: d.ID, Version: d.Version, Online: d.Online, Location: "not located", Age: "no forecast yet"}
	if len(d.Duplicate) > 0 {
		r.Duplicate = "two devices use this id (boot ids " + strings.Join(d.Duplicate, ", ") + "): give one a new device_id"
	}
	if d.Location != nil {
		r.Location = fmt.Sprintf("%.3f, %.3f", d.Location.Lat, d.Location.Lon)
		r.Source = d.LocationSource
	}
	if d.Temps != nil {
		r.Age = age(now.Sub(d.Temps.IssuedAt))
		r.Provider = d.Temps.Provider
	}
	r.On, r.Brightness, r.Reported = true, 100, "no report yet"
	if rep := d.Settings; rep != nil {
		r.On = rep.Applied.On == nil || *rep.Applied.On
		if rep.Applied.Brightness != nil {
			r.Brightness = *rep.Applied.Brightness
		}
		r.Reported = ReportText(*rep)
	}
	f := Frame(d, now, o.StaleAfter)
	for i, hex := range Swatches(d, now, o) {
		label := string(f.State)
		if len(f.Temps) > 0 {
			t := f.Temps[i*len(f.Temps)/o.LEDs]
			h := protocol.Offsets[min(i*len(f.Temps)/o.LEDs, len(protocol.Offsets)-1)]
			if math.IsNaN(t) {
				label = fmt.Sprintf("+%dh: no data", h)
			} else {
				label = fmt.Sprintf("+%dh: %s (%s)", h, ledstrip.Label(t, f.Unit), f.State)
			}
		}
		r.LEDs = append(r.LEDs, ledView{Hex: hex, CSS: template.CSS("background-color: " + hex), Label: label})
	}
	return r
}

// ReportText says what a device reports in force, as the page shows it
// (statuspage.js writes the same words when the report changes).
func ReportText(r protocol.Reported) string {
	a := r.Applied
	state := "on"
	if a.On != nil && !*a.On {
		state = "off"
	}
	b := 100
	if a.Brightness != nil {
		b = *a.Brightness
	}
	txt := fmt.Sprintf("%s, %d %% (v%d)", state, b, r.Version)
	if len(r.Errors) > 0 {
		keys := slices.Sorted(maps.Keys(r.Errors))
		for i, k := range keys {
			keys[i] = k + ": " + r.Errors[k]
		}
		txt += " · refused " + strings.Join(keys, "; ")
	}
	return txt
}

func age(d time.Duration) string {
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %dm ago", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd ago", int(d.Hours()/24))
	}
}

var tmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<noscript><meta http-equiv="refresh" content="{{.Refresh}}"></noscript>
<script src="statuspage.js" defer></script>
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body { font: 15px/1.4 system-ui, sans-serif; margin: 1.5rem; background: #fff; color: #222; }
table { border-collapse: collapse; }
th, td { text-align: left; padding: .45rem .9rem; border-bottom: 1px solid #ddd; vertical-align: middle; }
th { font-weight: 600; color: #555; }
.state { font-weight: 600; }
.online { color: #17803d; }
.offline { color: #b42318; }
.src, .meta { color: #777; font-size: 90%; }
.leds { white-space: nowrap; background: #111; }
.led { display: inline-block; width: 28px; height: 28px; margin: 2px 3px; border-radius: 50%; vertical-align: middle; }
.control { white-space: nowrap; }
.brightness { width: 8rem; vertical-align: middle; }
.bad { color: #b42318; }
</style></head>
<body data-refresh="{{.Refresh}}">
<h1>{{.Title}}</h1>
<p class="meta">{{len .Rows}} devices, {{.Online}} online · {{.Now}} · refreshes every {{.Refresh}} s</p>
<form id="token-form" class="meta"><label>API token for changes <input type="password" id="token" autocomplete="off" size="24"></label>
<button type="submit">Use</button> <span id="token-state"></span> <span id="api-msg" role="status"></span></form>
{{if .Rows}}<table>
<thead><tr><th>Device</th><th>State</th><th>Location</th><th>Last update</th><th>LEDs (now, +3, +6, +9, +12 h)</th><th>Settings</th></tr></thead>
<tbody>
{{range .Rows}}<tr class="device" data-device="{{.ID}}">
<td>{{.ID}}{{if .Version}} <span class="src version">{{.Version}}</span>{{end}}{{if .Duplicate}} <span class="dup" title="{{.Duplicate}}">⚠ duplicate id</span>{{end}}</td>
<td class="state {{if .Online}}online{{else}}offline{{end}}">{{if .Online}}online{{else}}offline{{end}}</td>
<td>{{.Location}}{{if .Source}} <span class="src">({{.Source}})</span>{{end}}</td>
<td>{{.Age}}{{if .Provider}} <span class="src">{{.Provider}}</span>{{end}}</td>
<td class="leds">{{range .LEDs}}<span class="led" style="{{.CSS}}" data-rgb="{{.Hex}}" title="{{.Label}}"></span>{{end}}</td>
<td class="control"><label><input type="checkbox" class="power"{{if .On}} checked{{end}}> on</label>
<input type="range" class="brightness" min="0" max="100" step="1" value="{{.Brightness}}" aria-label="brightness of {{.ID}}">
<span class="level">{{.Brightness}} %</span> <span class="reported src">{{.Reported}}</span></td>
</tr>
{{end}}</tbody></table>
{{else}}<p>No devices seen yet: a device appears once it has connected to the broker.</p>{{end}}
</body></html>
`))
