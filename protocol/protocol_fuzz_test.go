package protocol

import (
	"encoding/json"
	"testing"
)

// Every parser of network input must reject, never panic, and what it
// accepts must hold the promises its validation makes. Oversized payloads
// are rejected before any decoding.

func FuzzParseTemps(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		tp, err := ParseTemps(b)
		if len(b) > MaxPayload && err == nil {
			t.Fatalf("accepted a %d-byte payload over MaxPayload %d", len(b), MaxPayload)
		}
		if err != nil {
			return
		}
		if err := tp.Validate(); err != nil {
			t.Fatalf("ParseTemps accepted what Validate rejects: %v", err)
		}
		// What a device accepts it can write to disk and read back.
		out, err := json.Marshal(tp)
		if err != nil {
			t.Fatalf("re-encoding accepted temps: %v", err)
		}
		again, err := ParseTemps(out)
		if err != nil {
			t.Fatalf("re-parsing accepted temps: %v\n%s", err, out)
		}
		if !again.IssuedAt.Equal(tp.IssuedAt) || len(again.Hourly.TempsC) != len(tp.Hourly.TempsC) {
			t.Fatalf("round trip changed temps: got issued %v with %d hourly, want %v with %d",
				again.IssuedAt, len(again.Hourly.TempsC), tp.IssuedAt, len(tp.Hourly.TempsC))
		}
		temps, _ := tp.Slot(tp.Hourly.Start)
		if len(temps) != len(Offsets) {
			t.Fatalf("Slot: got %d temps, want %d", len(temps), len(Offsets))
		}
	})
}

func FuzzParseReady(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReady(b)
		if len(b) > MaxPayload && err == nil {
			t.Fatalf("accepted a %d-byte payload over MaxPayload", len(b))
		}
		if err != nil {
			return
		}
		if r.BootID == "" || len(r.BootID) > 64 {
			t.Fatalf("accepted boot_id %q", r.BootID)
		}
		if r.LEDs < 0 || r.LEDs > 10000 {
			t.Fatalf("accepted leds %d", r.LEDs)
		}
		if r.Location != nil && r.Location.Validate() != nil {
			t.Fatalf("accepted location %+v", *r.Location)
		}
	})
}

func FuzzParseDeviceStatus(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseDeviceStatus(b)
		if len(b) > MaxPayload && err == nil {
			t.Fatalf("accepted a %d-byte payload over MaxPayload", len(b))
		}
		if err == nil && (s.BootID == "" || len(s.BootID) > 64) {
			t.Fatalf("accepted boot_id %q", s.BootID)
		}
	})
}

func FuzzParseAgentStatus(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseAgentStatus(b)
		if len(b) > MaxPayload && err == nil {
			t.Fatalf("accepted a %d-byte payload over MaxPayload", len(b))
		}
		if err == nil && (s.Session == "" || len(s.Session) > 64) {
			t.Fatalf("accepted session %q", s.Session)
		}
	})
}

func FuzzParseSensor(f *testing.F) {
	for _, s := range []string{`{"temp_c": 12.3}`, `{"temp_c":-90}`, `{"temp_c":85}`, `{"temp_c":1e400}`, `{"temp_c":1,"x":2}`, `{"temp_c":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSensor(b)
		if err != nil {
			return
		}
		if len(b) > MaxSensorPayload || s.TempC < MinSensorC || s.TempC > MaxSensorC || s.TempC != s.TempC {
			t.Fatalf("accepted %q as %v", b, s.TempC)
		}
		// What the agent accepts, a device could have sent.
		out, err := EncodeSensor(s.TempC)
		if err != nil {
			t.Fatalf("EncodeSensor(%v): %v", s.TempC, err)
		}
		if _, err := ParseSensor(out); err != nil {
			t.Fatalf("re-parsing %s: %v", out, err)
		}
	})
}
