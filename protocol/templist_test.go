package protocol

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
)

// pointerList is how TempList was written before it wrote its own
// numbers: the wire format it must keep.
func pointerList(l TempList) ([]byte, error) {
	ps := make([]*float64, len(l))
	for i, v := range l {
		if !math.IsNaN(v) {
			x := math.Round(v*100) / 100
			ps[i] = &x
		}
	}
	return json.Marshal(ps)
}

func TestTempListWritesWhatEncodingJSONWrites(t *testing.T) {
	lists := []TempList{
		nil,
		{},
		{math.NaN()},
		{0, -0.001, 0.004, 0.005, -0.005, 12.345, -40, 59.999, 1e-7, 123456789.125},
		{math.NaN(), 21.5, math.NaN(), -3.14159},
		{1e21, -2e22, 1e300},
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		l := make(TempList, 53)
		for i := range l {
			l[i] = r.Float64()*140 - 70
		}
		lists = append(lists, l)
	}
	for _, l := range lists {
		want, werr := pointerList(l)
		got, gerr := l.MarshalJSON()
		if string(got) != string(want) || (werr == nil) != (gerr == nil) {
			t.Errorf("%v: got %s (%v), want %s (%v)", []float64(l), got, gerr, want, werr)
		}
	}
	if _, err := (TempList{math.Inf(1)}).MarshalJSON(); err == nil {
		t.Error("an infinity was written; want encoding/json's error")
	}
}

func BenchmarkTempListMarshal(b *testing.B) {
	l := make(TempList, 53)
	for i := range l {
		l[i] = float64(i)*0.37 - 5
	}
	for b.Loop() {
		if _, err := json.Marshal(l); err != nil {
			b.Fatal(err)
		}
	}
}
