package doctor

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2ctest"
)

// bme280Ops are a BME280's transactions at 0x76 (periph's recording):
// probe, calibration, configuration, one forced conversion of 23.72 °C.
var bme280Ops = []i2ctest.IO{
	{Addr: 0x76, W: []byte{0xd0}, R: []byte{0x60}},
	{Addr: 0x76, W: []byte{0x88}, R: []byte{0x10, 0x6e, 0x6c, 0x66, 0x32, 0x0, 0x5d, 0x95, 0xb8, 0xd5, 0xd0, 0xb, 0x77, 0x1e, 0x9d, 0xff, 0xf9, 0xff, 0xac, 0x26, 0xa, 0xd8, 0xbd, 0x10, 0x0, 0x4b}},
	{Addr: 0x76, W: []byte{0xe1}, R: []byte{0x6e, 0x1, 0x0, 0x13, 0x5, 0x0, 0x1e}},
	{Addr: 0x76, W: []byte{0xf4, 0x6c, 0xf2, 0x3, 0xf5, 0xa0, 0xf4, 0x6c}},
	{Addr: 0x76, W: []byte{0xf4, 0x6d}},
	{Addr: 0x76, W: []byte{0xf3}, R: []byte{8}},
	{Addr: 0x76, W: []byte{0xf3}, R: []byte{0}},
	{Addr: 0x76, W: []byte{0xf7}, R: []byte{0x4a, 0x52, 0xc0, 0x80, 0x96, 0xc0, 0x7a, 0x76}},
}

// TestSensorCheck: one reading of the configured sensor, or the failure
// with its fix as a warning: a sensor never blocks the daemon.
func TestSensorCheck(t *testing.T) {
	const w1 = "/sys/bus/w1/devices/28-0316a2794f11/temperature"
	tests := []struct {
		name   string
		spec   string
		files  map[string]string
		bus    []i2ctest.IO
		status Status
		want   string
	}{
		{"none", "", nil, nil, Skip, "none configured"},
		{"ds18b20", "ds18b20", map[string]string{w1: "12312\n"}, nil, OK, "ds18b20 28-0316a2794f11: 12.3 °C"},
		{"ds18b20 by id", "ds18b20:28-0316a2794f11", map[string]string{w1: "-4062\n"}, nil, OK, "-4.1 °C"},
		{"ds18b20 absent", "ds18b20", map[string]string{"/etc/hostname": "pi\n"}, nil, Warn, "dtoverlay=w1-gpio"},
		{"ds18b20 crc error", "ds18b20", map[string]string{w1: "\n"}, nil, Warn, "CRC"},
		{"ds18b20 power-on value", "ds18b20", map[string]string{w1: "85000\n"}, nil, Warn, "power-on"},
		{"bme280", "bme280", nil, bme280Ops, OK, "23.7 °C"},
		{"bme280 wrong chip", "bme280:@0x77", nil, []i2ctest.IO{{Addr: 0x77, W: []byte{0xd0}, R: []byte{0xff}}}, Warn, "i2cdetect"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := env(tree(t, tc.files))
			e.OpenI2C = func(string) (i2c.BusCloser, error) {
				return &i2ctest.Playback{Ops: tc.bus, DontPanic: true}, nil
			}
			cfg := spiConfig()
			cfg.Sensor = tc.spec
			r := checkSensor(context.Background(), e, cfg)
			if r.Status != tc.status || !strings.Contains(r.Detail, tc.want) {
				t.Errorf("got %v %q, want %v containing %q", r.Status, r.Detail, tc.status, tc.want)
			}
			if r.Status == Warn && !strings.Contains(r.Fix, "HARDWARE.md") {
				t.Errorf("warning without the fix: %+v", r)
			}
			var out bytes.Buffer
			if Write(&out, []Result{r}) {
				t.Errorf("a sensor result failed the doctor: %s", out.String())
			}
		})
	}
}
