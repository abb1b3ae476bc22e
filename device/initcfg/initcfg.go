// Package initcfg owns glowcastd's first run: `glowcastd init` writes a
// commented configuration file from a few questions or flags, and Explain
// turns an incomplete configuration into a message that says which
// settings are missing and how to set them.
//
// It only writes the file it is told to; it never touches a running
// service.
package initcfg

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/template"

	"github.com/glowcast/glowcast/device"
	"github.com/glowcast/glowcast/internal/atomicfile"
	"github.com/glowcast/glowcast/internal/cliconf"
)

// DefaultPath is where the packaged service reads its configuration.
const DefaultPath = "/etc/glowcast/glowcastd.yaml"

// UnitPasswordFile is the root-only file the packaged unit hands the
// daemon as the systemd credential mqtt-password (LoadCredential). The
// daemon runs as user glowcast and cannot read it itself, so a config
// naming it leaves password_file unset and the credential is used.
const UnitPasswordFile = "/etc/glowcast/mqtt-password"

// Answers are the settings a new device needs.
type Answers struct {
	DeviceID     string
	Broker       string
	Username     string
	PasswordFile string
	CAFile       string
	CertFile     string
	LED          string
	// Location is "LAT,LON" or empty.
	Location string
}

// Main runs `glowcastd init ARGS`: values not given as flags are asked on
// in (defaults in brackets; an empty line or end of input takes them), the
// file is checked like the daemon checks it and then written.
func Main(args []string, in io.Reader, out io.Writer) error {
	fs := flag.NewFlagSet("glowcastd init", flag.ContinueOnError)
	fs.SetOutput(out)
	var a Answers
	path := fs.String("config", DefaultPath, "`file` to write")
	force := fs.Bool("force", false, "replace an existing file")
	yes := fs.Bool("yes", false, "ask nothing: take flags and defaults")
	fs.StringVar(&a.DeviceID, "device-id", "", "this device's `ID` (default: the host name)")
	fs.StringVar(&a.Broker, "broker", "", "MQTT broker `URL`, e.g. mqtts://broker.example:8883")
	fs.StringVar(&a.Username, "mqtt-username", "", "MQTT `user` name (default: the device id, as the broker's ACL expects)")
	fs.StringVar(&a.PasswordFile, "mqtt-password-file", "", "`file` holding the MQTT password (credentials file)")
	fs.StringVar(&a.CAFile, "mqtt-ca", "", "CA certificate `file` for an mqtts:// broker (default: the system's roots)")
	fs.StringVar(&a.CertFile, "mqtt-cert", "", "client certificate `file` (the broker's default; the key comes from the unit's mqtt-key credential)")
	fs.StringVar(&a.LED, "led", "", "LED backend `SPEC` (default spi:/dev/spidev0.0)")
	fs.StringVar(&a.Location, "location", "", "optional location `LAT,LON` (default: the agent decides)")
	local := fs.Bool("local", false, "one machine runs Mosquitto, the agent and this device: also write the broker's and the agent's configuration, with a password for each")
	mosquittoDir := fs.String("mosquitto-dir", DefaultMosquittoDir, "with -local: Mosquitto's configuration `dir` (conf.d/glowcast.conf, glowcast.passwd, glowcast.acl)")
	if err := fs.Parse(args); err != nil {
		return cliconf.Usage(err)
	}
	if fs.NArg() > 0 {
		return cliconf.Usage(fmt.Errorf("initcfg: unexpected argument %q: give settings as flags (glowcastd init -h)", fs.Arg(0)))
	}
	if *local {
		var set []string
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "broker", "mqtt-username", "mqtt-password-file", "mqtt-ca", "mqtt-cert":
				set = append(set, "-"+f.Name)
			}
		})
		if len(set) > 0 {
			return cliconf.Usage(fmt.Errorf("initcfg: -local sets the broker and the credentials itself: leave out %s", strings.Join(set, ", ")))
		}
		return mainLocal(Local{DeviceConfig: *path, MosquittoDir: *mosquittoDir, Group: SystemGroup}, a, *force, asker{in: bufio.NewReader(in), out: out, quiet: *yes}, out)
	}
	if _, err := os.Stat(*path); err == nil && !*force {
		return fmt.Errorf("initcfg: %s exists: pass -force to replace it, or -config FILE to write elsewhere", *path)
	}
	q := asker{in: bufio.NewReader(in), out: out, quiet: *yes}
	host, _ := os.Hostname()
	a.DeviceID = q.ask("Device id (letters, digits, '.', '_', '-')", a.DeviceID, SanitizeID(host))
	a.Broker = q.ask("Broker URL (mqtts://host:8883 with TLS, tcp://host:1883 on a trusted network)", a.Broker, "")
	if a.Broker == "" {
		return errors.New("initcfg: no broker URL: pass -broker mqtts://HOST:8883 or answer the question")
	}
	a.Username = q.ask("MQTT user name (empty: none)", a.Username, a.DeviceID)
	if a.Username != "" {
		a.PasswordFile = q.ask("File holding the MQTT password (/etc/glowcast/mqtt-password is handed over by the unit; empty: none)", a.PasswordFile, "")
	}
	if u, err := url.Parse(a.Broker); err == nil && isTLS(u.Scheme) {
		a.CAFile = q.ask("CA certificate file (empty: the system's roots)", a.CAFile, existing("/etc/glowcast/ca.crt"))
		a.CertFile = q.ask("Client certificate file (empty: none; its key is /etc/glowcast/mqtt.key, handed over by the unit)", a.CertFile, existing("/etc/glowcast/mqtt.crt"))
	}
	a.LED = q.ask("LED backend", a.LED, "spi:/dev/spidev0.0")
	a.Location = q.ask("Location LAT,LON (empty: the agent decides)", a.Location, "")
	if filepath.Clean(a.PasswordFile) == UnitPasswordFile {
		fmt.Fprintf(out, "%s is handed over by the unit as the credential mqtt-password; password_file stays unset\n", UnitPasswordFile)
		a.PasswordFile = ""
	}
	b, err := Render(a)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(*path, b, 0o644); err != nil {
		return fmt.Errorf("initcfg: writing %s: %w (run with sudo for /etc/glowcast)", *path, err)
	}
	fmt.Fprintf(out, "wrote %s\nnext: sudo glowcastd doctor -config %s, then sudo systemctl enable --now glowcastd\n", *path, *path)
	return nil
}

// mainLocal asks what -local still needs (the device id, the strip, the
// place) and writes the one-machine set-up.
func mainLocal(l Local, a Answers, force bool, q asker, out io.Writer) error {
	host, _ := os.Hostname()
	a.DeviceID = q.ask("Device id (letters, digits, '.', '_', '-')", a.DeviceID, SanitizeID(host))
	a.LED = q.ask("LED backend", a.LED, "spi:/dev/spidev0.0")
	a.Location = q.ask("Location LAT,LON (empty: the agent's default)", a.Location, "")
	f, err := l.Write(a, force)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, `wrote %s (broker %s, user %s)
wrote %s (user %s)
wrote %s, %s and %s (Mosquitto: loopback only, a password for each)
next:
  sudo systemctl restart mosquitto
  sudo systemctl enable --now glowcast-agent glowcastd
`, f.DeviceConfig, LocalBroker, a.DeviceID, f.AgentConfig, AgentUser, f.MosquittoConf, f.MosquittoPasswd, f.ACL)
	return nil
}

// Render writes the commented configuration for a and checks it the way
// the daemon will read it.
func Render(a Answers) ([]byte, error) {
	v := struct {
		Answers
		Lat, Lon string
		TLS      bool
	}{Answers: a}
	if a.Location != "" {
		lat, lon, ok := strings.Cut(a.Location, ",")
		if !ok {
			return nil, fmt.Errorf("initcfg: location (-location) %q is not LAT,LON, e.g. 52.52,13.40", a.Location)
		}
		la, err1 := strconv.ParseFloat(strings.TrimSpace(lat), 64)
		lo, err2 := strconv.ParseFloat(strings.TrimSpace(lon), 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("initcfg: location (-location) %q is not LAT,LON in decimal degrees, e.g. 52.52,13.40", a.Location)
		}
		v.Lat, v.Lon = strconv.FormatFloat(la, 'f', -1, 64), strconv.FormatFloat(lo, 'f', -1, 64)
	}
	if u, err := url.Parse(a.Broker); err == nil {
		v.TLS = isTLS(u.Scheme)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, v); err != nil {
		return nil, fmt.Errorf("initcfg: %w", err)
	}
	cfg := device.Default()
	if err := cliconf.Decode("generated config", buf.Bytes(), &cfg); err != nil {
		return nil, fmt.Errorf("initcfg: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("initcfg: the answers do not make a working configuration:\n%w", err)
	}
	return buf.Bytes(), nil
}

// Explain turns a configuration that failed validation into a message for
// someone starting glowcastd for the first time: which settings are
// missing or wrong, and how to write them.
func Explain(cfg device.Config, path string, err error) error {
	var b strings.Builder
	if path == "" {
		b.WriteString("no configuration file given (-config FILE); these settings are missing or wrong:\n")
	} else {
		fmt.Fprintf(&b, "configuration %s: these settings are missing or wrong:\n", path)
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		b.WriteString("  - " + line + "\n")
	}
	if path == "" && cfg.Broker == device.Default().Broker {
		fmt.Fprintf(&b, "  - broker (--broker) is not set: the default %s only reaches a broker on this machine\n", cfg.Broker)
	}
	target := path
	if target == "" {
		target = DefaultPath
	}
	fmt.Fprintf(&b, "write a configuration with: sudo glowcastd init -config %s", target)
	if path != "" {
		b.WriteString(" -force")
	}
	fmt.Fprintf(&b, "\nthen run: glowcastd -config %s (glowcastd -h lists every flag)", target)
	return errors.New(b.String())
}

var badIDChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// SanitizeID makes a device id from a host name: invalid characters become
// '-', and it starts with a letter or digit.
func SanitizeID(s string) string {
	s = badIDChars.ReplaceAllString(s, "-")
	s = strings.TrimLeft(s, "._-")
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

// existing returns p when it exists: the default for a file the fleet's
// PKI script puts there.
func existing(p string) string {
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

func isTLS(scheme string) bool {
	switch scheme {
	case "ssl", "tls", "mqtts", "wss":
		return true
	}
	return false
}

// asker asks for values not given as flags.
type asker struct {
	in    *bufio.Reader
	out   io.Writer
	quiet bool
	eof   bool
}

func (q *asker) ask(prompt, given, def string) string {
	if given != "" {
		return given
	}
	if q.quiet || q.eof {
		return def
	}
	if def != "" {
		fmt.Fprintf(q.out, "%s [%s]: ", prompt, def)
	} else {
		fmt.Fprintf(q.out, "%s: ", prompt)
	}
	line, err := q.in.ReadString('\n')
	if err != nil {
		q.eof = true
		fmt.Fprintln(q.out)
	}
	if line = strings.TrimSpace(line); line != "" {
		return line
	}
	return def
}

var tmpl = template.Must(template.New("glowcastd.yaml").Funcs(template.FuncMap{"q": quote}).Parse(`# glowcastd configuration, written by glowcastd init.
# Flags override these settings (glowcastd -h lists them).

# This device's name on the broker: letters, digits, '.', '_', '-'.
device_id: {{q .DeviceID}}

# The MQTT broker the agent uses too.
broker: {{q .Broker}}

mqtt:
{{- if .Username}}
  # With the production broker a device's user name is its device id.
  username: {{q .Username}}
{{- else}}
  # username: {{q .DeviceID}}
{{- end}}
{{- if .PasswordFile}}
  # Read by the daemon itself, as user glowcast: make it readable by that
  # user only (chown root:glowcast, chmod 640).
  password_file: {{q .PasswordFile}}
{{- else}}
  # The password: under systemd, the unit hands /etc/glowcast/mqtt-password
  # (root-only, chmod 600) to the daemon as the credential mqtt-password
  # while password_file is unset. Set password_file only to a file the
  # glowcast user can read.
  # password_file: /etc/glowcast/glowcast-mqtt-password
{{- end}}
{{- if .CAFile}}
  ca_file: {{q .CAFile}}
{{- else if .TLS}}
  # ca_file: /etc/glowcast/ca.crt    # when the broker's CA is not a public one
{{- end}}
{{- if .CertFile}}
  # Client certificate; under systemd its key is the credential mqtt-key
  # (/etc/glowcast/mqtt.key).
  cert_file: {{q .CertFile}}
{{- else if .TLS}}
  # cert_file: /etc/glowcast/mqtt.crt  # client certificate (the broker's default)
{{- end}}

# The strip: spi:/dev/spidevB.C for WS2812 LEDs on the Pi's SPI MOSI pin
# (GPIO 10), term to draw in a terminal, none to show nothing.
led: {{q .LED}}
leds: 5

# Where the last temperatures are kept across restarts (the packaged unit's
# StateDirectory).
state_dir: /var/lib/glowcast

# Temperatures older than this are shown dimmed.
stale_after: 1h
{{if .Lat}}
# Where the forecast is for; without it the agent decides.
location:
  lat: {{.Lat}}
  lon: {{.Lon}}
{{else}}
# Where the forecast is for; without it the agent decides.
# location:
#   lat: 52.52
#   lon: 13.40
{{end}}
# debug, info, warn or error.
log_level: info
`))

// quote writes s as a YAML double-quoted scalar, so '#' and ':' in paths or
// URLs stay data.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}
