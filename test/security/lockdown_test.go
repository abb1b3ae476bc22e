package securitytest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/glowcast/glowcast/protocol"
	"github.com/glowcast/glowcast/test/kit/mqtttest"
	"github.com/glowcast/glowcast/test/kit/weathertest"
)

// proc is one of our binaries running as its own process.
type proc struct {
	t      *testing.T
	name   string
	args   []string
	env    []string
	log    string
	offset int64
	cmd    *exec.Cmd
	done   chan struct{}
}

func startProc(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, args: args, env: env, log: filepath.Join(t.TempDir(), name+".log")}
	p.start()
	t.Cleanup(func() { p.stop(syscall.SIGTERM) })
	return p
}

func (p *proc) start() {
	p.t.Helper()
	lf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	if fi, err := lf.Stat(); err == nil {
		p.offset = fi.Size()
	}
	p.cmd = exec.Command(filepath.Join(binDir, p.name), p.args...)
	p.cmd.Env = append(os.Environ(), p.env...)
	p.cmd.Stdout, p.cmd.Stderr = lf, lf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.done = make(chan struct{})
	go func() { p.cmd.Wait(); lf.Close(); close(p.done) }()
}

func (p *proc) stop(sig syscall.Signal) {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		p.t.Errorf("%s did not stop within 10s of %v", p.name, sig)
	}
	p.cmd = nil
}

// allLogs is the whole log file, every run included.
func (p *proc) allLogs() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// tempsWatch records, as the agent user, when temps reach a device.
type tempsWatch struct {
	mu    sync.Mutex
	times []time.Time
}

func (w *tempsWatch) handle(_ mqtt.Client, m mqtt.Message) {
	if m.Retained() {
		return
	}
	w.mu.Lock()
	w.times = append(w.times, time.Now())
	w.mu.Unlock()
}

func (w *tempsWatch) all() []time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Time(nil), w.times...)
}

// lastState is the state of the last frame in the device's jsonl strip.
func lastState(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	state := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var fr struct {
			State string `json:"state"`
		}
		if err := json.Unmarshal(sc.Bytes(), &fr); err != nil {
			t.Fatalf("jsonl line %q: %v", sc.Text(), err)
		}
		state = fr.State
	}
	return state
}

// TestMigrationLockedDown runs the real agent and device against the
// production broker config and ACL, with secrets handed over as the
// systemd units do, kills the agent with SIGKILL and restarts it: the
// device keeps getting temps within an interval, and nothing secret shows
// in either log.
func TestMigrationLockedDown(t *testing.T) {
	const interval = 2 * time.Second
	for _, auth := range authModes {
		t.Run(auth.String(), func(t *testing.T) {
			b := StartBroker(t, auth, users)
			weather := weathertest.New()
			t.Cleanup(weather.Close)
			dir := t.TempDir()

			// The agent gets its secret (key or password) the way the unit
			// hands it over: in $CREDENTIALS_DIRECTORY.
			creds := filepath.Join(dir, "credentials")
			os.Mkdir(creds, 0o700)
			agentYAML := fmt.Sprintf("broker: %s\nagent_id: main\nmqtt:\n  username: %s\n  ca_file: %s\n", b.URL(), AgentUser, b.Files.CA)
			deviceMQTT := fmt.Sprintf("mqtt:\n  username: kitchen\n  ca_file: %s\n", b.Files.CA)
			if auth == AuthCert {
				cert, key := b.CA.Issue(t, AgentUser, "agent")
				kb, _ := os.ReadFile(key)
				os.WriteFile(filepath.Join(creds, "mqtt-key"), kb, 0o400)
				agentYAML += "  cert_file: " + cert + "\n"
				dcert, dkey := b.CA.Issue(t, "kitchen", "kitchen")
				deviceMQTT += "  cert_file: " + dcert + "\n  key_file: " + dkey + "\n"
			} else {
				os.WriteFile(filepath.Join(creds, "mqtt-password"), []byte(users[AgentUser]+"\n"), 0o400)
				pf := filepath.Join(dir, "kitchen-password")
				os.WriteFile(pf, []byte(users["kitchen"]), 0o400)
				deviceMQTT += "  password_file: " + pf + "\n"
			}
			agentConf, deviceConf := filepath.Join(dir, "agent.yaml"), filepath.Join(dir, "glowcastd.yaml")
			os.WriteFile(agentConf, []byte(agentYAML), 0o644)
			jsonl := filepath.Join(dir, "strip.jsonl")
			os.WriteFile(deviceConf, []byte(fmt.Sprintf("broker: %s\ndevice_id: kitchen\nled: jsonl:%s\nstate_dir: %s\n%s",
				b.URL(), jsonl, filepath.Join(dir, "device"), deviceMQTT)), 0o644)

			watch := &tempsWatch{}
			wc := b.mustConnect(t, ObserverUser)
			subscribe(t, wc, newRecorder(), "glowcast/v1/+/device/status")
			if tok := wc.Subscribe(topic("kitchen", protocol.SideAgent, protocol.MsgTemps), 1, watch.handle); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Fatalf("subscribe: %v", tok.Error())
			}

			ag := startProc(t, "glowcast-agent", []string{"CREDENTIALS_DIRECTORY=" + creds},
				"-config", agentConf, "--weather", "open-meteo", "--weather-url", weather.URL,
				"--location", "52.52,13.40", "--interval", interval.String(), "--restart-grace", "60s",
				"--state-dir", filepath.Join(dir, "agent"), "--log-level", "debug")
			dev := startProc(t, "glowcastd", []string{"CREDENTIALS_DIRECTORY="}, "-config", deviceConf, "--log-level", "debug")
			logs := func() string { return ag.allLogs() + "\n---\n" + dev.allLogs() + "\n---\n" + b.Log() }

			mqtttest.WaitFor(t, 15*time.Second, "two temps cycles for kitchen", func() bool { return len(watch.all()) >= 2 })
			mqtttest.WaitFor(t, 5*time.Second, "fresh temps on the strip", func() bool { return lastState(t, jsonl) == "fresh" })

			for round := range 2 {
				before := watch.all()
				last := before[len(before)-1]
				ag.stop(syscall.SIGKILL)
				ag.start()
				mqtttest.WaitFor(t, 2*interval+3*time.Second, "temps after the agent was killed and restarted", func() bool { return len(watch.all()) > len(before) })
				// The restart grace is 60s: only the fast resume, which
				// works through the locked-down topics, comes this soon.
				if gap := watch.all()[len(before)].Sub(last); gap > interval+1500*time.Millisecond {
					t.Errorf("round %d: next temps %v after the last, want within %v plus ~1s\n%s", round, gap, interval, logs())
				}
			}
			if got := lastState(t, jsonl); got != "fresh" {
				t.Errorf("device state after the migrations: got %q, want fresh", got)
			}
			out := logs()
			for _, secret := range users {
				if strings.Contains(ag.allLogs()+dev.allLogs(), secret) {
					t.Errorf("a password appears in the programs' logs")
				}
			}
			for _, bad := range []string{"broker refused subscription", "connecting to the broker failed"} {
				if strings.Contains(ag.allLogs()+dev.allLogs(), bad) {
					t.Errorf("logs say %q under the production ACL:\n%s", bad, out)
				}
			}
		})
	}
}
