package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/glowcast/glowcast/internal/atomicfile"
	"github.com/glowcast/glowcast/protocol"
)

// HassPrefix is Home Assistant's default MQTT discovery prefix.
const HassPrefix = "homeassistant"

// hassDiscovery is one Home Assistant MQTT discovery config.
type hassDiscovery struct {
	Name          string `json:"name"`
	UniqueID      string `json:"unique_id"`
	StateTopic    string `json:"state_topic"`
	ValueTemplate string `json:"value_template,omitempty"`
	Unit          string `json:"unit_of_measurement,omitempty"`
	DeviceClass   string `json:"device_class,omitempty"`
	// No state_class: a forecast must not go into long-term statistics.
	Availability     []hassAvailability `json:"availability"`
	AvailabilityMode string             `json:"availability_mode"`
	Device           hassDevice         `json:"device"`
	Origin           hassOrigin         `json:"origin"`
}

// hassAvailability is one availability topic; with availability_mode all,
// an entity is available only while the device and the agent both are.
type hassAvailability struct {
	Topic               string `json:"topic"`
	ValueTemplate       string `json:"value_template"`
	PayloadAvailable    string `json:"payload_available"`
	PayloadNotAvailable string `json:"payload_not_available"`
}

// hassLight is the template-schema light whose commands become desired
// settings.
type hassLight struct {
	Name               string             `json:"name"`
	UniqueID           string             `json:"unique_id"`
	Schema             string             `json:"schema"`
	CommandTopic       string             `json:"command_topic"`
	CommandOnTemplate  string             `json:"command_on_template"`
	CommandOffTemplate string             `json:"command_off_template"`
	StateTopic         string             `json:"state_topic"`
	StateTemplate      string             `json:"state_template"`
	BrightnessTemplate string             `json:"brightness_template"`
	Availability       []hassAvailability `json:"availability"`
	AvailabilityMode   string             `json:"availability_mode"`
	Device             hassDevice         `json:"device"`
	Origin             hassOrigin         `json:"origin"`
}

func hassAvail(id, agentID string) []hassAvailability {
	tmpl := "{{ 'online' if value_json.online else 'offline' }}"
	return []hassAvailability{
		{Topic: protocol.DeviceTopic(id, protocol.SideDevice, protocol.MsgStatus), ValueTemplate: tmpl, PayloadAvailable: "online", PayloadNotAvailable: "offline"},
		{Topic: protocol.AgentStatusTopic(agentID), ValueTemplate: tmpl, PayloadAvailable: "online", PayloadNotAvailable: "offline"},
	}
}

type hassDevice struct {
	Identifiers  []string `json:"identifiers"`
	Name         string   `json:"name"`
	Manufacturer string   `json:"manufacturer"`
	Model        string   `json:"model"`
	SWVersion    string   `json:"sw_version,omitempty"`
	// ConfigurationURL is the agent's status page, when its address is
	// known (http_public_url).
	ConfigurationURL string `json:"configuration_url,omitempty"`
}

type hassOrigin struct {
	Name      string `json:"name"`
	SWVersion string `json:"sw_version"`
}

// hassObjectID is the device id as Home Assistant object ids allow
// ([a-zA-Z0-9_-]); device ids may also hold '.'.
func hassObjectID(id string) string { return strings.ReplaceAll(id, ".", "_") }

// hassConfigs returns the retained discovery messages (topic → payload)
// that make a device's five temperatures Home Assistant sensors, available
// while the device's status says online.
func hassConfigs(id, version, agentID, statusURL string) (map[string][]byte, error) {
	obj := "glowcast_" + hassObjectID(id)
	out := make(map[string][]byte, len(protocol.Offsets)+2)
	dev := hassDevice{Identifiers: []string{obj}, Name: "glowcast " + id, Manufacturer: "glowcast",
		Model: "glowcast forecast LEDs", SWVersion: version, ConfigurationURL: statusURL}
	origin := hassOrigin{Name: "glowcast-agent", SWVersion: Version}
	light := hassLight{
		Name: "Strip", UniqueID: obj + "_light", Schema: "template",
		CommandTopic:       protocol.LightSetTopic(id),
		CommandOnTemplate:  `{"on":true{% if brightness is defined %},"brightness":{{ (brightness * 100 / 255) | round | int }}{% endif %}}`,
		CommandOffTemplate: `{"on":false}`,
		StateTopic:         protocol.DeviceTopic(id, protocol.SideDevice, protocol.MsgSettings),
		StateTemplate:      "{{ 'on' if value_json.applied.on else 'off' }}",
		BrightnessTemplate: "{{ (value_json.applied.brightness * 255 / 100) | round | int }}",
		Availability:       hassAvail(id, agentID), AvailabilityMode: "all", Device: dev, Origin: origin,
	}
	conn := hassDiscovery{
		Name: "Connectivity", UniqueID: obj + "_connectivity", DeviceClass: "connectivity",
		StateTopic: protocol.DeviceTopic(id, protocol.SideDevice, protocol.MsgStatus), ValueTemplate: "{{ 'ON' if value_json.online else 'OFF' }}",
		Availability: hassAvail(id, agentID)[1:], AvailabilityMode: "all", Device: dev, Origin: origin,
	}
	for topic, v := range map[string]any{
		fmt.Sprintf("%s/light/%s/config", HassPrefix, obj):                      light,
		fmt.Sprintf("%s/binary_sensor/%s_connectivity/config", HassPrefix, obj): conn,
	} {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		out[topic] = b
	}
	for i, h := range protocol.Offsets {
		name := "Now"
		if h > 0 {
			name = fmt.Sprintf("In %d h", h)
		}
		c := hassDiscovery{
			Name:             name,
			UniqueID:         fmt.Sprintf("%s_%d", obj, i),
			StateTopic:       protocol.DeviceTopic(id, protocol.SideAgent, protocol.MsgTemps),
			ValueTemplate:    fmt.Sprintf("{{ value_json.temps_c[%d] }}", i),
			Unit:             "°C",
			DeviceClass:      "temperature",
			Availability:     hassAvail(id, agentID),
			AvailabilityMode: "all",
			Device:           dev,
			Origin:           origin,
		}
		b, err := json.Marshal(c)
		if err != nil {
			return nil, fmt.Errorf("agent: home assistant discovery for %s: %w", id, err)
		}
		out[fmt.Sprintf("%s/sensor/%s_%d/config", HassPrefix, obj, i)] = b
	}
	return out, nil
}

// hass publishes discovery configs off the MQTT delivery goroutine: the
// ready handler only notes the device, its owner goroutine publishes.
// A config is published on every live ready (each boot, and each device
// reconnect, so a broker that lost its retained messages is repaired as its
// devices come back) and on the first retained ready of each device and
// version; a reconnect replaying retained readies publishes nothing new.
// With a state dir, what was published is kept there (HassFile), so a new
// agent process does not publish a whole fleet's configs again.
type hass struct {
	agentID   string
	statusURL string
	log       *slog.Logger
	publish   func(ctx context.Context, topic string, payload []byte, retained bool) error

	mu      sync.Mutex
	pending map[string]string // device id → its version
	gone    map[string]bool   // device ids whose discovery is removed
	// announced is what was published per device (by this process, or by
	// an earlier one with the same configs, from file): a retained ready
	// seen again costs nothing when it matches.
	announced map[string]string
	// file keeps announced across restarts; "" keeps nothing.
	file    string
	dirty   int // changes to announced not yet in file
	inBatch int // devices of the batch being published
	wake    chan struct{}
	done    chan struct{}

	// settled opens when the agent's cycles are armed after a connect
	// (or after the restart grace): seven retained configs a device,
	// published for a whole fleet, must not stand in the way of the
	// fleet's resume.
	settled  chan struct{}
	settle1  sync.Once
	pendingG prometheus.GaugeFunc
}

// HassFile is the file in the state dir that records which devices' Home
// Assistant discovery configs were published, and for which agent, status
// page and agent version (the configs name all three).
const HassFile = "hass-discovery.json"

// hassRecord is HassFile's content.
type hassRecord struct {
	// Configs names what the published configs depend on besides the
	// device: a record for other configs is ignored.
	Configs string `json:"configs"`
	// Devices maps a device id to the version it announced.
	Devices map[string]string `json:"devices"`
}

// HassFile is written every hassSaveEvery announcements of a long batch
// (an agent killed during a fleet's first discovery keeps most of it),
// and hassSaveAfter after the last batch when it changed.
const (
	hassSaveEvery = 10_000
	hassSaveAfter = 30 * time.Second
)

func startHass(ctx context.Context, agentID, statusURL, file string, publish func(ctx context.Context, topic string, payload []byte, retained bool) error, log *slog.Logger, grace time.Duration, reg prometheus.Registerer) *hass {
	h := &hass{agentID: agentID, statusURL: statusURL, file: file, log: log, publish: publish, pending: map[string]string{}, gone: map[string]bool{},
		announced: map[string]string{}, wake: make(chan struct{}, 1), done: make(chan struct{}), settled: make(chan struct{})}
	h.load()
	h.pendingG = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "glowcast_agent_hass_discovery_pending",
		Help: "Devices whose Home Assistant discovery is waiting to be published."}, h.pendingCount)
	if reg != nil {
		reg.MustRegister(h.pendingG)
	}
	go h.run(ctx, grace)
	return h
}

// configsKey is what the configs depend on besides the device.
func (h *hass) configsKey() string {
	return "agent=" + h.agentID + " status_url=" + h.statusURL + " version=" + Version
}

// load reads HassFile. A missing file, or one written for other configs,
// means nothing is known to be published; an unreadable one is reported
// and replaced by the next save, never fatal.
func (h *hass) load() {
	if h.file == "" {
		return
	}
	b, err := os.ReadFile(h.file)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	var rec hassRecord
	if err == nil {
		err = json.Unmarshal(b, &rec)
	}
	if err != nil {
		h.log.Warn("home assistant discovery record unreadable; every device's discovery is published again", "file", h.file, "err", err)
		return
	}
	if rec.Configs != h.configsKey() {
		h.log.Info("home assistant discovery record is for other configs; every device's discovery is published again", "file", h.file, "recorded", rec.Configs, "now", h.configsKey())
		return
	}
	for id, v := range rec.Devices {
		if protocol.ValidDeviceID(id) == nil {
			h.announced[id] = v
		}
	}
}

// save writes announced to HassFile when it changed, outside mu.
func (h *hass) save() {
	h.mu.Lock()
	if h.file == "" || h.dirty == 0 {
		h.mu.Unlock()
		return
	}
	rec := hassRecord{Configs: h.configsKey(), Devices: maps.Clone(h.announced)}
	h.dirty = 0
	h.mu.Unlock()
	b, err := json.Marshal(rec)
	if err == nil {
		err = atomicfile.Write(h.file, b, 0o640)
	}
	if err != nil {
		// The next batch tries again; until then a restart publishes
		// the configs again, which is what it did without the record.
		h.log.Warn("saving the home assistant discovery record failed; check that the state dir (--state-dir) is writable and has room", "file", h.file, "err", err)
		h.mu.Lock()
		h.dirty++
		h.mu.Unlock()
	}
}

func (h *hass) pendingCount() float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return float64(len(h.pending) + len(h.gone) + h.inBatch)
}

// settle lets discovery start: the fleet's cycles are armed. It never
// blocks.
func (h *hass) settle() { h.settle1.Do(func() { close(h.settled) }) }

// seen notes a device that announced itself; it never blocks. A retained
// ready (what every reconnect replays) is skipped when this process
// already published the device's discovery for that version; a live one
// (a boot, or a device back after a broker lost its retained state) is
// always announced.
func (h *hass) seen(id, version string, retained bool) {
	h.mu.Lock()
	if v, ok := h.announced[id]; retained && ok && v == version {
		h.mu.Unlock()
		return
	}
	h.pending[id] = version
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// forget notes a deleted device (its retained ready cleared): its
// discovery is removed with empty retained configs. It never blocks.
func (h *hass) forget(id string) {
	h.mu.Lock()
	delete(h.pending, id)
	h.gone[id] = true
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// wait returns once the publishing goroutine ended (after ctx ended).
func (h *hass) wait() { <-h.done }

func (h *hass) run(ctx context.Context, grace time.Duration) {
	defer close(h.done)
	t := time.NewTimer(grace)
	select {
	case <-ctx.Done():
		t.Stop()
		return
	case <-h.settled:
	case <-t.C: // the settle never came: the restart timer's fallback
	}
	t.Stop()
	// The record is written at most every hassSaveAfter, so a fleet's
	// boots (each a batch of one) do not rewrite it each; what a crash
	// loses of it is published again, as without it.
	saveT := time.NewTimer(time.Hour)
	saveT.Stop()
	defer saveT.Stop()
	for {
		select {
		case <-ctx.Done():
			h.save()
			return
		case <-saveT.C:
			h.save()
			continue
		case <-h.wake:
		}
		h.mu.Lock()
		batch, gone := h.pending, h.gone
		h.pending, h.gone = map[string]string{}, map[string]bool{}
		h.inBatch = len(batch) + len(gone)
		h.mu.Unlock()
		h.publishBatch(ctx, batch, gone)
		saveT.Reset(hassSaveAfter)
	}
}

// hassWorkers devices' configs are published at a time. Each config waits
// for its acknowledgement: one device at a time, a cold start's discovery
// for 100,000 devices (700,000 configs) took over two minutes.
const hassWorkers = 16

// publishBatch announces batch and removes gone with up to hassWorkers
// devices in flight. Only this goroutine saves the record, so two saves
// never race for the file. A stop ends the batch: what is left is
// published again by the next process (its readies are still retained).
func (h *hass) publishBatch(ctx context.Context, batch map[string]string, gone map[string]bool) {
	jobs := make(chan func())
	var wg sync.WaitGroup
	for range min(hassWorkers, len(batch)+len(gone)) {
		wg.Go(func() {
			for job := range jobs {
				job()
				h.mu.Lock()
				h.inBatch--
				h.mu.Unlock()
			}
		})
	}
	defer func() {
		close(jobs)
		wg.Wait()
		h.mu.Lock()
		h.inBatch = 0
		h.mu.Unlock()
	}()
	send := func(job func()) bool {
		select {
		case jobs <- job:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for id, version := range batch {
		if !send(func() { h.announce(ctx, id, version) }) {
			return
		}
		h.mu.Lock()
		full := h.dirty >= hassSaveEvery
		h.mu.Unlock()
		if full {
			h.save()
		}
	}
	for id := range gone {
		if !send(func() { h.remove(ctx, id) }) {
			return
		}
	}
}

func (h *hass) announce(ctx context.Context, id, version string) {
	cfgs, err := hassConfigs(id, version, h.agentID, h.statusURL)
	if err != nil {
		h.log.Warn("home assistant discovery", "device", id, "err", err)
		return
	}
	// On failure the device's retained ready comes again after a
	// reconnect, and with it another try.
	if !h.publishConfigs(ctx, id, cfgs, false) {
		return
	}
	h.mu.Lock()
	h.announced[id] = version
	h.dirty++
	h.mu.Unlock()
	h.log.Debug("home assistant discovery published", "device", id)
}

// remove publishes an empty retained config for each of a device's
// entities: Home Assistant deletes them.
func (h *hass) remove(ctx context.Context, id string) {
	cfgs, err := hassConfigs(id, "", h.agentID, h.statusURL)
	if err != nil || !h.publishConfigs(ctx, id, cfgs, true) {
		return
	}
	h.mu.Lock()
	delete(h.announced, id)
	h.dirty++
	h.mu.Unlock()
	h.log.Info("home assistant discovery removed", "device", id)
}

// publishConfigs publishes a device's configs retained, or empty ones
// that delete them, and says whether all went through; it stops at the
// first failure and logs it.
func (h *hass) publishConfigs(ctx context.Context, id string, cfgs map[string][]byte, empty bool) bool {
	for topic, b := range cfgs {
		if empty {
			b = nil
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := h.publish(pctx, topic, b, true)
		cancel()
		if err != nil {
			h.log.Warn("publishing home assistant discovery failed", "device", id, "topic", topic, "removal", empty, "err", err)
			return false
		}
	}
	return true
}
