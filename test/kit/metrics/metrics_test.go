package metrics

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func TestScrape(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "glowcast_agent_cycles_running", Help: "h"})
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "starts_total", Help: "h"}, []string{"path", "kind"})
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "lat_seconds", Help: "h", Buckets: []float64{1}})
	reg.MustRegister(g, c, h)
	g.Set(3)
	c.WithLabelValues("fast", "a").Add(2)
	c.WithLabelValues(`we"ird`, "b").Inc()
	h.Observe(0.5)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()

	got, err := Scrape(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]float64{
		"glowcast_agent_cycles_running":         3,
		`starts_total{kind="a",path="fast"}`:    2,
		`starts_total{kind="b",path="we\"ird"}`: 1,
		`lat_seconds_bucket{le="1"}`:            1,
		"lat_seconds_count":                     1,
		"lat_seconds_sum":                       0.5,
	} {
		if v, ok := got[key]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", key, v, ok, want)
		}
	}
	bad := httptest.NewServer(nil)
	defer bad.Close()
	if _, err := Scrape(context.Background(), bad.URL+"/metrics"); err == nil {
		t.Error("a 404 scraped without an error")
	}
}
