// Package protocol owns glowcast's wire format, version 1: every topic name
// and its parsing, every JSON payload that the device and the agent
// exchange (statuses, ready, temps, settings, wifi, sensor readings, owner
// claims) with their validation, the freshness rule of a temps message,
// and the rules for ids and message names. Both programs and mqttmsg import
// it; it imports only the standard library and does no I/O.
//
// The names here are fixed: tests and tools outside this repository rely on
// them. docs/PROTOCOL.md describes them for humans.
package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Prefix is the root of every glowcast topic.
const Prefix = "glowcast/v1"

// Sides of a device's topic tree: what the device publishes lives under
// SideDevice, what the agent sends it under SideAgent.
const (
	SideDevice = "device"
	SideAgent  = "agent"
)

// Names of the messages the protocol defines.
const (
	MsgStatus  = "status"
	MsgReady   = "ready"
	MsgTemps   = "temps"
	MsgRebirth = "rebirth"
)

// Limits on untrusted input, checked on both sides.
const (
	// MaxPayload is the default largest payload accepted; bigger ones are
	// dropped before parsing.
	MaxPayload = 64 << 10
	// MaxNameLen is the longest named-message name.
	MaxNameLen = 64
	// MaxIDLen is the longest device or agent id.
	MaxIDLen = 64
)

// Offsets are the hours ahead that the five LEDs show.
var Offsets = []int{0, 3, 6, 9, 12}

// Temperature bounds: values outside make a temps message invalid.
const (
	MinTempC = -90
	MaxTempC = 70
)

var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// ValidID reports whether id is a safe device or agent id: letters, digits,
// '.', '_' and '-', starting with a letter or digit, at most MaxIDLen long.
// MQTT wildcards and separators ('+', '#', '/') can never appear.
func ValidID(id string) error {
	if id == "" {
		return errors.New("id is empty")
	}
	if len(id) > MaxIDLen {
		return fmt.Errorf("id %.20q… is longer than %d characters", id, MaxIDLen) // an attacker's id is not logged whole
	}
	if !idRE.MatchString(id) {
		return fmt.Errorf("id %q may only hold letters, digits, '.', '_' and '-', starting with a letter or digit", id)
	}
	return nil
}

// ValidName reports whether name is a safe named-message name.
func ValidName(name string) error {
	if name == "" {
		return errors.New("message name is empty")
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("message name %.20q… is longer than %d characters", name, MaxNameLen) // an attacker's name is not logged whole
	}
	if !idRE.MatchString(name) {
		return fmt.Errorf("message name %q may only hold letters, digits, '.', '_' and '-'", name)
	}
	return nil
}

// DeviceTopic is glowcast/v1/<device>/<side>/<name>.
func DeviceTopic(device, side, name string) string {
	return Prefix + "/" + device + "/" + side + "/" + name
}

// DeviceFilter matches the named messages of one side of every device:
// glowcast/v1/+/<side>/+.
func DeviceFilter(side string) string { return DeviceTopic("+", side, "+") }

// ParseDeviceTopic splits glowcast/v1/<device>/<side>/<name>; ok is false
// for any other topic or a device id or name that fails validation.
func ParseDeviceTopic(topic string) (device, side, name string, ok bool) {
	rest, ok := strings.CutPrefix(topic, Prefix+"/")
	if !ok {
		return "", "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || ValidDeviceID(parts[0]) != nil || ValidName(parts[2]) != nil {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// AgentStatusTopic is glowcast/v1/agent/<agent-id>/status.
func AgentStatusTopic(agentID string) string {
	return Prefix + "/agent/" + agentID + "/status"
}

// AgentStatusFilter matches every agent's status topic.
const AgentStatusFilter = Prefix + "/agent/+/status"

// AgentOfStatusTopic returns the agent id of an agent status topic, and
// false for any other topic.
func AgentOfStatusTopic(topic string) (string, bool) {
	return between(topic, Prefix+"/agent/", "/status")
}

// OwnerTopic is glowcast/v1/<device>/owner, the retained claim of the agent
// that runs the device's cycle.
func OwnerTopic(device string) string { return Prefix + "/" + device + "/owner" }

// OwnerFilter matches every device's owner topic.
const OwnerFilter = Prefix + "/+/owner"

// DeviceOfOwnerTopic returns the device id of an owner topic, and false for
// any other topic.
func DeviceOfOwnerTopic(topic string) (string, bool) {
	return between(topic, Prefix+"/", "/owner")
}

// DoctorTopic is glowcast/v1/agent/<agent-id>/doctor, on which
// glowcast-agent doctor checks that the broker lets it publish and
// subscribe; nothing else listens there.
func DoctorTopic(agentID string) string { return Prefix + "/agent/" + agentID + "/doctor" }

// SyncTopic is glowcast/v1/agent/<agent-id>/sync, on which an agent sees
// its own marker come back once the broker has delivered everything it
// sent before it.
func SyncTopic(agentID string) string { return Prefix + "/agent/" + agentID + "/sync" }

// between returns the one topic level between prefix and suffix.
func between(topic, prefix, suffix string) (string, bool) {
	rest, ok := strings.CutPrefix(topic, prefix)
	if !ok {
		return "", false
	}
	id, ok := strings.CutSuffix(rest, suffix)
	if !ok || id == "" || strings.ContainsAny(id, "/+#") {
		return "", false
	}
	return id, true
}

// DeviceStatus is the retained presence of a device (birth and last will).
type DeviceStatus struct {
	Online bool   `json:"online"`
	BootID string `json:"boot_id"`
	// BootSeq is the device's boot counter (Sparkplug's bdSeq), kept in its
	// state dir and raised before each start; 0 from devices without one.
	BootSeq uint64 `json:"boot_seq,omitempty"`
	// TS is for people and expiry only; ordering never compares it.
	TS time.Time `json:"ts"`
}

// Ready announces a device process: its handlers are in place.
type Ready struct {
	BootID  string `json:"boot_id"`
	Version string `json:"version"`
	LEDs    int    `json:"leds"`
	// Location is an optional hint from the device's own configuration.
	Location *Location `json:"location,omitempty"`
	// BootSeq is the device's boot counter, as in its status.
	BootSeq uint64 `json:"boot_seq,omitempty"`
	// TempsSeq is the seq of the temps the device showed when it started:
	// an agent with no memory of the device numbers its temps above it.
	TempsSeq uint64 `json:"temps_seq,omitempty"`
	// CertExpires is the notAfter of the device's MQTT client certificate
	// (RFC 3339, UTC), so the agent can warn before the broker starts
	// refusing it; absent without a client certificate.
	CertExpires *time.Time `json:"cert_expires,omitempty"`
}

// AgentStatus is the retained presence of an agent.
type AgentStatus struct {
	Online  bool      `json:"online"`
	Session string    `json:"session"`
	TS      time.Time `json:"ts"`
	// Shard is the agent's "i/N" in its shard set (--shard): the other
	// agents of the set split the devices among the live indices.
	Shard string `json:"shard,omitempty"`
}

// Location is a place on Earth in decimal degrees.
type Location struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

// Validate checks the coordinates' ranges.
func (l Location) Validate() error {
	if math.IsNaN(l.Lat) || l.Lat < -90 || l.Lat > 90 {
		return fmt.Errorf("latitude %v out of range -90…90", l.Lat)
	}
	if math.IsNaN(l.Lon) || l.Lon < -180 || l.Lon > 180 {
		return fmt.Errorf("longitude %v out of range -180…180", l.Lon)
	}
	return nil
}

// Temps is the forecast message the agent sends a device.
type Temps struct {
	TempsC     TempList  `json:"temps_c"`
	OffsetsH   []int     `json:"offsets_h"`
	IssuedAt   time.Time `json:"issued_at"`
	ValidUntil time.Time `json:"valid_until"`
	Location   Location  `json:"location"`
	Hourly     Hourly    `json:"hourly"`
	// Provider names the forecast source; "sample" marks bundled demo data.
	Provider string `json:"provider,omitempty"`
	// Seq orders the temps of one device: the agent raises it with every
	// message, across its restarts and takeovers, and a device drops a
	// message with a lower seq than the one it shows. 0 from older agents.
	Seq uint64 `json:"seq,omitempty"`
}

// Hourly is the series the device re-slots from at each hour boundary.
type Hourly struct {
	Start  time.Time `json:"start"`
	TempsC TempList  `json:"temps_c"`
}

// TempList is a list of temperatures in °C where NaN stands for a missing
// value; on the wire a missing value is null.
type TempList []float64

// MarshalJSON writes each value rounded to 0.01 °C, and NaN as null. It
// writes the numbers as encoding/json does, without a pointer a value and
// a second encoder: every temps message and every device's saved state
// carries 53 of them.
func (l TempList) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 2+7*len(l))
	b = append(b, '[')
	for i, v := range l {
		if i > 0 {
			b = append(b, ',')
		}
		if math.IsNaN(v) {
			b = append(b, "null"...)
			continue
		}
		x := math.Round(v*100) / 100
		if a := math.Abs(x); math.IsInf(x, 0) || a >= 1e21 {
			// Out of any temperature's range: encoding/json's own
			// exponent form, or its error for an infinity.
			e, err := json.Marshal(x)
			if err != nil {
				return nil, err
			}
			b = append(b, e...)
			continue
		}
		b = strconv.AppendFloat(b, x, 'f', -1, 64)
	}
	return append(b, ']'), nil
}

// UnmarshalJSON reads null as NaN.
func (l *TempList) UnmarshalJSON(b []byte) error {
	var ps []*float64
	if err := json.Unmarshal(b, &ps); err != nil {
		return err
	}
	if ps == nil {
		*l = nil
		return nil
	}
	out := make(TempList, len(ps))
	for i, p := range ps {
		if p == nil {
			out[i] = math.NaN()
		} else {
			out[i] = *p
		}
	}
	*l = out
	return nil
}

// MaxValidity bounds valid_until − issued_at: twice the longest sensible
// forecast interval (a day).
const MaxValidity = 48 * time.Hour

// Years a temps message's issued_at may fall in.
const (
	minYear = 2000
	maxYear = 2200
)

// HourlyMin is the least number of hourly values a temps message carries.
const HourlyMin = 24

// Validate checks a temps message as a device must before showing it.
func (t *Temps) Validate() error {
	if len(t.TempsC) != len(Offsets) {
		return fmt.Errorf("temps_c has %d values, want %d", len(t.TempsC), len(Offsets))
	}
	if len(t.OffsetsH) != len(Offsets) {
		return fmt.Errorf("offsets_h has %d values, want %d", len(t.OffsetsH), len(Offsets))
	}
	for i, o := range t.OffsetsH {
		if o != Offsets[i] {
			return fmt.Errorf("offsets_h is %v, want %v", t.OffsetsH, Offsets)
		}
	}
	if err := checkRange("temps_c", t.TempsC); err != nil {
		return err
	}
	if t.IssuedAt.IsZero() {
		return errors.New("issued_at is missing")
	}
	if t.ValidUntil.IsZero() {
		return errors.New("valid_until is missing")
	}
	// Times are for people and expiry, so they only need to be sane: a
	// year out of range is a broken clock or a forged message, and a
	// validity beyond MaxValidity would keep a forecast "fresh" for days
	// after its agent stopped.
	if y := t.IssuedAt.Year(); y < minYear || y >= maxYear {
		return fmt.Errorf("issued_at %v is outside the years %d…%d", t.IssuedAt, minYear, maxYear-1)
	}
	if !t.ValidUntil.After(t.IssuedAt) || t.ValidUntil.Sub(t.IssuedAt) > MaxValidity {
		return fmt.Errorf("valid_until %v must lie after issued_at %v, by at most %v", t.ValidUntil, t.IssuedAt, MaxValidity)
	}
	if err := t.Location.Validate(); err != nil {
		return fmt.Errorf("location: %w", err)
	}
	if len(t.Hourly.TempsC) < HourlyMin {
		return fmt.Errorf("hourly.temps_c has %d values, want at least %d", len(t.Hourly.TempsC), HourlyMin)
	}
	if len(t.Hourly.TempsC) > 24*16 {
		return fmt.Errorf("hourly.temps_c has %d values, more than 16 days", len(t.Hourly.TempsC))
	}
	if t.Hourly.Start.IsZero() || !t.Hourly.Start.Equal(t.Hourly.Start.Truncate(time.Hour)) {
		return fmt.Errorf("hourly.start %v is not on an hour boundary", t.Hourly.Start)
	}
	return checkRange("hourly.temps_c", t.Hourly.TempsC)
}

func checkRange(field string, l TempList) error {
	for i, v := range l {
		if math.IsNaN(v) {
			continue // null: missing, allowed
		}
		if math.IsInf(v, 0) || v < MinTempC || v > MaxTempC {
			return fmt.Errorf("%s[%d] = %v is outside %d…%d °C", field, i, v, MinTempC, MaxTempC)
		}
	}
	return nil
}

// At returns the hourly value for the slot starting at t, or NaN.
func (h Hourly) At(t time.Time) float64 {
	if t.Before(h.Start) {
		return math.NaN()
	}
	d := t.Sub(h.Start)
	if d%time.Hour != 0 {
		return math.NaN()
	}
	i := int(d / time.Hour)
	if i >= len(h.TempsC) {
		return math.NaN()
	}
	return h.TempsC[i]
}

// ProviderSample is the Provider of the bundled demo forecast: what shows
// it must say it is not real weather.
const ProviderSample = "sample"

// Sample reports whether t is bundled demo data, not a real forecast.
func (t *Temps) Sample() bool { return t.Provider == ProviderSample }

// Fresh is the one rule for whether a device shows t as current rather than
// dimmed: before ValidUntil and less than staleAfter (the device's
// stale_after) since it was issued. The device and the agent's status page
// both apply it, so the page cannot drift from the strip.
func (t *Temps) Fresh(now time.Time, staleAfter time.Duration) bool {
	return now.Before(t.ValidUntil) && now.Sub(t.IssuedAt) < staleAfter
}

// Slot returns the five temperatures for now from the hourly series, so a
// device can re-slot its LEDs at each hour boundary without the agent.
// ok is false when now lies outside the series for the first slot.
func (t *Temps) Slot(now time.Time) (temps []float64, ok bool) {
	base := now.UTC().Truncate(time.Hour)
	temps = make([]float64, len(t.OffsetsH))
	for i, o := range t.OffsetsH {
		temps[i] = t.Hourly.At(base.Add(time.Duration(o) * time.Hour))
	}
	return temps, !base.Before(t.Hourly.Start) && base.Before(t.Hourly.Start.Add(time.Duration(len(t.Hourly.TempsC))*time.Hour))
}

// ParseTemps decodes and validates a temps payload.
func ParseTemps(b []byte) (*Temps, error) {
	var t Temps
	if err := strictUnmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("temps: %w", err)
	}
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("temps: %w", err)
	}
	return &t, nil
}

// ParseReady decodes and validates a ready payload.
func ParseReady(b []byte) (*Ready, error) {
	var r Ready
	if err := strictUnmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("ready: %w", err)
	}
	if r.BootID == "" || len(r.BootID) > 64 {
		return nil, errors.New("ready: boot_id missing or too long")
	}
	if r.LEDs < 0 || r.LEDs > 10000 {
		return nil, fmt.Errorf("ready: leds %d out of range", r.LEDs)
	}
	if r.Location != nil {
		if err := r.Location.Validate(); err != nil {
			return nil, fmt.Errorf("ready: location: %w", err)
		}
	}
	return &r, nil
}

// ParseDeviceStatus decodes and validates a device status payload.
func ParseDeviceStatus(b []byte) (*DeviceStatus, error) {
	var s DeviceStatus
	if err := strictUnmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	if s.BootID == "" || len(s.BootID) > 64 {
		return nil, errors.New("status: boot_id missing or too long")
	}
	return &s, nil
}

// ParseAgentStatus decodes and validates an agent status payload.
func ParseAgentStatus(b []byte) (*AgentStatus, error) {
	var s AgentStatus
	if err := strictUnmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("agent status: %w", err)
	}
	if s.Session == "" || len(s.Session) > 64 {
		return nil, errors.New("agent status: session missing or too long")
	}
	return &s, nil
}

// strictUnmarshal decodes one JSON value and nothing after it. Unknown
// fields are allowed so the protocol can grow.
func strictUnmarshal(b []byte, v any) error {
	if len(b) > MaxPayload {
		return fmt.Errorf("payload of %d bytes exceeds %d", len(b), MaxPayload)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return err
	}
	return nil
}

// ValidDeviceID is ValidID plus the ids that would collide with the agent
// topic tree (glowcast/v1/agent/...).
func ValidDeviceID(id string) error {
	if err := ValidID(id); err != nil {
		return err
	}
	if id == SideAgent || id == HomeAssistantUser {
		return fmt.Errorf("id %q is reserved", id)
	}
	return nil
}

// HomeAssistantUser is Home Assistant's MQTT user name in the shipped ACL.
// It is no device id: the ACL's device patterns apply to every user name.
const HomeAssistantUser = "homeassistant"
