package device

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/glowcast/glowcast/internal/atomicfile"
	"github.com/glowcast/glowcast/mqttmsg"
	"github.com/glowcast/glowcast/protocol"
)

// settingsFile holds the last desired settings the device accepted, so they
// survive a reboot without the agent.
const settingsFile = "settings.json"

// settings is the loop's view of the owner's settings. Only the loop
// goroutine touches it.
type settings struct {
	local   protocol.Settings // from the YAML: the defaults
	desired protocol.Desired  // accepted from the agent; fields unset fall back to local
	errs    protocol.FieldErrors
}

// applied is what is in force: desired over local.
func (s *settings) applied() protocol.Settings { return s.desired.Settings.Over(s.local) }

// localSettings are the settings the device's own configuration gives.
func localSettings(c Config) protocol.Settings {
	on, full := true, 100
	fade := int(c.Strip.Fade / time.Millisecond)
	s := protocol.Settings{On: &on, Brightness: &full, Unit: protocol.UnitC, FadeMS: &fade}
	if q := c.Strip.Quiet; q.Start != "" {
		b := 0
		if !q.Off {
			b = quietLook(q.Brightness, c.Strip.Brightness, c.Strip.Gamma)
		}
		s.QuietHours = &protocol.QuietHours{Start: q.Start, End: q.End, Brightness: b}
	}
	return s
}

// quietLook turns strip.quiet_hours.brightness, a cap in percent of full
// scale on the LEDs' output, into the percent of the look a setting's
// brightness is: frame brightness scales the colours before gamma and the
// strip.brightness cap, so the cap in the window is met when
// (look/100)^gamma × brightness = quiet, and a quiet cap above the normal
// one changes nothing, as it did when the strip applied it.
func quietLook(quiet, brightness, gamma float64) int {
	if brightness <= 0 || gamma <= 0 {
		return int(math.Round(quiet))
	}
	f := math.Min(quiet, brightness) / brightness
	return int(math.Round(100 * math.Pow(f, 1/gamma)))
}

// settingsMsg is the newest desired-settings payload, kept apart from an
// empty one so that a clear is not lost to a nil slice.
type settingsMsg struct{ b []byte }

// takeSettings applies a desired payload: all of it or, when a field is
// refused, none of it. It reports whether the report must be published.
func (d *Device) takeSettings(s *settings, b []byte) bool {
	des, cleared, err := protocol.ParseDesired(b)
	var fe protocol.FieldErrors
	switch {
	case cleared:
		if s.desired.Settings.Empty() && s.errs == nil {
			return false
		}
		d.log.Info("desired settings cleared; local configuration in force")
		s.desired = protocol.Desired{Version: s.desired.Version}
		s.errs = nil
	case errors.As(err, &fe):
		if des.Version < s.desired.Version {
			d.log.Info("refused settings older than those in force dropped", "version", des.Version, "in_force", s.desired.Version)
			return false
		}
		d.log.Warn("desired settings refused; nothing changed", "version", des.Version, "err", err)
		s.desired.Version = des.Version
		s.errs = fe
	case err != nil:
		d.log.Warn("malformed desired settings dropped", "err", err)
		return false
	default:
		if des.Version < s.desired.Version {
			d.log.Info("settings older than those in force dropped", "version", des.Version, "in_force", s.desired.Version)
			return false
		}
		s.desired, s.errs = des, nil
		d.log.Info("desired settings applied", "version", des.Version)
	}
	d.saveSettings(s.desired)
	return true
}

func (d *Device) settingsPath() string {
	if d.cfg.StateDir == "" {
		return ""
	}
	return filepath.Join(d.cfg.StateDir, settingsFile)
}

// loadSettings reads the desired settings kept in the state dir. A damaged
// file is moved aside: the local configuration is then in force.
func (d *Device) loadSettings() protocol.Desired {
	p := d.settingsPath()
	if p == "" {
		return protocol.Desired{}
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return protocol.Desired{}
	}
	if err == nil {
		var des protocol.Desired
		if des, _, err = protocol.ParseDesired(b); err == nil {
			d.log.Info("saved settings in force until the agent's arrive", "version", des.Version)
			return des
		}
	}
	d.log.Error("saved settings unreadable; moved aside", "file", p, "err", err)
	os.Rename(p, p+".corrupt")
	return protocol.Desired{}
}

func (d *Device) saveSettings(des protocol.Desired) {
	p := d.settingsPath()
	if p == "" {
		return
	}
	b, err := json.Marshal(des)
	if err != nil {
		d.log.Error("encoding settings", "err", err)
		return
	}
	if err := os.MkdirAll(d.cfg.StateDir, 0o750); err != nil {
		d.log.Error("state dir (--state-dir)", "err", err)
		return
	}
	if err := atomicfile.Write(p, b, 0o640); err != nil {
		d.log.Error("saving settings", "err", err)
	}
}

// report publishes the settings in force, retained. It returns false when
// the broker did not take it, so the loop tries again.
func (d *Device) report(ctx context.Context, node *mqttmsg.Node, s *settings) bool {
	r := protocol.Reported{Version: s.desired.Version, Applied: s.applied()}
	if len(s.errs) > 0 {
		r.Errors = s.errs
	}
	b, err := json.Marshal(r)
	if err != nil {
		d.log.Error("encoding settings report", "err", err)
		return true
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := node.SendRetained(pctx, protocol.MsgSettings, b); err != nil {
		d.log.Warn("reporting settings failed; will repeat", "err", err)
		return false
	}
	return true
}

// reportFlag is set when the settings report must be (re)published: after
// each connect and each change.
type reportFlag struct{ atomic.Bool }
