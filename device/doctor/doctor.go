// Package doctor checks that a Raspberry Pi is ready to run glowcastd and
// says, one line per check, what is wrong and how to fix it: SPI enabled
// and the spidev present, permissions, the core-clock setting for the Pi
// model, the configuration, the broker with the configured TLS and
// credentials, the agent's retained status, the system clock and the
// optional outdoor sensor.
//
// Every check reads the file system under Env.Root and calls the system
// through Env's functions, so tests run them against fake /proc, /dev and
// /boot trees. It only reads: it changes nothing on the machine.
package doctor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/glowcast/glowcast/device"
	"github.com/glowcast/glowcast/device/sensor"
	"github.com/glowcast/glowcast/internal/brokerconf"
	"github.com/glowcast/glowcast/internal/cliconf"
	"github.com/glowcast/glowcast/internal/instance"
	"github.com/glowcast/glowcast/mqttmsg"
	"github.com/glowcast/glowcast/protocol"
	"periph.io/x/conn/v3/i2c"
)

// Status is a check's verdict.
type Status int

// Verdicts, least to most severe. Only Fail blocks operation.
const (
	OK Status = iota
	Skip
	Warn
	Fail
)

func (s Status) String() string {
	switch s {
	case OK:
		return "ok"
	case Skip:
		return "skip"
	case Warn:
		return "warn"
	default:
		return "FAIL"
	}
}

// Result is one check's outcome.
type Result struct {
	// Check names the check: config, spi, permissions, core-clock,
	// certificate, broker, agent, clock, sensor.
	Check  string
	Status Status
	// Detail says what was found.
	Detail string
	// Fix says what to do; empty when nothing is to be done.
	Fix string
}

// access(2) modes; syscall has no names for them.
const (
	rOK = 4
	wOK = 2
	xOK = 1
)

// Env is the machine the checks look at.
type Env struct {
	// Root is where the file system starts ("/" on the Pi).
	Root string
	// Access reports whether the process may open path with mode
	// (rOK|wOK); path is already under Root.
	Access func(path string, mode uint32) error
	// ClockSynced reports whether the kernel clock is synchronised (NTP).
	ClockSynced func() (bool, error)
	// BrokerTimeout bounds the broker connection; AgentWait is how long
	// to wait for retained agent statuses after subscribing.
	BrokerTimeout time.Duration
	AgentWait     time.Duration
	// Running reports whether a daemon on this host holds the broker
	// identity (internal/instance); nil is never.
	Running func(broker, identity string) bool
	// Now is the wall clock, for certificate expiry; nil is time.Now.
	Now func() time.Time
	// OpenI2C opens an I²C bus for a BME280 sensor; nil uses periph's.
	OpenI2C func(name string) (i2c.BusCloser, error)
}

// System is the Env of the machine the program runs on.
func System() Env {
	return Env{
		Root:          "/",
		Access:        syscall.Access,
		ClockSynced:   kernelClockSynced,
		BrokerTimeout: 10 * time.Second,
		AgentWait:     time.Second,
		Running:       instance.Held,
		Now:           time.Now,
	}
}

// Input is what the checks are about.
type Input struct {
	// Config is the device configuration as loaded.
	Config device.Config
	// ConfigPath names the file it came from ("" when none was given).
	ConfigPath string
	// LoadErr is the error of loading that file, if any.
	LoadErr error
}

// Run performs every check in order. Checks that need something an
// earlier one found missing say so and are skipped.
func Run(ctx context.Context, in Input, env Env) []Result {
	if env.Root == "" {
		env.Root = "/"
	}
	rs := []Result{checkConfig(in)}
	spiPath, usesSPI := strings.CutPrefix(in.Config.LED, "spi:")
	rs = append(rs, checkSPI(env, usesSPI, spiPath))
	rs = append(rs, checkPermissions(env, in.Config, usesSPI, spiPath))
	rs = append(rs, checkCoreClock(env, usesSPI))
	rs = append(rs, checkCertificate(env, in))
	rs = append(rs, checkBroker(ctx, env, in)...)
	rs = append(rs, checkClock(env))
	rs = append(rs, checkSensor(ctx, env, in.Config))
	return rs
}

// ErrFailed is Main's error when a check failed.
var ErrFailed = errors.New("doctor: something blocks operation; fix the lines marked FAIL and run it again")

// Main runs `glowcastd doctor ARGS` on this machine: it loads the
// configuration the way the daemon does (-config FILE and flags), prints
// one line per check and returns ErrFailed when any failed.
func Main(ctx context.Context, args []string, out io.Writer) error {
	cfg := device.Default()
	fs := flag.NewFlagSet("glowcastd doctor", flag.ContinueOnError)
	fs.SetOutput(out)
	in := Input{ConfigPath: cliconf.ConfigArg(args)}
	if err := cliconf.Load(fs, args, &cfg, cfg.Bind); err != nil {
		if errors.Is(err, flag.ErrHelp) || fs.Parsed() {
			return err // a flag error: the usage is printed
		}
		// The file itself is broken: report it as the config check's
		// failure and go on with the checks that do not need it.
		in.LoadErr = err
	}
	env := System()
	if os.Getenv("CREDENTIALS_DIRECTORY") == "" {
		unitCredentials(env.Root, &cfg.MQTT)
	}
	in.Config = cfg
	if Write(out, Run(ctx, in, env)) {
		return ErrFailed
	}
	return nil
}

// The files the packaged unit hands over as credentials (LoadCredential=).
const (
	unitKeyFile      = "/etc/glowcast/mqtt.key"
	unitPasswordFile = "/etc/glowcast/mqtt-password"
)

// unitCredentials points the broker check at the files the unit would
// hand the daemon, so `sudo glowcastd doctor` tests the credentials the
// service will use. Settings given in the config win.
func unitCredentials(root string, c *brokerconf.Config) {
	nonEmpty := func(p string) bool {
		st, err := os.Stat(filepath.Join(root, p))
		return err == nil && st.Size() > 0
	}
	if c.CertFile != "" && c.KeyFile == "" && nonEmpty(unitKeyFile) {
		c.KeyFile = filepath.Join(root, unitKeyFile)
	}
	if c.Username != "" && c.PasswordFile == "" && nonEmpty(unitPasswordFile) {
		c.PasswordFile = filepath.Join(root, unitPasswordFile)
	}
}

// Write prints one line per result and reports whether any failed.
func Write(w io.Writer, rs []Result) (failed bool) {
	for _, r := range rs {
		line := fmt.Sprintf("%-4s  %-11s %s", r.Status, r.Check, r.Detail)
		if r.Fix != "" {
			line += " — fix: " + r.Fix
		}
		fmt.Fprintln(w, line)
		failed = failed || r.Status == Fail
	}
	return failed
}

func (e Env) path(p string) string { return filepath.Join(e.Root, p) }

func checkConfig(in Input) Result {
	r := Result{Check: "config"}
	file := in.ConfigPath
	fix := "edit " + file + ", or write a new one with glowcastd init"
	if file == "" {
		file = "(no -config file)"
		fix = "write one with glowcastd init, then pass -config FILE"
	}
	if in.LoadErr != nil {
		r.Status, r.Detail, r.Fix = Fail, in.LoadErr.Error(), fix
		return r
	}
	if err := in.Config.Validate(); err != nil {
		r.Status, r.Detail, r.Fix = Fail, file+": "+strings.ReplaceAll(err.Error(), "\n", "; "), fix
		return r
	}
	r.Detail = fmt.Sprintf("%s: device %q, broker %s", file, in.Config.DeviceID, in.Config.Broker)
	return r
}

// bootConfig finds the firmware's config.txt: /boot/firmware since
// Raspberry Pi OS bookworm, /boot before.
func bootConfig(env Env) (path string, kv map[string]string, dtparams map[string]string, err error) {
	for _, p := range []string{"/boot/firmware/config.txt", "/boot/config.txt"} {
		b, rerr := os.ReadFile(env.path(p))
		if rerr != nil {
			continue
		}
		kv, dtparams = parseConfigTxt(b)
		return p, kv, dtparams, nil
	}
	return "", nil, nil, errors.New("no /boot/firmware/config.txt or /boot/config.txt")
}

// parseConfigTxt reads key=value lines (the last one wins, as in the
// firmware) and the dtparam=a=b,c=d lists. Conditional sections ([pi4],
// ...) are read as if they all applied.
func parseConfigTxt(b []byte) (kv, dtparams map[string]string) {
	kv, dtparams = map[string]string{}, map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if k == "dtparam" {
			for _, p := range strings.Split(v, ",") {
				pk, pv, _ := strings.Cut(p, "=")
				dtparams[strings.TrimSpace(pk)] = strings.TrimSpace(pv)
			}
			continue
		}
		kv[k] = v
	}
	return kv, dtparams
}

const enableSPI = "sudo raspi-config nonint do_spi 0 (or add dtparam=spi=on to /boot/firmware/config.txt), then reboot"

func checkSPI(env Env, usesSPI bool, dev string) Result {
	r := Result{Check: "spi"}
	if !usesSPI {
		r.Status, r.Detail = Skip, "led is not spi:…; no SPI needed"
		return r
	}
	cfgPath, _, dt, cerr := bootConfig(env)
	on := cerr == nil && dt["spi"] == "on"
	_, err := os.Stat(env.path(dev))
	switch {
	case err == nil && on:
		r.Detail = dev + " present; dtparam=spi=on in " + cfgPath
	case err == nil:
		r.Detail = dev + " present (SPI enabled by an overlay)"
	case on:
		r.Status, r.Detail = Fail, fmt.Sprintf("%s missing though %s has dtparam=spi=on", dev, cfgPath)
		r.Fix = "reboot to apply it; if it stays missing check led (--led) names the right bus, e.g. spi:/dev/spidev0.0"
	default:
		r.Status, r.Detail, r.Fix = Fail, dev+" missing: SPI is not enabled", enableSPI
	}
	return r
}

func checkPermissions(env Env, cfg device.Config, usesSPI bool, dev string) Result {
	r := Result{Check: "permissions"}
	var ok []string
	if usesSPI {
		p := env.path(dev)
		if _, err := os.Stat(p); err == nil {
			if err := env.Access(p, rOK|wOK); err != nil {
				r.Status = Fail
				r.Detail = fmt.Sprintf("cannot open %s read-write: %v", dev, err)
				r.Fix = "run as the glowcast user (the service does), or add yours to group spi: sudo usermod -aG spi $USER, then log in again; without Raspberry Pi OS's udev rules add SUBSYSTEM==\"spidev\", GROUP=\"spi\", MODE=\"0660\""
				return r
			}
			ok = append(ok, dev+" read-write")
			// The service reaches the bus through group spi
			// (SupplementaryGroups=spi), whoever runs this check.
			if g, mode, err := groupOf(env, p); err == nil && (g != "spi" || mode&0o060 != 0o060) {
				r.Status = Fail
				r.Detail = fmt.Sprintf("%s is group %q mode %v; the service needs group spi read-write", dev, g, mode)
				r.Fix = "add /etc/udev/rules.d/90-spidev.rules with SUBSYSTEM==\"spidev\", GROUP=\"spi\", MODE=\"0660\" (Raspberry Pi OS ships it), then sudo udevadm trigger"
				return r
			}
		}
	}
	if cfg.StateDir != "" {
		p := env.path(cfg.StateDir)
		if _, err := os.Stat(p); err == nil {
			if err := env.Access(p, wOK|xOK); err != nil {
				r.Status = Fail
				r.Detail = fmt.Sprintf("state_dir %s is not writable: %v", cfg.StateDir, err)
				r.Fix = "run as the glowcast user (the service's StateDirectory= is its own), or choose a writable state_dir (--state-dir)"
				return r
			}
			ok = append(ok, "state_dir "+cfg.StateDir+" writable")
		}
	}
	if len(ok) == 0 {
		r.Status, r.Detail = Skip, "nothing to open"
		return r
	}
	r.Detail = strings.Join(ok, ", ")
	return r
}

// groupOf returns the name (from Root's /etc/group) of p's group and
// its permission bits.
func groupOf(env Env, p string) (string, os.FileMode, error) {
	st, err := os.Stat(p)
	if err != nil {
		return "", 0, err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return "", 0, errors.New("doctor: no owner information")
	}
	gid := fmt.Sprint(sys.Gid)
	b, _ := os.ReadFile(env.path("/etc/group"))
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 3 && f[2] == gid {
			return f[0], st.Mode().Perm(), nil
		}
	}
	return gid, st.Mode().Perm(), nil
}

// piModel reads the board name the firmware puts in the device tree.
func piModel(env Env) (string, bool) {
	b, err := os.ReadFile(env.path("/proc/device-tree/model"))
	if err != nil {
		return "", false
	}
	return strings.TrimRight(string(b), "\x00\n "), true
}

// The SPI clock of a Pi 1…4 is divided from the VPU core clock, which
// scales with load unless pinned; the NRZ symbols then stretch and the
// LEDs flicker or show wrong colours. A Pi 5's SPI sits on the RP1 with
// its own clock.
func checkCoreClock(env Env, usesSPI bool) Result {
	r := Result{Check: "core-clock"}
	if !usesSPI {
		r.Status, r.Detail = Skip, "led is not spi:…"
		return r
	}
	model, ok := piModel(env)
	if !ok {
		r.Status, r.Detail = Skip, "no /proc/device-tree/model: not a Raspberry Pi, the SPI clock is not checked"
		return r
	}
	if !strings.Contains(model, "Raspberry Pi") {
		r.Status, r.Detail = Warn, fmt.Sprintf("%s: not a Raspberry Pi; check that its SPI clock is stable at 2.5 MHz", model)
		return r
	}
	if strings.Contains(model, "Raspberry Pi 5") || strings.Contains(model, "Compute Module 5") || strings.Contains(model, "Raspberry Pi 500") {
		r.Detail = model + ": SPI has its own clock (RP1), no setting needed"
		return r
	}
	want := map[string]string{"core_freq": "250"}
	if strings.Contains(model, "Raspberry Pi 4") || strings.Contains(model, "Compute Module 4") || strings.Contains(model, "Raspberry Pi 400") {
		want = map[string]string{"core_freq": "500", "core_freq_min": "500"}
	}
	cfgPath, kv, _, err := bootConfig(env)
	if err != nil {
		r.Status, r.Detail = Fail, model+": "+err.Error()
		r.Fix = "mount the boot partition at /boot/firmware and add " + settings(want)
		return r
	}
	var missing []string
	for _, k := range []string{"core_freq", "core_freq_min"} {
		if v, ok := want[k]; ok && kv[k] != v {
			missing = append(missing, k+"="+v)
		}
	}
	if len(missing) > 0 {
		r.Status = Fail
		r.Detail = fmt.Sprintf("%s: the core clock is not pinned (%s); the LEDs will flicker or show wrong colours", model, cfgPath)
		r.Fix = "add " + strings.Join(missing, " and ") + " to " + cfgPath + ", then reboot"
		return r
	}
	r.Detail = fmt.Sprintf("%s: %s set in %s", model, settings(want), cfgPath)
	return r
}

func settings(m map[string]string) string {
	var s []string
	for _, k := range []string{"core_freq", "core_freq_min"} {
		if v, ok := m[k]; ok {
			s = append(s, k+"="+v)
		}
	}
	return strings.Join(s, " and ")
}

// CertWarning is how long before its client certificate expires the
// doctor warns: time to renew and install a new one.
const CertWarning = 30 * 24 * time.Hour

// checkCertificate reads the client certificate (mqtt.cert_file): the
// broker refuses it once expired, and the device goes dark for good.
func checkCertificate(env Env, in Input) Result {
	r := Result{Check: "certificate"}
	if in.LoadErr != nil {
		r.Status, r.Detail = Skip, "no usable configuration"
		return r
	}
	cert, err := in.Config.MQTT.ClientCert()
	switch {
	case err != nil:
		r.Status, r.Detail, r.Fix = Fail, err.Error(), "fix mqtt.cert_file (--mqtt-cert) in "+orNone(in.ConfigPath)
		return r
	case cert == nil:
		r.Status, r.Detail = Skip, "no client certificate (mqtt.cert_file)"
		return r
	}
	now := time.Now()
	if env.Now != nil {
		now = env.Now()
	}
	cn := cert.Subject.CommonName
	renew := fmt.Sprintf("on the CA's machine run glowcast-pki renew %s, copy the new mqtt.crt and mqtt.key to /etc/glowcast/, then sudo systemctl restart glowcastd", cn)
	left := cert.NotAfter.Sub(now)
	switch {
	case left <= 0:
		r.Status = Fail
		r.Detail = fmt.Sprintf("%s (%q) expired on %s: the broker refuses it", in.Config.MQTT.CertFile, cn, cert.NotAfter.UTC().Format(time.DateOnly))
		r.Fix = renew
	case left <= CertWarning:
		r.Status = Warn
		r.Detail = fmt.Sprintf("%s (%q) expires on %s, in %d days", in.Config.MQTT.CertFile, cn, cert.NotAfter.UTC().Format(time.DateOnly), int(left.Hours()/24))
		r.Fix = renew
	default:
		r.Detail = fmt.Sprintf("%s (%q) valid until %s", in.Config.MQTT.CertFile, cn, cert.NotAfter.UTC().Format(time.DateOnly))
	}
	return r
}

// checkBroker connects with the configured TLS and credentials and reads
// the agents' retained statuses, unless the daemon runs here.
func checkBroker(ctx context.Context, env Env, in Input) []Result {
	br := Result{Check: "broker"}
	ag := Result{Check: "agent"}
	if in.LoadErr != nil || in.Config.Broker == "" {
		br.Status, br.Detail = Skip, "no usable configuration"
		ag.Status, ag.Detail = Skip, "no broker connection"
		return []Result{br, ag}
	}
	cfg := in.Config
	// The shipped broker makes the user name the client id: connecting as
	// the running daemon's identity would push it off the broker (its will
	// fires, it reconnects and pushes us off in turn). Its connection is
	// the one to look at then.
	if id := cfg.MQTT.Identity(cfg.DeviceID); env.Running != nil && env.Running(cfg.Broker, id) {
		br.Status = Skip
		br.Detail = fmt.Sprintf("glowcastd with broker identity %q is running on this host; not connecting as %q too, which would push it off the broker (the broker allows one connection per identity)", id, id)
		br.Fix = "its connection state is in journalctl -u glowcastd; to test the broker from here, stop it first: sudo systemctl stop glowcastd"
		ag.Status, ag.Detail = Skip, "no broker connection of its own while glowcastd runs"
		return []Result{br, ag}
	}
	rec := &recorder{}
	opts := mqttmsg.Options{
		Broker:               cfg.Broker,
		ClientID:             "glowcastd-doctor-" + protocol.RandomID(),
		ConnectTimeout:       env.BrokerTimeout,
		MaxReconnectInterval: time.Second,
		// The report says what failed and why; the client's own log lines
		// would repeat it out of order.
		Logger: slog.New(slog.DiscardHandler),
	}
	if err := cfg.MQTT.Apply(cfg.Broker, &opts); err != nil {
		br.Status, br.Detail = Fail, err.Error()
		br.Fix = "fix the mqtt: section of " + orNone(in.ConfigPath)
		ag.Status, ag.Detail = Skip, "no broker connection"
		return []Result{br, ag}
	}
	mqttCfg := cfg.MQTT
	opts.OnConnectError = append(opts.OnConnectError, func(err error) { rec.connErr(err, mqttCfg.Explain(err)) })
	cl, err := mqttmsg.New(opts)
	if err != nil {
		br.Status, br.Detail, br.Fix = Fail, err.Error(), "fix broker (--broker) in "+orNone(in.ConfigPath)
		ag.Status, ag.Detail = Skip, "no broker connection"
		return []Result{br, ag}
	}
	var mu sync.Mutex
	agents := map[string]protocol.AgentStatus{}
	cl.Handle(protocol.AgentStatusFilter, func(m mqttmsg.Message) {
		s, err := protocol.ParseAgentStatus(m.Payload)
		if err != nil {
			return
		}
		mu.Lock()
		agents[m.Topic] = *s
		mu.Unlock()
	})
	cl.Connect()
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		cl.Close(cctx)
	}()
	if !waitUp(ctx, cl, rec, env.BrokerTimeout) {
		br.Status = Fail
		cerr, hint := rec.last()
		br.Detail = "cannot connect to " + cfg.Broker
		if cerr != nil {
			br.Detail += ": " + cerr.Error()
		} else {
			br.Detail += fmt.Sprintf(" within %v", env.BrokerTimeout)
		}
		br.Fix = hint
		if br.Fix == "" {
			br.Fix = "check the broker URL (--broker), that the broker runs (systemctl status mosquitto on the server) and that a firewall lets the port through"
		}
		ag.Status, ag.Detail = Skip, "no broker connection"
		return []Result{br, ag}
	}
	br.Detail = "connected to " + cfg.Broker
	if cfg.MQTT.Username != "" {
		br.Detail += " as " + cfg.MQTT.Username
	}
	// Retained statuses arrive right after the subscription; wait a
	// moment for them, or less once an online one is in.
	deadline := time.Now().Add(env.AgentWait)
	for time.Now().Before(deadline) {
		mu.Lock()
		online := anyOnline(agents)
		mu.Unlock()
		if online {
			break
		}
		select {
		case <-ctx.Done():
			deadline = time.Now()
		case <-time.After(20 * time.Millisecond):
		}
	}
	mu.Lock()
	defer mu.Unlock()
	switch {
	case anyOnline(agents):
		var ids []string
		for topic, s := range agents {
			if s.Online {
				id, _ := protocol.AgentOfStatusTopic(topic)
				ids = append(ids, id)
			}
		}
		ag.Detail = "agent online: " + strings.Join(ids, ", ")
	case len(agents) > 0:
		ag.Status, ag.Detail = Fail, "every agent's retained status says offline; no forecasts will come"
		ag.Fix = "start the agent on the server: sudo systemctl start glowcast-agent (journalctl -u glowcast-agent says why it stopped)"
	default:
		ag.Status, ag.Detail = Fail, "no agent status on this broker; no forecasts will come"
		ag.Fix = "start glowcast-agent with the same broker; if it runs, check the broker ACL lets this user read " + protocol.AgentStatusFilter
	}
	return []Result{br, ag}
}

// waitUp waits for the first connect, or until an attempt failed for a
// reason brokerconf could explain (TLS, credentials): those do not heal by
// retrying.
func waitUp(ctx context.Context, cl *mqttmsg.Client, rec *recorder, timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for cl.Ups() < 1 {
		if _, hint := rec.last(); hint != "" {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return false
		case <-tick.C:
		}
	}
	return true
}

func anyOnline(m map[string]protocol.AgentStatus) bool {
	for _, s := range m {
		if s.Online {
			return true
		}
	}
	return false
}

func orNone(p string) string {
	if p == "" {
		return "the configuration"
	}
	return p
}

// recorder keeps the last connection error and brokerconf's explanation
// of it.
type recorder struct {
	mu   sync.Mutex
	err  error
	hint string
}

func (r *recorder) connErr(err error, hint string) {
	r.mu.Lock()
	r.err, r.hint = err, hint
	r.mu.Unlock()
}

func (r *recorder) last() (error, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err, r.hint
}

func checkClock(env Env) Result {
	r := Result{Check: "clock"}
	ok, err := env.ClockSynced()
	switch {
	case err != nil:
		r.Status, r.Detail = Warn, "cannot read the clock state: "+err.Error()
	case ok:
		r.Detail = "synchronised"
	default:
		// A Pi has no battery clock: until NTP answers the time may be
		// days off, TLS certificates look invalid and the LEDs show the
		// wrong hours.
		r.Status, r.Detail = Fail, "not synchronised; TLS and the hour slots need the right time"
		r.Fix = "sudo timedatectl set-ntp true, and let the Pi reach an NTP server (timedatectl timesync-status)"
	}
	return r
}

// checkSensor takes one reading of the configured outdoor thermometer. A
// failing sensor is a warning: the daemon runs and the strip shows without
// it, only verification falls back to the provider's values.
func checkSensor(ctx context.Context, env Env, cfg device.Config) Result {
	r := Result{Check: "sensor"}
	spec, err := sensor.ParseSpec(cfg.Sensor)
	switch {
	case err != nil:
		r.Status, r.Detail = Skip, "the sensor setting is invalid (see config)"
		return r
	case spec.Kind == "":
		r.Status, r.Detail = Skip, "none configured (sensor, --sensor)"
		return r
	}
	fix := "see docs/HARDWARE.md (An outdoor sensor); the strip works without it, and readings resume by themselves once it reads"
	s, err := sensor.Opener{Root: env.Root, OpenI2C: env.OpenI2C}.Open(spec)
	if err != nil {
		r.Status, r.Detail, r.Fix = Warn, err.Error(), fix
		return r
	}
	defer s.Close()
	c, err := s.Read(ctx)
	if err == nil {
		_, err = protocol.EncodeSensor(c) // the bounds the agent applies
	}
	if err != nil {
		r.Status, r.Detail, r.Fix = Warn, err.Error(), fix
		return r
	}
	r.Detail = fmt.Sprintf("%s: %.1f °C", s, c)
	return r
}

// kernelClockSynced asks the kernel, as timedatectl's NTPSynchronized does.
func kernelClockSynced() (bool, error) {
	var tx syscall.Timex
	if _, err := syscall.Adjtimex(&tx); err != nil {
		return false, fmt.Errorf("doctor: adjtimex: %w", err)
	}
	const staUnsync = 0x0040
	return tx.Status&staUnsync == 0, nil
}
