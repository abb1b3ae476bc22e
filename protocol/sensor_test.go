package protocol

import (
	"strings"
	"testing"
)

func TestParseSensor(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    float64
		wantErr string
	}{
		{"reading", `{"temp_c": 12.3}`, 12.3, ""},
		{"negative", `{"temp_c":-4.1}`, -4.1, ""},
		{"lowest", `{"temp_c":-90}`, -90, ""},
		{"highest", `{"temp_c":70}`, 70, ""},
		{"too cold", `{"temp_c":-90.1}`, 0, "outside"},
		{"power-on value", `{"temp_c":85}`, 0, "outside"},
		{"missing", `{}`, 0, "missing"},
		{"null", `{"temp_c":null}`, 0, "missing"},
		{"string", `{"temp_c":"12.3"}`, 0, "cannot unmarshal"},
		{"unknown field", `{"temp_c":1,"humidity":50}`, 0, "unknown field"},
		{"two objects", `{"temp_c":1}{"temp_c":2}`, 0, "after"},
		{"not json", `12.3`, 0, "cannot unmarshal"},
		{"empty", ``, 0, "EOF"},
		{"oversized", `{"temp_c":1` + strings.Repeat(" ", 300) + `}`, 0, "exceeds"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSensor([]byte(tc.payload))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseSensor(%q) = %v, %v; want error containing %q", tc.payload, s, err, tc.wantErr)
				}
				return
			}
			if err != nil || s.TempC != tc.want {
				t.Fatalf("ParseSensor(%q) = %v, %v; want %v", tc.payload, s, err, tc.want)
			}
		})
	}
}

func TestEncodeSensor(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want string
	}{{12.34, `{"temp_c":12.3}`}, {-4.06, `{"temp_c":-4.1}`}, {0, `{"temp_c":0}`}} {
		b, err := EncodeSensor(tc.in)
		if err != nil || string(b) != tc.want {
			t.Errorf("EncodeSensor(%v) = %s, %v; want %s", tc.in, b, err, tc.want)
		}
		if _, err := ParseSensor(b); err != nil {
			t.Errorf("ParseSensor(EncodeSensor(%v)): %v", tc.in, err)
		}
	}
	if _, err := EncodeSensor(85); err == nil {
		t.Error("EncodeSensor(85): want an error, a DS18B20's power-on value is no reading")
	}
}

func TestSensorTopic(t *testing.T) {
	if got, want := DeviceTopic("kitchen", SideDevice, MsgSensor), "glowcast/v1/kitchen/device/sensor"; got != want {
		t.Errorf("sensor topic %q, want %q", got, want)
	}
}
