package ledstrip_test

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/glowcast/glowcast/ledstrip"
)

func readJSONL(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		recs = append(recs, m)
	}
	return recs
}

func TestJSONLRecordsLooks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "leds.jsonl")
	o := ledstrip.DefaultOptions() // cap 40 %, gamma 2.2: not applied to jsonl
	o.Scale = flat("#c83c14")
	ts := time.Date(2025, 3, 1, 12, 0, 0, 5, time.UTC)
	half := 50
	s, err := ledstrip.Open("jsonl:"+path, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []ledstrip.Frame{
		{TS: ts, State: ledstrip.StateWaiting},
		{TS: ts, State: ledstrip.StateFresh, Temps: []float64{21.5, math.NaN(), 3, 4, 5}},
		{TS: ts, State: ledstrip.StateFresh, Temps: []float64{21.5, 2, 3, 4, 5}, Brightness: &half},
	} {
		if err := s.Show(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	recs := readJSONL(t, path)
	if len(recs) != 4 {
		t.Fatalf("got %d records, want 4", len(recs))
	}
	var keys []string
	for k := range recs[1] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if want := []string{"brightness", "rgb", "state", "temps_c", "ts"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("got keys %v, want %v", keys, want)
	}
	if got, want := recs[0]["ts"], ts.Format(time.RFC3339Nano); got != want {
		t.Errorf("ts: got %v, want %v", got, want)
	}
	if recs[0]["temps_c"] != nil || recs[0]["state"] != "waiting" {
		t.Errorf("waiting record: got temps %v state %v, want null and waiting", recs[0]["temps_c"], recs[0]["state"])
	}
	if got, want := recs[1]["temps_c"], []any{21.5, nil, 3.0, 4.0, 5.0}; !reflect.DeepEqual(got, want) {
		t.Errorf("temps_c: got %v, want %v", got, want)
	}
	rgb := recs[1]["rgb"].([]any)
	if rgb[0] != "#c83c14" || rgb[1] != "#5a5a5a" {
		t.Errorf("fresh rgb: got %v, want the look #c83c14 and the no-data grey #5a5a5a", rgb)
	}
	if recs[1]["brightness"] != 100.0 {
		t.Errorf("brightness with no setting: got %v, want 100", recs[1]["brightness"])
	}
	if got := recs[2]["rgb"].([]any)[0]; got != "#641e0a" || recs[2]["brightness"] != 50.0 {
		t.Errorf("frame at 50 %%: got rgb %v brightness %v, want #641e0a and 50", got, recs[2]["brightness"])
	}
	if recs[3]["state"] != "off" || !reflect.DeepEqual(recs[3]["rgb"], []any{"#000000", "#000000", "#000000", "#000000", "#000000"}) {
		t.Errorf("last record: got %v, want five dark LEDs, state off", recs[3])
	}
}

func TestOffWritesOneDarkFrame(t *testing.T) {
	path := filepath.Join(t.TempDir(), "leds.jsonl")
	if err := ledstrip.Off("jsonl:"+path, ledstrip.DefaultOptions()); err != nil {
		t.Fatal(err)
	}
	recs := readJSONL(t, path)
	if len(recs) != 1 || recs[0]["state"] != "off" {
		t.Fatalf("got %v, want one off record", recs)
	}
	if err := ledstrip.Off("spi:"+filepath.Join(t.TempDir(), "spidev0.0"), ledstrip.DefaultOptions()); err == nil ||
		!strings.Contains(err.Error(), "dtparam=spi=on") {
		t.Errorf("Off on a missing spidev: got %v, want the enable-SPI hint", err)
	}
}

func TestOpenSpecs(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want string // "" for success
	}{
		{"none", ""},
		{"jsonl:", "jsonl:PATH"},
		{"spi:", "spi:/dev/spidev0.0"},
		{"ws2812", "unknown LED backend"},
		{"jsonl:" + filepath.Join(os.DevNull, "x"), "open jsonl file"},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			s, err := ledstrip.Open(tc.spec, ledstrip.Options{LEDs: 5})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("got %v, want success", err)
				}
				if err := s.Show(fresh(5, 1)); err != nil {
					t.Errorf("Show: %v", err)
				}
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestJSONLRecordsUnitAndFade(t *testing.T) {
	path := filepath.Join(t.TempDir(), "leds.jsonl")
	s, err := ledstrip.Open("jsonl:"+path, ledstrip.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	fade := 1500 * time.Millisecond
	temps := []float64{20, 21, 22, 23, 24}
	for _, f := range []ledstrip.Frame{
		{State: ledstrip.StateFresh, Temps: temps},
		{State: ledstrip.StateFresh, Temps: temps, Unit: ledstrip.UnitF, Fade: &fade},
	} {
		if err := s.Show(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	recs := readJSONL(t, path)
	if _, ok := recs[0]["unit"]; ok {
		t.Errorf("a °C frame records unit %v, want it left out", recs[0]["unit"])
	}
	if recs[1]["unit"] != "F" || recs[1]["fade_ms"] != 1500.0 {
		t.Errorf("got unit %v fade_ms %v, want F and 1500", recs[1]["unit"], recs[1]["fade_ms"])
	}
	// The colours belong to the temperature, whatever unit labels it.
	if !reflect.DeepEqual(recs[0]["rgb"], recs[1]["rgb"]) || !reflect.DeepEqual(recs[1]["temps_c"], []any{20.0, 21.0, 22.0, 23.0, 24.0}) {
		t.Errorf("°F frame: rgb %v temps_c %v, want the °C frame's colours and °C temps", recs[1]["rgb"], recs[1]["temps_c"])
	}
}

func TestLabel(t *testing.T) {
	for _, tc := range []struct {
		c    float64
		unit string
		want string
	}{
		{21.5, ledstrip.UnitC, "21.5 °C"},
		{21.5, "", "21.5 °C"},
		{21.5, ledstrip.UnitF, "70.7 °F"},
		{-40, ledstrip.UnitF, "-40.0 °F"},
		{100, ledstrip.UnitF, "212.0 °F"},
	} {
		if got := ledstrip.Label(tc.c, tc.unit); got != tc.want {
			t.Errorf("Label(%v, %q): got %q, want %q", tc.c, tc.unit, got, tc.want)
		}
	}
	if got := ledstrip.ToC(ledstrip.ToF(17.25)); math.Abs(got-17.25) > 1e-9 {
		t.Errorf("ToC(ToF(17.25)) = %v", got)
	}
}
