// Package statuspage renders the agent's fleet overview: one row per device
// with its online state, location and where that came from, the age of its
// last forecast, and its LEDs drawn as coloured swatches in the colours the
// device shows (ledstrip.Render, the looks its jsonl backend records). The
// page refreshes itself.
//
// It reads devices through a function it is given and knows nothing of
// MQTT or the agent's scheduler.
package statuspage

import (
	"fmt"
	"html/template"
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
	f := Frame(d, now, o.StaleAfter)
	for i, hex := range Swatches(d, now, o) {
		label := string(f.State)
		if len(f.Temps) > 0 {
			t := f.Temps[i*len(f.Temps)/o.LEDs]
			h := protocol.Offsets[min(i*len(f.Temps)/o.LEDs, len(protocol.Offsets)-1)]
			if math.IsNaN(t) {
				label = fmt.Sprintf("+%dh: no data", h)
			} else {
				label = fmt.Sprintf("+%dh: %.1f °C (%s)", h, t, f.State)
			}
		}
		r.LEDs = append(r.LEDs, ledView{Hex: hex, CSS: template.CSS("background-color: " + hex), Label: label})
	}
	return r
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
<meta http-equiv="refresh" content="{{.Refresh}}">
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
</style></head>
<body>
<h1>{{.Title}}</h1>
<p class="meta">{{len .Rows}} devices, {{.Online}} online · {{.Now}} · refreshes every {{.Refresh}} s</p>
{{if .Rows}}<table>
<thead><tr><th>Device</th><th>State</th><th>Location</th><th>Last update</th><th>LEDs (now, +3, +6, +9, +12 h)</th></tr></thead>
<tbody>
{{range .Rows}}<tr class="device" data-device="{{.ID}}">
<td>{{.ID}}{{if .Version}} <span class="src version">{{.Version}}</span>{{end}}{{if .Duplicate}} <span class="dup" title="{{.Duplicate}}">⚠ duplicate id</span>{{end}}</td>
<td class="state {{if .Online}}online{{else}}offline{{end}}">{{if .Online}}online{{else}}offline{{end}}</td>
<td>{{.Location}}{{if .Source}} <span class="src">({{.Source}})</span>{{end}}</td>
<td>{{.Age}}{{if .Provider}} <span class="src">{{.Provider}}</span>{{end}}</td>
<td class="leds">{{range .LEDs}}<span class="led" style="{{.CSS}}" data-rgb="{{.Hex}}" title="{{.Label}}"></span>{{end}}</td>
</tr>
{{end}}</tbody></table>
{{else}}<p>No devices seen yet: a device appears once it has connected to the broker.</p>{{end}}
</body></html>
`))
