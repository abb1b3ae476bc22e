package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// MsgSensor is the optional outdoor thermometer's reading (device →
// agent), on glowcast/v1/<device>/device/sensor: QoS 0, not retained.
const MsgSensor = "sensor"

// Bounds of a sensor reading: the widest range of the thermometers the
// device drives (DS18B20 −55…125 °C) cut to what can be weather, as for
// temps. Outside them a reading is a fault, not an observation.
const (
	MinSensorC = MinTempC
	MaxSensorC = MaxTempC
)

// MaxSensorPayload bounds a sensor payload: `{"temp_c": -12.3}` is 17
// bytes; anything near this size is not a reading.
const MaxSensorPayload = 256

// Sensor is the payload of the sensor message.
type Sensor struct {
	TempC float64 `json:"temp_c"`
}

// ParseSensor decodes and validates a sensor payload strictly: one JSON
// object holding temp_c, a number within MinSensorC…MaxSensorC, and
// nothing else. A reading scores the forecasts, so a payload that only
// looks like one must not.
func ParseSensor(b []byte) (*Sensor, error) {
	if len(b) > MaxSensorPayload {
		return nil, fmt.Errorf("sensor: payload of %d bytes exceeds %d", len(b), MaxSensorPayload)
	}
	var raw struct {
		TempC *float64 `json:"temp_c"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("sensor: %w", err)
	}
	if dec.More() {
		return nil, errors.New("sensor: data after the JSON object")
	}
	if raw.TempC == nil {
		return nil, errors.New("sensor: temp_c is missing")
	}
	v := *raw.TempC
	if math.IsNaN(v) || math.IsInf(v, 0) || v < MinSensorC || v > MaxSensorC {
		return nil, fmt.Errorf("sensor: temp_c %v is outside %d…%d °C", v, MinSensorC, MaxSensorC)
	}
	return &Sensor{TempC: v}, nil
}

// EncodeSensor returns the payload for a reading, rounded to 0.1 °C: no
// thermometer at a window is finer.
func EncodeSensor(tempC float64) ([]byte, error) {
	if math.IsNaN(tempC) || math.IsInf(tempC, 0) || tempC < MinSensorC || tempC > MaxSensorC {
		return nil, fmt.Errorf("sensor: %v °C is outside %d…%d °C", tempC, MinSensorC, MaxSensorC)
	}
	return json.Marshal(Sensor{TempC: math.Round(tempC*10) / 10})
}
