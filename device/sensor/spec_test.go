package sensor

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2ctest"
)

func TestParseSpec(t *testing.T) {
	tests := []struct {
		in      string
		want    Spec
		wantErr string
	}{
		{"", Spec{}, ""},
		{"ds18b20", Spec{Kind: KindDS18B20}, ""},
		{"ds18b20:28-0316a2794f11", Spec{Kind: KindDS18B20, Path: "/sys/bus/w1/devices/28-0316a2794f11"}, ""},
		{"ds18b20:/sys/bus/w1/devices/28-0316a2794f11/", Spec{Kind: KindDS18B20, Path: "/sys/bus/w1/devices/28-0316a2794f11"}, ""},
		{"ds18b20:10-000802b4", Spec{}, "not a DS18B20 id"},
		{"ds18b20:/sys/bus/w1/devices/w1_bus_master1", Spec{}, "not a DS18B20 directory"},
		{"bme280", Spec{Kind: KindBME280, Bus: "/dev/i2c-1", Addr: 0x76}, ""},
		{"bme280:/dev/i2c-1@0x77", Spec{Kind: KindBME280, Bus: "/dev/i2c-1", Addr: 0x77}, ""},
		{"bme280:@0x77", Spec{Kind: KindBME280, Bus: "/dev/i2c-1", Addr: 0x77}, ""},
		{"bme280:I2C3", Spec{Kind: KindBME280, Bus: "I2C3", Addr: 0x76}, ""},
		{"bme280:@0x40", Spec{}, "0x76"},
		{"bme280:@x", Spec{}, "0x77"},
		{"dht22", Spec{}, "unknown kind"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSpec(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseSpec(%q) = %+v, %v; want error containing %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseSpec(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
			// String gives back a spec that parses to the same.
			if again, err := ParseSpec(got.String()); err != nil || again != got {
				t.Errorf("ParseSpec(%q.String() = %q) = %+v, %v", tc.in, got.String(), again, err)
			}
		})
	}
}

func TestOpenerBME280(t *testing.T) {
	var opened string
	o := Opener{OpenI2C: func(name string) (i2c.BusCloser, error) {
		opened = name
		return &i2ctest.Playback{Ops: recordedBME280(), DontPanic: true}, nil
	}}
	sp, _ := ParseSpec("bme280")
	s, err := o.Open(sp)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if opened != "/dev/i2c-1" {
		t.Errorf("opened bus %q, want /dev/i2c-1", opened)
	}
	got, err := s.Read(context.Background())
	if err != nil || math.Abs(got-23.72) > 0.001 {
		t.Errorf("got %v, %v; want 23.72 °C", got, err)
	}
}

func TestOpenerI2CMissing(t *testing.T) {
	o := Opener{OpenI2C: func(string) (i2c.BusCloser, error) { return nil, errors.New("no bus") }}
	sp, _ := ParseSpec("bme280:@0x77")
	if _, err := o.Open(sp); err == nil {
		t.Fatal("opening a missing bus succeeded")
	}
}

// TestReopening: a DS18B20 wired up after the daemon started is found by
// the next read; one that fails is opened again afterwards.
func TestReopening(t *testing.T) {
	root := fakeW1(t, nil)
	r := &Reopening{Spec: Spec{Kind: KindDS18B20}, Opener: Opener{Root: root}}
	defer r.Close()
	if _, err := r.Read(context.Background()); err == nil || !strings.Contains(err.Error(), "dtoverlay=w1-gpio") {
		t.Fatalf("read without a sensor: %v, want the 1-wire fix", err)
	}
	dir := filepath.Join(root, W1Dir, "28-0316a2794f11")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "temperature"), []byte("7125\n"), 0o644)
	if got, err := r.Read(context.Background()); err != nil || got != 7.125 {
		t.Fatalf("read after wiring: %v, %v; want 7.125", got, err)
	}
	os.WriteFile(filepath.Join(dir, "temperature"), []byte("\n"), 0o644)
	if _, err := r.Read(context.Background()); err == nil {
		t.Fatal("a CRC error read as a value")
	}
	os.WriteFile(filepath.Join(dir, "temperature"), []byte("6500\n"), 0o644)
	if got, err := r.Read(context.Background()); err != nil || got != 6.5 {
		t.Fatalf("read after the fault: %v, %v; want 6.5", got, err)
	}
}
