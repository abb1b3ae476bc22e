package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// MsgSensor names a device's thermometer reading, sent (not retained) on
// glowcast/v1/<device>/device/sensor; the agent scores its forecasts with it.
const MsgSensor = "sensor"

// Sensor is the payload of MsgSensor.
type Sensor struct {
	TempC float64 `json:"temp_c"`
}

// Marshal renders a reading rounded to 0.1 °C: no thermometer at a window
// is finer.
func (s Sensor) Marshal() []byte {
	b, _ := json.Marshal(Sensor{TempC: math.Round(s.TempC*10) / 10}) // a float field: cannot fail
	return b
}

// ParseSensor decodes and validates a sensor payload.
func ParseSensor(b []byte) (*Sensor, error) {
	var raw struct {
		TempC *float64 `json:"temp_c"`
	}
	if err := strictUnmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("sensor: %w", err)
	}
	if raw.TempC == nil {
		return nil, errors.New("sensor: temp_c is missing")
	}
	if v := *raw.TempC; v < MinTempC || v > MaxTempC {
		return nil, fmt.Errorf("sensor: temp_c = %v is outside %d…%d °C", v, MinTempC, MaxTempC)
	}
	return &Sensor{TempC: *raw.TempC}, nil
}
