package agent

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestCertExpiryExportsEarliest(t *testing.T) {
	t0 := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	at := func(days int) *time.Time { v := t0.AddDate(0, 0, days); return &v }
	steps := []struct {
		id   string
		exp  *time.Time
		want int // series exported: 0 or 1
		val  time.Time
	}{
		{"a", at(30), 1, *at(30)},
		{"b", at(10), 1, *at(10)},
		{"c", nil, 1, *at(10)},     // a device without a certificate changes nothing
		{"b", at(400), 1, *at(30)}, // b renewed: a is now the earliest
		{"a", nil, 1, *at(400)},    // a's ready cleared (deleted)
		{"b", nil, 0, time.Time{}},
	}
	c := newCertExpiry()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	for i, s := range steps {
		c.set(s.id, s.exp)
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var vals []float64
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				vals = append(vals, m.GetGauge().GetValue())
			}
		}
		if len(vals) != s.want {
			t.Fatalf("step %d: %d series, want %d", i, len(vals), s.want)
		}
		if s.want == 1 {
			if got := vals[0]; got != float64(s.val.Unix()) {
				t.Errorf("step %d: got %v, want %v (%v)", i, got, s.val.Unix(), s.val)
			}
		}
	}
}
