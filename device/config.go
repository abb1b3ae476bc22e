package device

import (
	"errors"
	"flag"
	"fmt"
	"github.com/glowcast/glowcast/device/sensor"
	"github.com/glowcast/glowcast/internal/brokerconf"
	"github.com/glowcast/glowcast/ledstrip"
	"github.com/glowcast/glowcast/mqttmsg"
	"time"

	"github.com/glowcast/glowcast/protocol"
)

// Config is the device daemon's configuration: YAML fields and flags of the
// same meaning. Flags given explicitly override the file.
type Config struct {
	Broker   string `yaml:"broker"`
	DeviceID string `yaml:"device_id"`
	// LED is the strip backend: spi:/dev/spidev0.0, jsonl:PATH, term or none.
	LED      string `yaml:"led"`
	LEDs     int    `yaml:"leds"`
	StateDir string `yaml:"state_dir"`
	// StaleAfter dims temps older than this (twice the agent's interval).
	StaleAfter time.Duration `yaml:"stale_after"`
	// Location is an optional "LAT,LON" hint sent to the agent in ready.
	Location *protocol.Location `yaml:"location"`
	// WiFi, when enabled, scans the access points around the device once
	// per boot and sends them to the agent, which may locate the device by
	// them (as the original platform did).
	WiFi WiFiConfig `yaml:"wifi"`

	// Sensor is an optional outdoor thermometer at the lamp, as
	// sensor.ParseSpec reads it: ds18b20[:ID|PATH] or bme280[:BUS][@ADDR].
	// Its readings go to the agent, which scores forecasts against them.
	Sensor string `yaml:"sensor"`

	// Strip configures colours and the LED hardware (order, brightness cap,
	// gamma, current limit, fade, quiet hours, colour scale). Its LED count
	// is leds above.
	Strip ledstrip.Options `yaml:"strip"`

	// MQTT holds credentials and TLS files for the broker.
	MQTT brokerconf.Config `yaml:"mqtt"`

	LogLevel string `yaml:"log_level"`
}

// WiFiConfig configures the optional WiFi scan for location.
type WiFiConfig struct {
	Scan bool `yaml:"scan"`
	// Tool is nmcli, iw, or empty for nmcli with iw as fallback.
	Tool string `yaml:"tool"`
	// Interface is the wireless interface for iw (default wlan0).
	Interface string `yaml:"interface"`
	// PublicIP, if set, lets the agent fall back to IP geolocation.
	PublicIP string `yaml:"public_ip"`
}

// Default returns the built-in configuration.
func Default() Config {
	return Config{
		Broker:     "tcp://127.0.0.1:1883",
		LED:        "term",
		LEDs:       5,
		StaleAfter: time.Hour,
		Strip:      stripDefaults(),
		LogLevel:   "info",
	}
}

func stripDefaults() ledstrip.Options {
	o := ledstrip.DefaultOptions()
	o.LEDs = 0 // leds (--leds) is the one place to say it
	return o
}

// StripOptions are the strip's options with the LED count filled in.
func (c *Config) StripOptions() ledstrip.Options {
	o := c.Strip
	o.LEDs = c.LEDs
	return o
}

// DaemonStripOptions are the options the daemon opens its strip with:
// StripOptions without the strip's own quiet hours. The device applies
// quiet hours to each frame as a setting (strip.quiet_hours is the
// default the owner's quiet_hours replaces); left in the strip as well they
// would dim twice, and outlast the owner's window.
func (c *Config) DaemonStripOptions() ledstrip.Options {
	o := c.StripOptions()
	o.Quiet = ledstrip.QuietHours{}
	return o
}

// Bind registers the daemon's flags on fs, with cfg's values as defaults.
func (c *Config) Bind(fs *flag.FlagSet) {
	fs.StringVar(&c.Broker, "broker", c.Broker, "MQTT broker `URL` (tcp://, mqtts://, ssl://, ws://, wss://); several, comma-separated, for the nodes of a clustered broker: tried in order on every (re)connect")
	fs.StringVar(&c.DeviceID, "device-id", c.DeviceID, "this device's `ID` (letters, digits, '.', '_', '-')")
	fs.StringVar(&c.LED, "led", c.LED, "LED backend `SPEC`: spi:/dev/spidev0.0, jsonl:PATH, term or none")
	fs.IntVar(&c.LEDs, "leds", c.LEDs, "number of LEDs on the strip")
	fs.StringVar(&c.StateDir, "state-dir", c.StateDir, "`DIR` where the last temps are kept across restarts")
	fs.DurationVar(&c.StaleAfter, "stale-after", c.StaleAfter, "show temps dimmed once they are older than this")
	fs.BoolVar(&c.WiFi.Scan, "wifi-scan", c.WiFi.Scan, "scan WiFi access points once per boot and send them to the agent for location")
	fs.StringVar(&c.Sensor, "sensor", c.Sensor, "outdoor thermometer `SPEC` whose readings the agent scores forecasts against: ds18b20[:ID|PATH] (1-wire) or bme280[:BUS][@ADDR] (I²C, default /dev/i2c-1@0x76); empty for none")
	c.MQTT.Bind(fs)
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log `level`: debug, info, warn, error")
}

// Validate checks the configuration; errors name the field and flag.
func (c *Config) Validate() error {
	var errs []error
	if c.Broker == "" {
		errs = append(errs, errors.New("broker (--broker) is empty: give the MQTT broker URL, e.g. tcp://192.168.1.10:1883"))
	} else if _, err := mqttmsg.ParseBrokers(c.Broker); err != nil {
		errs = append(errs, fmt.Errorf("broker (--broker): %w; several nodes of a clustered broker are separated by commas", err))
	}
	if c.DeviceID == "" {
		errs = append(errs, errors.New("device_id (--device-id) is not set: choose a name for this device, e.g. kitchen"))
	} else if err := protocol.ValidDeviceID(c.DeviceID); err != nil {
		errs = append(errs, fmt.Errorf("device_id (--device-id): %w", err))
	}
	if c.LEDs < 1 || c.LEDs > 1000 {
		errs = append(errs, fmt.Errorf("leds (--leds) %d: must be 1…1000", c.LEDs))
	}
	if c.StaleAfter <= 0 {
		errs = append(errs, fmt.Errorf("stale_after (--stale-after) %v: must be positive", c.StaleAfter))
	}
	if c.Strip.LEDs != 0 && c.Strip.LEDs != c.LEDs {
		errs = append(errs, fmt.Errorf("strip.leds %d: set the LED count once, as leds (--leds)", c.Strip.LEDs))
	} else if c.LEDs >= 1 {
		if err := c.StripOptions().Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	switch c.WiFi.Tool {
	case "", "nmcli", "iw":
	default:
		errs = append(errs, fmt.Errorf("wifi.tool %q: use nmcli, iw or leave it empty", c.WiFi.Tool))
	}
	if _, err := sensor.ParseSpec(c.Sensor); err != nil {
		errs = append(errs, fmt.Errorf("sensor (--sensor): %w", err))
	}
	if c.Location != nil {
		if err := c.Location.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("location: %w", err))
		}
	}
	if err := c.MQTT.Validate(c.Broker); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
