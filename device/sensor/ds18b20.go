// Package sensor owns the device's optional outdoor thermometer: drivers
// that read one temperature (a DS18B20 through the kernel's 1-wire sysfs,
// a BME280 over I²C) behind the Reader interface. It knows nothing of MQTT.
package sensor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Reader reads one temperature in °C.
type Reader interface {
	String() string
	Read(ctx context.Context) (float64, error)
}

// W1Dir is where the kernel lists 1-wire devices (w1-gpio overlay).
const W1Dir = "/sys/bus/w1/devices"

// DS18B20 reads a DS18B20 through the w1_therm driver's "temperature" file
// (millidegrees Celsius).
type DS18B20 struct {
	// Path is the sensor's directory, e.g. /sys/bus/w1/devices/28-0316a2794f11.
	Path string
}

// FindDS18B20 returns the first DS18B20 (family 28) under root+W1Dir.
func FindDS18B20(root string) (*DS18B20, error) {
	m, _ := filepath.Glob(filepath.Join(root, W1Dir, "28-*"))
	if len(m) == 0 {
		return nil, fmt.Errorf("sensor: no DS18B20 under %s: enable 1-wire (dtoverlay=w1-gpio in /boot/firmware/config.txt), wire the data line to GPIO4 with a 4.7 kΩ pull-up, and reboot", W1Dir)
	}
	sort.Strings(m)
	return &DS18B20{Path: m[0]}, nil
}

func (d *DS18B20) String() string { return "ds18b20 " + filepath.Base(d.Path) }

// Read implements Reader.
func (d *DS18B20) Read(context.Context) (float64, error) {
	b, err := os.ReadFile(filepath.Join(d.Path, "temperature"))
	if err != nil {
		return 0, fmt.Errorf("sensor: %s: %w", d, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		// w1_therm leaves the file empty when the CRC check failed.
		return 0, fmt.Errorf("sensor: %s: empty reading (CRC error): check the wiring and the pull-up", d)
	}
	milli, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("sensor: %s: unreadable value %q", d, s)
	}
	c := float64(milli) / 1000
	// 85 °C is the power-on value of the scratchpad: no conversion ran.
	if milli == 85000 {
		return 0, errors.New("sensor: " + d.String() + ": 85 °C power-on value: the sensor lacks power (parasite mode needs a strong pull-up)")
	}
	if c < -55 || c > 125 {
		return 0, fmt.Errorf("sensor: %s: %v °C is outside the DS18B20's range", d, c)
	}
	return c, nil
}
