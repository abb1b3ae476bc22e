package sensor

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"periph.io/x/conn/v3/driver/driverreg"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2creg"
)

// Kinds of sensor a Spec names.
const (
	KindDS18B20 = "ds18b20"
	KindBME280  = "bme280"
)

// DefaultI2CBus is the Pi's I²C bus on the header (pins 3 and 5).
const DefaultI2CBus = "/dev/i2c-1"

// DefaultBME280Addr is the BME280's address with SDO to ground, as on
// most breakout boards; 0x77 with SDO high.
const DefaultBME280Addr = 0x76

// Spec is a parsed --sensor value:
//
//	ds18b20                       the first DS18B20 under /sys/bus/w1/devices
//	ds18b20:28-0316a2794f11       that one (its 1-wire id)
//	ds18b20:/sys/bus/w1/devices/28-0316a2794f11
//	bme280                        a BME280 on /dev/i2c-1 at 0x76
//	bme280:/dev/i2c-1@0x77        bus and address; either may be left out
//	bme280:@0x77
type Spec struct {
	Kind string
	// Path is a DS18B20's sysfs directory; empty finds the first.
	Path string
	// Bus is the BME280's I²C bus as periph names it (/dev/i2c-1, I2C1, 1).
	Bus string
	// Addr is the BME280's I²C address.
	Addr uint16
}

// ParseSpec parses a --sensor value; "" is no sensor (a zero Spec).
func ParseSpec(s string) (Spec, error) {
	if s == "" {
		return Spec{}, nil
	}
	kind, arg, _ := strings.Cut(s, ":")
	switch kind {
	case KindDS18B20:
		sp := Spec{Kind: kind}
		switch {
		case arg == "":
		case strings.Contains(arg, "/"):
			if !strings.HasPrefix(filepath.Base(arg), "28-") {
				return Spec{}, fmt.Errorf("sensor %q: %s is not a DS18B20 directory (family 28, e.g. %s/28-0316a2794f11)", s, arg, W1Dir)
			}
			sp.Path = filepath.Clean(arg)
		case strings.HasPrefix(arg, "28-"):
			sp.Path = filepath.Join(W1Dir, arg)
		default:
			return Spec{}, fmt.Errorf("sensor %q: %q is not a DS18B20 id: use its directory name under %s (28-…) or leave it out for the first one", s, arg, W1Dir)
		}
		return sp, nil
	case KindBME280:
		sp := Spec{Kind: kind, Bus: DefaultI2CBus, Addr: DefaultBME280Addr}
		bus, addr, hasAddr := strings.Cut(arg, "@")
		if bus != "" {
			sp.Bus = bus
		}
		if hasAddr {
			a, err := strconv.ParseUint(addr, 0, 16)
			if err != nil || (a != 0x76 && a != 0x77) {
				return Spec{}, fmt.Errorf("sensor %q: address %q: a BME280 answers at 0x76 (SDO to ground) or 0x77 (SDO high)", s, addr)
			}
			sp.Addr = uint16(a)
		}
		return sp, nil
	}
	return Spec{}, fmt.Errorf("sensor %q: unknown kind %q: use ds18b20[:ID|PATH] or bme280[:BUS][@ADDR], e.g. ds18b20 or bme280:/dev/i2c-1@0x76", s, kind)
}

// String is the spec as --sensor takes it.
func (s Spec) String() string {
	switch s.Kind {
	case KindDS18B20:
		if s.Path == "" {
			return KindDS18B20
		}
		return KindDS18B20 + ":" + s.Path
	case KindBME280:
		return fmt.Sprintf("%s:%s@%#x", KindBME280, s.Bus, s.Addr)
	}
	return ""
}

// ReadCloser is an opened sensor.
type ReadCloser interface {
	Reader
	Close() error
}

// Opener opens the sensor a Spec names. Its fields let tests hand it a
// faked sysfs tree and recorded I²C transactions.
type Opener struct {
	// Root is where the file system starts ("/" or "" on the Pi).
	Root string
	// OpenI2C opens an I²C bus by name; nil uses periph's registry.
	OpenI2C func(name string) (i2c.BusCloser, error)
}

// Open opens s. It fails when the sensor is not there; nothing is cached,
// so a sensor connected later is found by the next Open.
func (o Opener) Open(s Spec) (ReadCloser, error) {
	switch s.Kind {
	case KindDS18B20:
		if s.Path == "" {
			d, err := FindDS18B20(o.Root)
			if err != nil {
				return nil, err
			}
			return nopClose{d}, nil
		}
		return nopClose{&DS18B20{Path: filepath.Join(o.Root, s.Path)}}, nil
	case KindBME280:
		open := o.OpenI2C
		if open == nil {
			open = openPeriphI2C
		}
		bus, err := open(s.Bus)
		if err != nil {
			return nil, err
		}
		b, err := NewBME280(bus, s.Addr)
		if err != nil {
			bus.Close()
			return nil, err
		}
		return &bme280Bus{BME280: b, bus: bus}, nil
	}
	return nil, fmt.Errorf("sensor: nothing to open for %q", s.Kind)
}

func openPeriphI2C(name string) (i2c.BusCloser, error) {
	if _, err := driverreg.Init(); err != nil {
		return nil, fmt.Errorf("sensor: initialise periph host drivers: %w", err)
	}
	bus, err := i2creg.Open(name)
	if err != nil {
		return nil, fmt.Errorf("sensor: I²C bus %s: %w: enable I²C (dtparam=i2c_arm=on in /boot/firmware/config.txt, or raspi-config), reboot, and add the user to the i2c group", name, err)
	}
	return bus, nil
}

type nopClose struct{ Reader }

func (nopClose) Close() error { return nil }

type bme280Bus struct {
	*BME280
	bus i2c.BusCloser
}

func (b *bme280Bus) Close() error { return errors.Join(b.Halt(), b.bus.Close()) }

// Reopening reads the sensor of Spec, opening it on first use and again
// after a failed read: a sensor wired up or re-seated while the daemon runs
// comes back without a restart.
type Reopening struct {
	Spec   Spec
	Opener Opener

	mu  sync.Mutex
	cur ReadCloser
}

func (r *Reopening) String() string { return r.Spec.String() }

// Read implements Reader.
func (r *Reopening) Read(ctx context.Context) (float64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur == nil {
		c, err := r.Opener.Open(r.Spec)
		if err != nil {
			return 0, err
		}
		r.cur = c
	}
	v, err := r.cur.Read(ctx)
	if err != nil {
		r.cur.Close()
		r.cur = nil
	}
	return v, err
}

// Close releases the sensor, if open.
func (r *Reopening) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur == nil {
		return nil
	}
	err := r.cur.Close()
	r.cur = nil
	return err
}
