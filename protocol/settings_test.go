package protocol_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/glowcast/glowcast/protocol"
)

func TestParseDesired(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		cleared   bool
		fieldErrs []string // refused fields
		wantErr   bool     // whole-message error
		check     func(t *testing.T, d protocol.Desired)
	}{
		{name: "empty clears", in: "", cleared: true},
		{name: "braces clear", in: " {} ", cleared: true},
		{name: "full", in: `{"version":7,"on":false,"brightness":40,"quiet_hours":{"start":"22:00","end":"07:00","brightness":5},"unit":"F","fade_ms":250}`,
			check: func(t *testing.T, d protocol.Desired) {
				if d.Version != 7 || *d.On || *d.Brightness != 40 || d.Unit != "F" || *d.FadeMS != 250 || d.QuietHours.Brightness != 5 || d.QuietHours.Start != "22:00" {
					t.Errorf("got %+v", d)
				}
			}},
		{name: "version only", in: `{"version":3}`, check: func(t *testing.T, d protocol.Desired) {
			if d.Version != 3 || !d.Empty() {
				t.Errorf("got %+v, want version 3 and no field set", d)
			}
		}},
		{name: "no version", in: `{"brightness":4}`, wantErr: true},
		{name: "negative version", in: `{"version":-1}`, wantErr: true},
		{name: "not an object", in: `[1]`, wantErr: true},
		{name: "null", in: `null`, wantErr: true},
		{name: "brightness high", in: `{"version":1,"brightness":101}`, fieldErrs: []string{"brightness"}},
		{name: "brightness fraction", in: `{"version":1,"brightness":4.5}`, fieldErrs: []string{"brightness"}},
		{name: "unit", in: `{"version":1,"unit":"K"}`, fieldErrs: []string{"unit"}},
		{name: "unknown and bad fade", in: `{"version":1,"colour":"red","fade_ms":60001,"on":true}`, fieldErrs: []string{"colour", "fade_ms"}},
		{name: "null is unset", in: `{"version":1,"on":null}`, check: func(t *testing.T, d protocol.Desired) {
			if d.On != nil {
				t.Errorf("on = %v, want unset", *d.On)
			}
		}},
		{name: "on not bool", in: `{"version":1,"on":"yes"}`, fieldErrs: []string{"on"}},
		{name: "quiet bad time", in: `{"version":1,"quiet_hours":{"start":"24:00","end":"07:00","brightness":5}}`, fieldErrs: []string{"quiet_hours"}},
		{name: "quiet missing end", in: `{"version":1,"quiet_hours":{"start":"22:00","brightness":5}}`, fieldErrs: []string{"quiet_hours"}},
		{name: "quiet empty window", in: `{"version":1,"quiet_hours":{"start":"22:00","end":"22:00","brightness":5}}`, fieldErrs: []string{"quiet_hours"}},
		{name: "quiet unknown", in: `{"version":1,"quiet_hours":{"start":"22:00","end":"07:00","brightness":5,"off":true}}`, fieldErrs: []string{"quiet_hours"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, cleared, err := protocol.ParseDesired([]byte(tc.in))
			if cleared != tc.cleared {
				t.Errorf("cleared = %v, want %v", cleared, tc.cleared)
			}
			var fe protocol.FieldErrors
			isField := errors.As(err, &fe)
			switch {
			case tc.wantErr:
				if err == nil || isField {
					t.Fatalf("err = %v, want a whole-message error", err)
				}
			case len(tc.fieldErrs) > 0:
				if !isField {
					t.Fatalf("err = %v, want field errors for %v", err, tc.fieldErrs)
				}
				if len(fe) != len(tc.fieldErrs) {
					t.Errorf("refused %v, want %v", fe, tc.fieldErrs)
				}
				for _, f := range tc.fieldErrs {
					if fe[f] == "" {
						t.Errorf("field %s not refused: %v", f, fe)
					}
				}
			default:
				if err != nil {
					t.Fatalf("err = %v", err)
				}
			}
			if tc.check != nil {
				tc.check(t, d)
			}
		})
	}
}

func TestParsePatchRefusesVersion(t *testing.T) {
	_, _, err := protocol.ParsePatch([]byte(`{"version":9,"brightness":3}`))
	var fe protocol.FieldErrors
	if !errors.As(err, &fe) || fe["version"] == "" {
		t.Fatalf("err = %v, want a version field error", err)
	}
	s, clear, err := protocol.ParsePatch([]byte(`{"brightness":3,"on":true,"unit":null}`))
	if err != nil || *s.Brightness != 3 || !*s.On || len(clear) != 1 || clear[0] != "unit" {
		t.Fatalf("got %+v, clear %v, %v", s, clear, err)
	}
}

func TestDesiredWireShape(t *testing.T) {
	b40, off := 40, false
	b, err := json.Marshal(protocol.Desired{Version: 2, Settings: protocol.Settings{On: &off, Brightness: &b40}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"version":2,"on":false,"brightness":40}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	d, _, err := protocol.ParseDesired(b)
	if err != nil || d.Version != 2 || *d.Brightness != 40 || *d.On {
		t.Errorf("round trip: %+v, %v", d, err)
	}
	r, err := json.Marshal(protocol.Reported{Version: 2, Applied: d.Settings, Errors: map[string]string{"unit": "want \"C\" or \"F\""}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(r), `{"version":2,"applied":{"on":false,"brightness":40},"errors":{"unit":"want \"C\" or \"F\""}}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestBrightnessAt(t *testing.T) {
	on, off, b := true, false, 60
	q := &protocol.QuietHours{Start: "22:00", End: "07:00", Brightness: 5}
	at := func(h, m int) time.Time { return time.Date(2026, 1, 1, h, m, 0, 0, time.UTC) }
	tests := []struct {
		name string
		s    protocol.Settings
		now  time.Time
		want int
	}{
		{"unset is full", protocol.Settings{}, at(12, 0), 100},
		{"brightness", protocol.Settings{On: &on, Brightness: &b}, at(12, 0), 60},
		{"off wins", protocol.Settings{On: &off, Brightness: &b, QuietHours: q}, at(23, 0), 0},
		{"quiet before midnight", protocol.Settings{Brightness: &b, QuietHours: q}, at(23, 0), 5},
		{"quiet after midnight", protocol.Settings{Brightness: &b, QuietHours: q}, at(6, 59), 5},
		{"quiet end exclusive", protocol.Settings{Brightness: &b, QuietHours: q}, at(7, 0), 60},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.s.BrightnessAt(tc.now); got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestOver(t *testing.T) {
	b10, b40, f := 10, 40, 0
	local := protocol.Settings{Brightness: &b40, Unit: "C", FadeMS: &f}
	got := protocol.Settings{Brightness: &b10}.Over(local)
	if *got.Brightness != 10 || got.Unit != "C" || got.FadeMS == nil {
		t.Errorf("got %+v, want brightness from desired and the rest local", got)
	}
}
