package agent

import (
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/glowcast/glowcast/agent/statuspage"
	"github.com/glowcast/glowcast/mqttmsg"
)

// statusPage is the fleet overview served at / on --http. Swatches are
// drawn with the device's default scale and its default stale_after of
// twice the interval.
func (a *Agent) statusPage() http.Handler {
	return statuspage.New(a.statusDevices, statuspage.Options{
		Title:      "glowcast fleet · agent " + a.cfg.AgentID + " · " + Version,
		StaleAfter: 2 * a.cfg.Interval,
	})
}

func (a *Agent) statusDevices() []statuspage.Device {
	vs := a.Devices()
	a.mu.Lock()
	book := a.book
	a.mu.Unlock()
	out := make([]statuspage.Device, len(vs))
	for i, v := range vs {
		out[i] = statuspage.Device{ID: v.ID, Online: v.Online, Location: v.Location, LocationSource: v.LocationSource, Temps: v.LastTemps, Duplicate: v.Duplicate, Version: v.Version}
		if book != nil {
			_, out[i].Settings, _ = book.get(v.ID)
		}
	}
	return out
}

// healthz answers 200 when the agent can do its work: connected to the
// broker and able to save device state. Each check is one line.
func (a *Agent) healthz(cl *mqttmsg.Client) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var lines []string
		ok := true
		if cl.Connected() {
			lines = append(lines, "broker: connected")
		} else {
			ok = false
			lines = append(lines, "broker: not connected")
		}
		if err := stateDirWritable(a.cfg.StateDir); err != nil {
			ok = false
			lines = append(lines, "state_dir: "+err.Error())
		} else if a.cfg.StateDir != "" {
			lines = append(lines, "state_dir: writable")
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		} else {
			lines = append(lines, "ok")
		}
		fmt.Fprintln(w, strings.Join(lines, "\n"))
	}
}

// stateDirWritable creates and removes a file in dir: a full disk or a
// read-only remount shows here before a device's state fails to save.
func stateDirWritable(dir string) error {
	if dir == "" {
		return nil
	}
	f, err := os.CreateTemp(dir, ".healthz-*")
	if err != nil {
		return fmt.Errorf("not writable (state_dir, --state-dir): %w", err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}
