// Package doctor owns `glowcast-agent doctor`: it reads the configuration
// exactly as the agent does (flags, --config, systemd credentials) and
// checks, one line each, what the agent needs before it starts: the broker,
// its TLS and credentials, the ACL on the agent's own topics, the weather
// provider, geolocation and the state directory. It changes no retained
// state: its round trip is one non-retained message on a topic of its own.
package doctor

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/glowcast/glowcast/agent"
	"github.com/glowcast/glowcast/agent/weather"
	"github.com/glowcast/glowcast/internal/cliconf"
	"github.com/glowcast/glowcast/internal/instance"
	"github.com/glowcast/glowcast/mqttmsg"
	"github.com/glowcast/glowcast/protocol"
)

// Result is one check.
type Result struct {
	Check  string
	OK     bool
	Skip   bool
	Detail string
	// Fix says what to change when the check failed.
	Fix string
}

// Options tune the checks for tests.
type Options struct {
	Timeout time.Duration
	Getenv  func(string) string
	Now     func() time.Time
	// Running reports whether an agent on this host holds the broker
	// identity (internal/instance); nil is never.
	Running func(broker, identity string) bool
}

// Main runs `glowcast-agent doctor [agent flags]`; it returns an error when
// any check failed, so the process exits 1.
func Main(ctx context.Context, args []string, out io.Writer) error {
	cfg := agent.Default()
	fs := flag.NewFlagSet("glowcast-agent doctor", flag.ContinueOnError)
	if err := cliconf.Load(fs, args, &cfg, cfg.Bind); err != nil {
		return err
	}
	rs := Run(ctx, cfg, Options{Running: instance.Held})
	if Write(out, rs) {
		return errors.New("doctor: some checks failed; fix them and run glowcast-agent doctor again")
	}
	return nil
}

// Write prints rs, ✓ or ✗ per line with the fix under a failure; failed is
// true when any check failed.
func Write(w io.Writer, rs []Result) (failed bool) {
	for _, r := range rs {
		mark := "✓"
		switch {
		case r.Skip:
			mark = "-"
		case !r.OK:
			mark, failed = "✗", true
		}
		fmt.Fprintf(w, "%s %-10s %s\n", mark, r.Check, r.Detail)
		if !r.OK && !r.Skip && r.Fix != "" {
			fmt.Fprintf(w, "  fix: %s\n", r.Fix)
		}
	}
	return failed
}

// Run performs every check on cfg.
func Run(ctx context.Context, cfg agent.Config, o Options) []Result {
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	var rs []Result
	if err := cfg.Validate(); err != nil {
		rs = append(rs, Result{Check: "config", Detail: strings.ReplaceAll(err.Error(), "\n", "; "), Fix: "correct the named setting in the --config file or flag"})
	} else {
		rs = append(rs, Result{Check: "config", OK: true, Detail: "valid"})
	}
	rs = append(rs, checkBroker(ctx, cfg, o)...)
	rs = append(rs, checkWeather(ctx, cfg, o))
	rs = append(rs, checkGeo(ctx, cfg, o))
	rs = append(rs, checkStateDir(cfg))
	return rs
}

func checkBroker(ctx context.Context, cfg agent.Config, o Options) []Result {
	br := Result{Check: "broker"}
	acl := Result{Check: "acl"}
	skip := func() []Result {
		acl.Skip, acl.Detail = true, "no broker connection"
		return []Result{br, acl}
	}
	mo := mqttmsg.Options{Broker: cfg.Broker, Logger: slog.New(slog.DiscardHandler)}
	if err := cfg.MQTT.Apply(cfg.Broker, &mo); err != nil {
		br.Detail, br.Fix = err.Error(), "fix the mqtt: section of the --config file or the named credential"
		return skip()
	}
	// The shipped broker makes the user name the client id: connecting as
	// the running agent's identity would push it off the broker and flip
	// its retained status to offline for the whole fleet.
	if id := cfg.MQTT.Identity(""); id != "" && o.Running != nil && o.Running(cfg.Broker, id) {
		br.Skip = true
		br.Detail = fmt.Sprintf("glowcast-agent with broker identity %q is running on this host; not connecting as %q too, which would push it off the broker (the broker allows one connection per identity); its /healthz and journalctl -u glowcast-agent show its connection", id, id)
		acl.Skip, acl.Detail = true, "no broker connection of its own while the agent runs; stop it (sudo systemctl stop glowcast-agent) to test the ACL from here"
		return []Result{br, acl}
	}
	var connErr error
	po := mqtt.NewClientOptions().AddBroker(cfg.Broker).
		SetClientID("glowcast-agent-doctor-" + protocol.RandomID()).
		SetUsername(mo.Username).SetPassword(mo.Password).
		SetConnectTimeout(o.Timeout).SetAutoReconnect(false).SetCleanSession(true).
		SetConnectRetry(false)
	if mo.TLS != nil {
		po.SetTLSConfig(mo.TLS)
	}
	cl := mqtt.NewClient(po)
	tok := cl.Connect()
	if !tok.WaitTimeout(o.Timeout + time.Second) {
		connErr = fmt.Errorf("no answer within %v", o.Timeout)
	} else {
		connErr = tok.Error()
	}
	if connErr != nil {
		br.Detail = "cannot connect to " + cfg.Broker + ": " + connErr.Error()
		br.Fix = cfg.MQTT.Explain(connErr)
		if br.Fix == "" {
			br.Fix = "check broker (--broker), that the broker runs and that a firewall lets the port through"
		}
		return skip()
	}
	defer cl.Disconnect(250)
	br.OK = true
	br.Detail = "connected to " + cfg.Broker
	if mo.TLS != nil {
		br.Detail += ", TLS chain and server name verified"
	}
	if mo.Username != "" {
		br.Detail += ", credentials of " + mo.Username + " accepted"
	}

	// The agent's own subscriptions: a refusal here is a fleet that never
	// hears its devices.
	filters := map[string]byte{
		protocol.DeviceFilter(protocol.SideDevice): 1,
		protocol.AgentStatusFilter:                 1,
		protocol.OwnerFilter:                       1,
		protocol.SyncTopic(cfg.AgentID):            1,
	}
	probe := protocol.DoctorTopic(cfg.AgentID)
	got := make(chan []byte, 1)
	st := cl.Subscribe(probe, 1, func(_ mqtt.Client, m mqtt.Message) {
		select {
		case got <- m.Payload():
		default:
		}
	})
	sm := cl.SubscribeMultiple(filters, nil)
	if !st.WaitTimeout(o.Timeout) || !sm.WaitTimeout(o.Timeout) || st.Error() != nil || sm.Error() != nil {
		acl.Detail, acl.Fix = "the broker did not answer a subscribe", "check the broker's log for why it dropped the connection"
		return []Result{br, acl}
	}
	var refused []string
	codes := sm.(*mqtt.SubscribeToken).Result()
	for f, c := range st.(*mqtt.SubscribeToken).Result() {
		codes[f] = c
	}
	for f, c := range codes {
		if c == 0x80 {
			refused = append(refused, f)
		}
	}
	user := mo.Username
	if user == "" {
		user = "(anonymous)"
	}
	if len(refused) > 0 {
		acl.Detail = "SUBACK 0x80: the broker refused " + strings.Join(refused, ", ")
		acl.Fix = "grant user " + user + " `topic readwrite " + protocol.Prefix + "/#` in the broker's ACL (see configs/mosquitto/glowcast.acl) and reload the broker"
		return []Result{br, acl}
	}
	payload := []byte("doctor " + protocol.RandomID())
	pt := cl.Publish(probe, 1, false, payload)
	if !pt.WaitTimeout(o.Timeout) || pt.Error() != nil {
		acl.Detail, acl.Fix = "publish on "+probe+" failed", "grant user "+user+" write on "+protocol.Prefix+"/# in the broker's ACL"
		return []Result{br, acl}
	}
	select {
	case p := <-got:
		if string(p) == string(payload) {
			acl.OK, acl.Detail = true, "subscribe and publish round trip on the agent's topics as "+user
			return []Result{br, acl}
		}
	case <-time.After(o.Timeout):
	case <-ctx.Done():
	}
	acl.Detail = "a message published on " + probe + " never came back: the broker drops the agent's publishes"
	acl.Fix = "grant user " + user + " `topic readwrite " + protocol.Prefix + "/#` in the broker's ACL (see configs/mosquitto/glowcast.acl) and reload the broker"
	return []Result{br, acl}
}

func checkWeather(ctx context.Context, cfg agent.Config, o Options) Result {
	r := Result{Check: "weather"}
	weather.UserAgent = "glowcast/" + agent.Version
	p, err := weather.New(cfg.Weather, weather.Options{Getenv: o.Getenv, Now: o.Now, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		r.Detail, r.Fix = err.Error(), "set the named weather setting; glowcast forecast --location LAT,LON shows the provider's answer"
		return r
	}
	lat, lon := 59.9139, 10.7522
	if l, err := agent.ParseLocation(cfg.Location); err == nil && l != nil {
		lat, lon = l.Lat, l.Lon
	}
	cctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	f, err := p.Forecast(cctx, lat, lon)
	var se *weather.StatusError
	switch {
	case errors.As(err, &se) && se.Code == http.StatusTooManyRequests:
		r.Detail = err.Error()
		r.Fix = "the provider is rate-limiting this host"
		if d, ok := se.RetryDelay(o.Now()); ok {
			r.Fix += fmt.Sprintf(" (Retry-After %v)", d)
		}
		r.Fix += "; wait, raise --grid so devices share requests, or use a plan with a larger quota"
		return r
	case errors.As(err, &se) && (se.Code == http.StatusUnauthorized || se.Code == http.StatusForbidden):
		r.Detail = err.Error()
		if cfg.Weather.Provider == weather.NameMetNorway {
			r.Fix = "set weather.contact (--weather-contact) to a real e-mail address or URL"
		} else {
			r.Fix = "put a valid key in weather.key_file (--weather-key-file), the systemd credential " + weather.CredentialName + " or $" + weather.KeyEnv
		}
		return r
	case err != nil:
		r.Detail, r.Fix = err.Error(), "check this host's network and weather.url (--weather-url)"
		return r
	}
	v := f.At(o.Now().UTC().Truncate(time.Hour))
	r.OK = true
	r.Detail = fmt.Sprintf("%s answered for %.4f,%.4f", f.Provider, lat, lon)
	if !math.IsNaN(v) {
		r.Detail += fmt.Sprintf(": %.1f °C now", v)
	}
	return r
}

func checkGeo(ctx context.Context, cfg agent.Config, o Options) Result {
	r := Result{Check: "geo"}
	var urls []string
	for _, u := range []string{cfg.Geo.GeolocateURL, cfg.Geo.IPURL} {
		if u != "" {
			urls = append(urls, u)
		}
	}
	if len(urls) == 0 {
		r.Skip, r.Detail = true, "geolocation disabled"
		return r
	}
	c := &http.Client{Timeout: o.Timeout}
	for _, u := range urls {
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
		if err != nil {
			r.Detail, r.Fix = err.Error(), "fix geolocate_url / ip_geolocation_url in the config"
			return r
		}
		resp, err := c.Do(req)
		if err != nil {
			r.Detail = "cannot reach " + u + ": " + err.Error()
			r.Fix = "check this host's network, or set --geolocate-url and the ip_geolocation_url to empty to disable geolocation (give devices a location)"
			return r
		}
		resp.Body.Close()
	}
	r.OK, r.Detail = true, "reachable: "+strings.Join(urls, ", ")
	return r
}

func checkStateDir(cfg agent.Config) Result {
	r := Result{Check: "state dir"}
	if cfg.StateDir == "" {
		r.Detail = "no state directory: a restarted agent cannot resume and verification is off"
		r.Fix = "set state_dir (--state-dir), e.g. /var/lib/glowcast-agent (StateDirectory= in the unit)"
		return r
	}
	f, err := os.CreateTemp(cfg.StateDir, ".doctor-*")
	if err != nil {
		r.Detail = err.Error()
		r.Fix = "create " + cfg.StateDir + " and make it writable by the agent's user"
		return r
	}
	f.Close()
	os.Remove(f.Name())
	r.OK, r.Detail = true, filepath.Clean(cfg.StateDir)+" writable"
	return r
}
