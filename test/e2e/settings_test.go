package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/glowcast/glowcast/protocol"
)

// settingsFrame is a jsonl frame with the settings fields.
type settingsFrame struct {
	State      string `json:"state"`
	Brightness *int   `json:"brightness"`
}

func lastSettingsFrame(t *testing.T, path string) settingsFrame {
	b, err := os.ReadFile(path)
	if err != nil {
		return settingsFrame{}
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var f settingsFrame
	json.Unmarshal([]byte(lines[len(lines)-1]), &f)
	return f
}

func patch(t *testing.T, addr, dev, token, body string) int {
	t.Helper()
	req, _ := http.NewRequest("PATCH", "http://"+addr+"/api/v1/devices/"+dev+"/settings", strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// Settings reach the strip through the API, the glowcast client and a raw
// MQTT command, survive an agent SIGKILL and a device restart without the
// agent, and bad or unauthorised changes change nothing.
func TestSettingsEndToEnd(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	jsonl := filepath.Join(dir, "strip.jsonl")
	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte("e2e-token\n"), 0o600)
	agentState := filepath.Join(dir, "agent")
	ag := start(t, "glowcast-agent", e.agentArgs(agentState, "--api-token-file", tok)...)
	dev := start(t, "glowcastd", e.deviceArgs("kitchen", jsonl, filepath.Join(dir, "device"))...)
	waitFresh(t, jsonl, 10*time.Second)
	addr := agentHTTP(t, ag)
	reportTopic := "glowcast/v1/kitchen/device/settings"
	reported := func() protocol.Reported {
		var r protocol.Reported
		json.Unmarshal(e.watch.last(reportTopic), &r)
		return r
	}
	logs := func() string { return ag.logText() + "\n---\n" + dev.logText() }

	// 1. Through the API.
	if code := patch(t, addr, "kitchen", "", `{"brightness":40}`); code != http.StatusUnauthorized {
		t.Errorf("PATCH without token: %d, want 401", code)
	}
	if code := patch(t, addr, "kitchen", "e2e-token", `{"brightness":40}`); code != 200 {
		t.Fatalf("PATCH: %d", code)
	}
	waitFor(t, 10*time.Second, "frame at 40 %", func() bool {
		f := lastSettingsFrame(t, jsonl)
		return f.State == "fresh" && f.Brightness != nil && *f.Brightness == 40
	}, logs)
	waitFor(t, 5*time.Second, "report of brightness 40", func() bool {
		r := reported()
		return r.Applied.Brightness != nil && *r.Applied.Brightness == 40
	}, logs)

	// 2. Through glowcast set.
	out, err := exec.Command(filepath.Join(binDir, "glowcast"), "set", "--agent", "http://"+addr, "--token-file", tok, "kitchen", "on=false").CombinedOutput()
	if err != nil {
		t.Fatalf("glowcast set: %v\n%s", err, out)
	}
	waitFor(t, 10*time.Second, "frame off", func() bool { return lastSettingsFrame(t, jsonl).State == "off" }, logs)
	waitFor(t, 5*time.Second, "report of off", func() bool {
		r := reported()
		return r.Applied.On != nil && !*r.Applied.On && *r.Applied.Brightness == 40
	}, logs)

	// 2b. Through an MQTT command as Home Assistant's light sends it
	// (command_on_template with brightness 153/255 → 60 %).
	e.watch.publish("glowcast/v1/kitchen/light/set", []byte(`{"on":true,"brightness":60}`), false)
	waitFor(t, 10*time.Second, "frame on at 60 %", func() bool {
		f := lastSettingsFrame(t, jsonl)
		return f.State == "fresh" && f.Brightness != nil && *f.Brightness == 60
	}, logs)
	e.watch.publish("glowcast/v1/kitchen/light/set", []byte(`{"on":false}`), false)
	waitFor(t, 10*time.Second, "frame off again", func() bool { return lastSettingsFrame(t, jsonl).State == "off" }, logs)
	waitFor(t, 5*time.Second, "report of off at 60 %", func() bool {
		r := reported()
		return r.Applied.On != nil && !*r.Applied.On && *r.Applied.Brightness == 60
	}, logs)

	// 3. Bad settings: a per-field error and nothing changes.
	v := reported().Version
	out, err = exec.Command(filepath.Join(binDir, "glowcast"), "set", "--agent", "http://"+addr, "--token-file", tok, "kitchen", "brightness=150", "on=true").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "brightness") {
		t.Errorf("glowcast set brightness=150: err %v, output %s; want a refusal naming brightness", err, out)
	}
	// A bad message on the wire reaches the device and is refused whole.
	e.watch.publish("glowcast/v1/kitchen/agent/settings", []byte(`{"version":`+strconv.FormatUint(v+1, 10)+`,"on":true,"unit":"K"}`), true)
	waitFor(t, 5*time.Second, "refusal reported", func() bool { return reported().Errors["unit"] != "" }, logs)
	if f := lastSettingsFrame(t, jsonl); f.State != "off" {
		t.Errorf("after a refused message the strip is %q, want off", f.State)
	}
	// Leave a valid retained message again (as the agent would).
	e.watch.publish("glowcast/v1/kitchen/agent/settings", []byte(`{"version":`+strconv.FormatUint(v+2, 10)+`,"on":false,"brightness":60}`), true)
	waitFor(t, 5*time.Second, "valid settings back", func() bool { r := reported(); return r.Version == v+2 && len(r.Errors) == 0 }, logs)

	// 4. The agent is SIGKILLed; a new one adopts the retained version.
	ag.kill()
	time.Sleep(500 * time.Millisecond)
	if f := lastSettingsFrame(t, jsonl); f.State != "off" || f.Brightness == nil || *f.Brightness != 60 {
		t.Errorf("after the agent's SIGKILL the strip is %q at %v, want off at 60 %%", f.State, f.Brightness)
	}
	ag2 := start(t, "glowcast-agent", e.agentArgs(agentState, "--api-token-file", tok)...)
	addr2 := agentHTTP(t, ag2)
	// The new agent shows the retained desired settings it adopted.
	waitFor(t, 10*time.Second, "the new agent to adopt the retained desired settings", func() bool {
		res, err := http.Get("http://" + addr2 + "/api/v1/devices/kitchen")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		var d struct {
			Desired protocol.Desired `json:"desired"`
		}
		return json.NewDecoder(res.Body).Decode(&d) == nil && d.Desired.Version == v+2 && d.Desired.On != nil && !*d.Desired.On
	}, logs)
	// Without the token the new agent refuses too, and nothing changes.
	if code := patch(t, addr2, "kitchen", "wrong-token", `{"on":true}`); code != http.StatusUnauthorized {
		t.Errorf("PATCH with a wrong token: %d, want 401", code)
	}
	if code := patch(t, addr2, "kitchen", "e2e-token", `{"brightness":25}`); code != 200 {
		t.Fatalf("PATCH on the new agent: %d", code)
	}
	waitFor(t, 10*time.Second, "report of v+3 at 25 %", func() bool {
		r := reported()
		return r.Version == v+3 && *r.Applied.Brightness == 25
	}, logs)

	// 5. The device restarts without any agent: it comes back off, at 25 %.
	ag2.kill()
	dev.stop(syscall.SIGTERM)
	dev.restart()
	waitFor(t, 10*time.Second, "restarted device off", func() bool {
		f := lastSettingsFrame(t, jsonl)
		return f.State == "off" && f.Brightness != nil && *f.Brightness == 25
	}, logs)
	if !strings.Contains(dev.logText(), "saved settings in force") {
		t.Errorf("the restarted device did not start from its saved settings:\n%s", dev.logText())
	}
}
