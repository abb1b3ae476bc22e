package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// MsgSettings names both settings messages: the desired settings the agent
// retains on glowcast/v1/<device>/agent/settings and the settings a device
// reports, retained, on glowcast/v1/<device>/device/settings.
const MsgSettings = "settings"

// LightSetTopic is where Home Assistant's light sends its commands for a
// device: glowcast/v1/<device>/light/set, a JSON object of settings fields
// (as a PATCH body). The agent turns them into desired settings; a device
// never reads this topic.
func LightSetTopic(device string) string { return Prefix + "/" + device + "/light/set" }

// DeviceOfLightSetTopic returns the device id of a light/set topic, and
// false for any other topic or an invalid id.
func DeviceOfLightSetTopic(topic string) (string, bool) {
	id, ok := between(topic, Prefix+"/", "/light/set")
	if !ok || ValidDeviceID(id) != nil {
		return "", false
	}
	return id, true
}

// Setting field names, as they appear on the wire and as keys of a
// report's errors.
const (
	FieldVersion    = "version"
	FieldOn         = "on"
	FieldBrightness = "brightness"
	FieldQuietHours = "quiet_hours"
	FieldUnit       = "unit"
	FieldFadeMS     = "fade_ms"
)

// Colour-scale units a device can label and picture temperatures in.
const (
	UnitC = "C"
	UnitF = "F"
)

// MaxFadeMS is the longest fade a setting may ask for, one minute, the
// same bound the device's YAML has for strip.fade.
const MaxFadeMS = 60_000

// QuietHours is a daily window, in the device's local time, during which
// the strip shows at Brightness percent (0 turns it off). Start after End
// wraps past midnight.
type QuietHours struct {
	Start      string `json:"start"`
	End        string `json:"end"`
	Brightness int    `json:"brightness"`
}

// Settings are a device's remotely controllable settings. A nil field is
// not set: a desired message leaves it to the device's own configuration.
// In a report's Applied every field is set.
type Settings struct {
	On         *bool       `json:"on,omitempty"`
	Brightness *int        `json:"brightness,omitempty"`
	QuietHours *QuietHours `json:"quiet_hours,omitempty"`
	Unit       string      `json:"unit,omitempty"`
	FadeMS     *int        `json:"fade_ms,omitempty"`
}

// Empty reports whether no field is set.
func (s Settings) Empty() bool {
	return s.On == nil && s.Brightness == nil && s.QuietHours == nil && s.Unit == "" && s.FadeMS == nil
}

// Over returns s with every field s leaves unset taken from base: desired
// settings over a device's local defaults.
func (s Settings) Over(base Settings) Settings {
	out := base
	if s.On != nil {
		out.On = s.On
	}
	if s.Brightness != nil {
		out.Brightness = s.Brightness
	}
	if s.QuietHours != nil {
		out.QuietHours = s.QuietHours
	}
	if s.Unit != "" {
		out.Unit = s.Unit
	}
	if s.FadeMS != nil {
		out.FadeMS = s.FadeMS
	}
	return out
}

// Desired is the agent's retained message to a device. Version only grows:
// a device ignores a message whose version is below the one it holds.
type Desired struct {
	Version uint64 `json:"version"`
	Settings
}

// Reported is a device's retained answer: the version it last processed,
// the values in force and why it refused the fields it refused. Errors is
// omitted when empty.
type Reported struct {
	Version uint64            `json:"version"`
	Applied Settings          `json:"applied"`
	Errors  map[string]string `json:"errors,omitempty"`
}

// FieldErrors maps a setting's field name to why it was refused.
type FieldErrors map[string]string

// Error lists the refused fields in a stable order.
func (e FieldErrors) Error() string {
	keys := slices.Sorted(maps.Keys(e))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + e[k]
	}
	return "settings refused: " + strings.Join(parts, "; ")
}

// ParseDesired decodes a desired-settings payload. An empty payload or {}
// clears the desired settings: it returns a zero Desired and cleared true.
// A payload that is not a JSON object, or has no valid version, is an
// error; fields that are unknown or out of range come back as FieldErrors
// and then nothing from the message applies.
func ParseDesired(b []byte) (d Desired, cleared bool, err error) {
	if len(b) > MaxPayload {
		return Desired{}, false, fmt.Errorf("settings: payload of %d bytes exceeds %d", len(b), MaxPayload)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return Desired{}, true, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil || raw == nil {
		if err == nil {
			err = errors.New("not a JSON object")
		}
		return Desired{}, false, fmt.Errorf("settings: %w", err)
	}
	if len(raw) == 0 {
		return Desired{}, true, nil
	}
	v, ok := raw[FieldVersion]
	if !ok {
		return Desired{}, false, errors.New("settings: version is missing")
	}
	if err := json.Unmarshal(v, &d.Version); err != nil {
		return Desired{}, false, fmt.Errorf("settings: version: want a whole number ≥ 0: %v", err)
	}
	delete(raw, FieldVersion)
	s, ferr := parseFields(raw)
	d.Settings = s
	if ferr != nil {
		return d, false, ferr
	}
	return d, false, nil
}

// ParsePatch decodes the body of an API request that changes desired
// settings: the settings fields without a version. A field given as null
// is returned in clear: the desired value goes and the device's own
// configuration applies again. Refused fields come back as FieldErrors.
func ParsePatch(b []byte) (s Settings, clear []string, err error) {
	if len(b) > MaxPayload {
		return Settings{}, nil, fmt.Errorf("payload of %d bytes exceeds %d", len(b), MaxPayload)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil || raw == nil {
		if err == nil {
			err = errors.New("not a JSON object")
		}
		return Settings{}, nil, fmt.Errorf("body: %w", err)
	}
	if _, ok := raw[FieldVersion]; ok {
		return Settings{}, nil, FieldErrors{FieldVersion: "set by the agent; leave it out"}
	}
	for k, v := range raw {
		if string(bytes.TrimSpace(v)) == "null" {
			clear = append(clear, k)
		}
	}
	s, err = parseFields(raw)
	return s, clear, err
}

// Clear unsets the named fields.
func (s *Settings) Clear(fields ...string) {
	for _, f := range fields {
		switch f {
		case FieldOn:
			s.On = nil
		case FieldBrightness:
			s.Brightness = nil
		case FieldQuietHours:
			s.QuietHours = nil
		case FieldUnit:
			s.Unit = ""
		case FieldFadeMS:
			s.FadeMS = nil
		}
	}
}

// parseFields decodes and checks each field on its own, so that every
// refused field gets its own reason.
func parseFields(raw map[string]json.RawMessage) (Settings, error) {
	var s Settings
	errs := FieldErrors{}
	for k, v := range raw {
		known := k == FieldOn || k == FieldBrightness || k == FieldQuietHours || k == FieldUnit || k == FieldFadeMS
		if known && string(bytes.TrimSpace(v)) == "null" {
			continue // not set
		}
		switch k {
		case FieldOn:
			var on bool
			if err := json.Unmarshal(v, &on); err != nil {
				errs[k] = "want true or false"
				continue
			}
			s.On = &on
		case FieldBrightness:
			p, err := percent(v)
			if err != nil {
				errs[k] = err.Error()
				continue
			}
			s.Brightness = &p
		case FieldQuietHours:
			q, err := parseQuiet(v)
			if err != nil {
				errs[k] = err.Error()
				continue
			}
			s.QuietHours = q
		case FieldUnit:
			var u string
			if err := json.Unmarshal(v, &u); err != nil || (u != UnitC && u != UnitF) {
				errs[k] = `want "C" or "F"`
				continue
			}
			s.Unit = u
		case FieldFadeMS:
			var ms int
			if err := json.Unmarshal(v, &ms); err != nil || ms < 0 || ms > MaxFadeMS {
				errs[k] = fmt.Sprintf("want a whole number of milliseconds from 0 to %d", MaxFadeMS)
				continue
			}
			s.FadeMS = &ms
		default:
			errs[k] = "unknown field"
		}
	}
	if len(errs) > 0 {
		return s, errs
	}
	return s, nil
}

func percent(v json.RawMessage) (int, error) {
	var p int
	if err := json.Unmarshal(v, &p); err != nil || p < 0 || p > 100 {
		return 0, errors.New("want a whole percentage from 0 to 100")
	}
	return p, nil
}

func parseQuiet(v json.RawMessage) (*QuietHours, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(v, &raw); err != nil || raw == nil {
		return nil, errors.New(`want {"start":"HH:MM","end":"HH:MM","brightness":0..100}`)
	}
	var q QuietHours
	for _, k := range []string{"start", "end", "brightness"} {
		if _, ok := raw[k]; !ok {
			return nil, fmt.Errorf("%s is missing", k)
		}
	}
	for k := range raw {
		switch k {
		case "start", "end":
			var s string
			if err := json.Unmarshal(raw[k], &s); err != nil {
				return nil, fmt.Errorf("%s: want \"HH:MM\"", k)
			}
			if _, err := ClockMinutes(s); err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			if k == "start" {
				q.Start = s
			} else {
				q.End = s
			}
		case "brightness":
			p, err := percent(raw[k])
			if err != nil {
				return nil, fmt.Errorf("brightness: %w", err)
			}
			q.Brightness = p
		default:
			return nil, fmt.Errorf("%s: unknown field", k)
		}
	}
	if q.Start == q.End {
		return nil, errors.New("start and end are equal: the window would be empty")
	}
	return &q, nil
}

// ClockMinutes parses "HH:MM" (24-hour) into minutes after midnight.
func ClockMinutes(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil || len(s) != 5 {
		return 0, fmt.Errorf("%q: want 24-hour \"HH:MM\"", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

// In reports whether the local time of now lies inside the window.
func (q QuietHours) In(now time.Time) bool {
	a, err1 := ClockMinutes(q.Start)
	b, err2 := ClockMinutes(q.End)
	if err1 != nil || err2 != nil || a == b {
		return false
	}
	m := now.Hour()*60 + now.Minute()
	if a < b {
		return m >= a && m < b
	}
	return m >= a || m < b
}

// BrightnessAt is the brightness in percent that applied settings give at
// now: 0 when off, the quiet-hours brightness inside the window, else
// Brightness. Unset fields count as on and 100 %.
func (s Settings) BrightnessAt(now time.Time) int {
	if s.On != nil && !*s.On {
		return 0
	}
	if s.QuietHours != nil && s.QuietHours.In(now) {
		return s.QuietHours.Brightness
	}
	if s.Brightness != nil {
		return *s.Brightness
	}
	return 100
}

// ParseReported decodes a device's settings report.
func ParseReported(b []byte) (*Reported, error) {
	var r Reported
	if err := strictUnmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("reported settings: %w", err)
	}
	return &r, nil
}
