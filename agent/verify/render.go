package verify

import (
	"encoding/csv"
	"fmt"
	"html/template"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Stat is the error summary of one lead for one provider and source.
type Stat struct {
	Provider string
	Source   string
	Lead     string
	// MAE is the mean absolute error, Bias the mean signed error
	// (predicted − observed: positive means the LED promised too warm).
	MAE, Bias float64
	Count     int
}

// Summary sums the finished hours of every place since since, per provider,
// source and lead.
func (s *Store) Summary(since time.Time) ([]Stat, error) {
	places, err := s.Places()
	if err != nil {
		return nil, err
	}
	type k struct {
		prov, src string
		lead      int
	}
	acc := map[k]*Stat{}
	for _, pl := range places {
		rows, err := s.Rows(pl, since)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			// As the histogram: only finished hours, whose observation
			// no later fetch can change.
			if r.Source == "" || r.Pending {
				continue
			}
			for i := range Leads {
				e := r.Err(i)
				if math.IsNaN(e) {
					continue
				}
				key := k{r.Provider, r.Source, i}
				st := acc[key]
				if st == nil {
					st = &Stat{Provider: r.Provider, Source: r.Source, Lead: LeadLabels[i]}
					acc[key] = st
				}
				st.MAE += math.Abs(e)
				st.Bias += e
				st.Count++
			}
		}
	}
	keys := make([]k, 0, len(acc))
	for key := range acc {
		keys = append(keys, key)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.prov != b.prov {
			return a.prov < b.prov
		}
		if a.src != b.src {
			return a.src > b.src // sensor first
		}
		return a.lead < b.lead
	})
	out := make([]Stat, 0, len(keys))
	for _, key := range keys {
		st := *acc[key]
		st.MAE /= float64(st.Count)
		st.Bias /= float64(st.Count)
		out = append(out, st)
	}
	return out, nil
}

func fmtC(v float64) string {
	if math.IsNaN(v) {
		return ""
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// WriteCSV writes every place's hours since since, one line per place and
// hour, for a spreadsheet.
func (s *Store) WriteCSV(w io.Writer, since time.Time) error {
	places, err := s.Places()
	if err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	head := []string{"place", "hour_utc", "provider", "source", "observed_c"}
	for _, l := range LeadLabels {
		head = append(head, "predicted_"+l+"_c")
	}
	for _, l := range LeadLabels {
		head = append(head, "error_"+l+"_c")
	}
	cw.Write(head)
	for _, pl := range places {
		rows, err := s.Rows(pl, since)
		if err != nil {
			return err
		}
		for _, r := range rows {
			rec := []string{pl, r.Hour.Format(time.RFC3339), r.Provider, r.Source, fmtC(r.Obs)}
			for i := range Leads {
				rec = append(rec, fmtC(r.Pred[i]))
			}
			for i := range Leads {
				rec = append(rec, fmtC(r.Err(i)))
			}
			cw.Write(rec)
		}
	}
	cw.Flush()
	return cw.Error()
}

// leadColours tell the leads apart in the plot: later leads paler.
var leadColours = [4]string{"#d62728", "#ff7f0e", "#2ca02c", "#1f77b4"}

// PlotSVG draws predicted (one line per lead) against observed (black) for
// a place's hours from since to until.
func PlotSVG(w io.Writer, rows []Row, since, until time.Time) {
	const W, H, pad = 720.0, 280.0, 40.0
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range rows {
		for _, v := range append(r.Pred[:], r.Obs) {
			if !math.IsNaN(v) {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	if math.IsInf(lo, 0) {
		lo, hi = 0, 1
	}
	lo, hi = math.Floor(lo-1), math.Ceil(hi+1)
	span := until.Sub(since).Seconds()
	x := func(t time.Time) float64 { return pad + (W-2*pad)*t.Sub(since).Seconds()/span }
	y := func(v float64) float64 { return H - pad - (H-2*pad)*(v-lo)/(hi-lo) }
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %g %g" width="%g" height="%g" role="img" aria-label="predicted against observed temperature">`, W, H, W, H)
	fmt.Fprintf(w, `<rect x="%g" y="%g" width="%g" height="%g" fill="none" stroke="#999"/>`, pad, pad, W-2*pad, H-2*pad)
	fmt.Fprintf(w, `<text x="4" y="%g" font-size="11">%g °C</text><text x="4" y="%g" font-size="11">%g °C</text>`, pad+4, hi, H-pad, lo)
	fmt.Fprintf(w, `<text x="%g" y="%g" font-size="11">%s</text><text x="%g" y="%g" font-size="11" text-anchor="end">%s UTC</text>`,
		pad, H-pad+16, since.UTC().Format("Jan 2 15:04"), W-pad, H-pad+16, until.UTC().Format("Jan 2 15:04"))
	line := func(colour, name string, val func(Row) float64, width float64) {
		var b strings.Builder
		pen := "M"
		for _, r := range rows {
			v := val(r)
			if math.IsNaN(v) || r.Hour.Before(since) || r.Hour.After(until) {
				pen = "M" // a gap stays a gap
				continue
			}
			fmt.Fprintf(&b, "%s%.1f %.1f ", pen, x(r.Hour), y(v))
			pen = "L"
		}
		if b.Len() > 0 {
			fmt.Fprintf(w, `<path class="%s" d="%s" fill="none" stroke="%s" stroke-width="%g"/>`, name, strings.TrimSpace(b.String()), colour, width)
		}
	}
	for i := range Leads {
		line(leadColours[i], "pred-"+LeadLabels[i], func(r Row) float64 { return r.Pred[i] }, 1.5)
	}
	line("#000", "observed", func(r Row) float64 { return r.Obs }, 2.5)
	for i, l := range LeadLabels {
		fmt.Fprintf(w, `<text x="%g" y="%g" font-size="11" fill="%s">+%s</text>`, pad+float64(i)*60, pad-8, leadColours[i], l)
	}
	fmt.Fprintf(w, `<text x="%g" y="%g" font-size="11">observed</text></svg>`, pad+240, pad-8)
}

var page = template.Must(template.New("v").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>glowcast forecast verification</title>
<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}th{background:#f4f4f4}</style></head>
<body><h1>Forecast verification</h1>
<p>How far each LED's promise was off: absolute error (MAE) and bias (predicted − observed; positive means too warm) over the last {{.Days}} days.
<em>sensor</em> is a thermometer at the lamp; <em>provider</em> is the provider's own later value for that hour, not a thermometer.
<a href="verification.csv">Download CSV</a>.</p>
<table><tr><th>provider</th><th>source</th><th>lead</th><th>MAE °C</th><th>bias °C</th><th>hours</th></tr>
{{range .Stats}}<tr><td>{{.Provider}}</td><td>{{.Source}}</td><td>+{{.Lead}}</td><td>{{printf "%.2f" .MAE}}</td><td>{{printf "%+.2f" .Bias}}</td><td>{{.Count}}</td></tr>
{{else}}<tr><td colspan="6">No finished hours yet: the first +3 h promise is checked three hours after the first forecast.</td></tr>{{end}}
</table>
<h2>Last 48 h at {{.Place}}</h2>
<form method="get"><select name="place">{{range .Places}}<option{{if eq . $.Place}} selected{{end}}>{{.}}</option>{{end}}</select> <button>show</button></form>
{{.SVG}}
</body></html>
`))

// Handler serves the page at /verification (?place=LAT,LON picks the plot)
// and CSV at /verification.csv. now is the agent's clock.
func (s *Store) Handler(now func() time.Time) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/verification.csv", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="glowcast-verification.csv"`)
		if err := s.WriteCSV(w, now().Add(-s.history)); err != nil {
			s.log.Warn("verify: csv", "err", err)
		}
	})
	mux.HandleFunc("/verification", func(w http.ResponseWriter, r *http.Request) {
		t := now()
		stats, err := s.Summary(t.Add(-s.history))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		places, err := s.Places()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		pl := r.URL.Query().Get("place")
		if pl == "" && len(places) > 0 {
			pl = places[0]
		}
		var svg strings.Builder
		if pl != "" && sort.SearchStrings(places, pl) < len(places) && places[sort.SearchStrings(places, pl)] == pl {
			since := t.UTC().Truncate(time.Hour).Add(-48 * time.Hour)
			rows, err := s.Rows(pl, since)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			PlotSVG(&svg, rows, since, t.UTC().Truncate(time.Hour).Add(13*time.Hour))
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		page.Execute(w, map[string]any{
			"Days": int(s.history / (24 * time.Hour)), "Stats": stats, "Place": pl, "Places": places,
			"SVG": template.HTML(svg.String()),
		})
	})
	return mux
}
