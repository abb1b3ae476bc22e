package sensor

import (
	"context"
	"fmt"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/devices/v3/bmxx80"
)

// BME280 reads a Bosch BME280 (or BMP280) over I²C with periph's bmxx80
// driver, in forced mode: one conversion per Read, so the chip idles and
// does not warm itself between readings.
type BME280 struct {
	dev *bmxx80.Dev
}

// NewBME280 opens the chip at addr (0x76, or 0x77 with SDO high) on bus.
func NewBME280(bus i2c.Bus, addr uint16) (*BME280, error) {
	d, err := bmxx80.NewI2C(bus, addr, &bmxx80.DefaultOpts)
	if err != nil {
		return nil, fmt.Errorf("sensor: bme280 at I²C address %#x: %w: check the wiring, that I²C is enabled (dtparam=i2c_arm=on) and the address (i2cdetect -y 1)", addr, err)
	}
	return &BME280{dev: d}, nil
}

func (b *BME280) String() string { return b.dev.String() }

// Read implements Reader.
func (b *BME280) Read(context.Context) (float64, error) {
	var e physic.Env
	if err := b.dev.Sense(&e); err != nil {
		return 0, fmt.Errorf("sensor: %s: %w", b, err)
	}
	return e.Temperature.Celsius(), nil
}

// Halt stops the chip.
func (b *BME280) Halt() error { return b.dev.Halt() }
