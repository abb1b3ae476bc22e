package protocol

import "testing"

func TestSensor(t *testing.T) {
	if got := string((Sensor{TempC: 12.34}).Marshal()); got != `{"temp_c":12.3}` {
		t.Errorf("Marshal: got %s, want {\"temp_c\":12.3}", got)
	}
	for _, tc := range []struct {
		in      string
		want    float64
		wantErr bool
	}{
		{`{"temp_c":12.3}`, 12.3, false},
		{`{"temp_c":-40}`, -40, false},
		{`{"temp_c":0}`, 0, false},
		{`{}`, 0, true},
		{`{"temp_c":null}`, 0, true},
		{`{"temp_c":95}`, 0, true},
		{`{"temp_c":"warm"}`, 0, true},
		{`12`, 0, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			s, err := ParseSensor([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("got %v, want error %v", err, tc.wantErr)
			}
			if err == nil && s.TempC != tc.want {
				t.Errorf("temp_c %v, want %v", s.TempC, tc.want)
			}
		})
	}
}
