package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glowcast/glowcast/device"
	"github.com/glowcast/glowcast/ledstrip"
	"github.com/glowcast/glowcast/test/kit/mqtttest"
)

// frameStrip records the device's frames.
type frameStrip struct {
	mu   sync.Mutex
	last ledstrip.Frame
}

func (s *frameStrip) Show(f ledstrip.Frame) error {
	s.mu.Lock()
	s.last = f
	s.mu.Unlock()
	return nil
}
func (s *frameStrip) Close() error { return nil }
func (s *frameStrip) frame() ledstrip.Frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

func apiDo(t *testing.T, method, url, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	var buf bytes.Buffer
	buf.ReadFrom(res.Body)
	json.Unmarshal(buf.Bytes(), &out)
	return res.StatusCode, out
}

func TestAPIChangesSettingsOnARealDevice(t *testing.T) {
	b := mqtttest.Start(t)
	tokFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokFile, []byte("s3cret\n"), 0o600)
	cfg := Default()
	cfg.Broker, cfg.AgentID, cfg.Location, cfg.HTTP, cfg.APITokenFile = b.URL(), "api", "1,1", "127.0.0.1:0", tokFile
	cfg.Weather.Provider = "sample"
	cfg.StateDir = t.TempDir()
	a, stop, _ := runAgent(t, cfg)
	waitUntil(t, 5*time.Second, "agent http", func() bool { return a.HTTPAddr() != "" })

	dcfg := device.Default()
	dcfg.Broker, dcfg.DeviceID, dcfg.StateDir = b.URL(), "shelf", t.TempDir()
	strip := &frameStrip{}
	dev, err := device.New(dcfg, strip, nil)
	if err != nil {
		t.Fatal(err)
	}
	dctx, dcancel := context.WithCancel(context.Background())
	ddone := make(chan error, 1)
	go func() { ddone <- dev.Run(dctx) }()
	defer func() { dcancel(); <-ddone }()

	base := "http://" + a.HTTPAddr() + "/api/v1/devices/shelf"
	waitUntil(t, 10*time.Second, "device known with a report", func() bool {
		code, d := apiDo(t, "GET", base, "", "")
		return code == 200 && d["reported"] != nil
	})

	if code, _ := apiDo(t, "PATCH", base+"/settings", "", `{"brightness":40}`); code != http.StatusUnauthorized {
		t.Errorf("PATCH without token: %d, want 401", code)
	}
	if code, _ := apiDo(t, "PATCH", base+"/settings", "wrong", `{"brightness":40}`); code != http.StatusUnauthorized {
		t.Errorf("PATCH with a wrong token: %d, want 401", code)
	}
	code, d := apiDo(t, "PATCH", base+"/settings", "s3cret", `{"brightness":40,"on":false}`)
	if code != 200 || d["version"] != 1.0 || d["brightness"] != 40.0 || d["on"] != false {
		t.Fatalf("PATCH: %d %v, want 200 with version 1", code, d)
	}
	waitUntil(t, 5*time.Second, "device off at 40 %", func() bool {
		f := strip.frame()
		return f.State == ledstrip.StateOff && f.BrightnessPercent() == 40
	})
	waitUntil(t, 5*time.Second, "reported version 1", func() bool {
		_, d := apiDo(t, "GET", base, "", "")
		r, _ := d["reported"].(map[string]any)
		return r != nil && r["version"] == 1.0
	})

	code, d = apiDo(t, "PATCH", base+"/settings", "s3cret", `{"brightness":101,"colour":"red"}`)
	fields, _ := d["fields"].(map[string]any)
	if code != http.StatusUnprocessableEntity || fields["brightness"] == nil || fields["colour"] == nil {
		t.Errorf("bad PATCH: %d %v, want 422 naming brightness and colour", code, d)
	}
	if code, _ := apiDo(t, "POST", base+"/rebirth", "s3cret", ""); code != http.StatusAccepted {
		t.Errorf("rebirth: %d, want 202", code)
	}
	if code, d := apiDo(t, "GET", "http://"+a.HTTPAddr()+"/api/v1/openapi.json", "", ""); code != 200 || d["openapi"] == nil {
		t.Errorf("openapi.json: %d", code)
	}

	// A new agent adopts the retained version: the next change is 2, and
	// this one is read-only.
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	cfg.APITokenFile = ""
	a2, _, _ := runAgent(t, cfg)
	waitUntil(t, 5*time.Second, "second agent http", func() bool { return a2.HTTPAddr() != "" })
	base2 := "http://" + a2.HTTPAddr() + "/api/v1/devices/shelf"
	waitUntil(t, 5*time.Second, "retained desired adopted", func() bool {
		_, d := apiDo(t, "GET", base2, "", "")
		des, _ := d["desired"].(map[string]any)
		return des != nil && des["version"] == 1.0
	})
	if code, _ := apiDo(t, "PATCH", base2+"/settings", "s3cret", `{"on":true}`); code != http.StatusForbidden {
		t.Errorf("PATCH on a read-only API: %d, want 403", code)
	}
	if f := strip.frame(); f.State != ledstrip.StateOff {
		t.Errorf("device state %q after a refused write, want off", f.State)
	}
}
