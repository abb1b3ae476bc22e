package securitytest

import (
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/glowcast/glowcast/internal/brokerconf"
	"github.com/glowcast/glowcast/mqttmsg"
	"github.com/glowcast/glowcast/protocol"
)

var authModes = []Auth{AuthCert, AuthPassword}

// users are the password-file entries of the test broker.
var users = map[string]string{AgentUser: "agent-secret", ObserverUser: "observer-secret", "kitchen": "kitchen-secret", "garden": "garden-secret",
	protocol.HomeAssistantUser: "homeassistant-secret"}

func topic(dev, side, name string) string { return protocol.DeviceTopic(dev, side, name) }

// TestDeviceCannotWriteOutsideItsTopics publishes, as device kitchen, to
// every topic it must not write, then to its own ready topic as a marker.
// The agent sees the marker; since one publisher's messages arrive in
// order, anything forbidden that got through would have arrived before it.
func TestDeviceCannotWriteOutsideItsTopics(t *testing.T) {
	for _, auth := range authModes {
		t.Run(auth.String(), func(t *testing.T) {
			b := StartBroker(t, auth, users)
			agent := b.mustConnect(t, AgentUser)
			r := newRecorder()
			if got := subscribe(t, agent, r, "glowcast/v1/#", "homeassistant/#"); got["glowcast/v1/#"] != 1 || got["homeassistant/#"] != 1 {
				t.Fatalf("agent subscription granted %v, want QoS 1 for both", got)
			}
			dev := b.mustConnect(t, "kitchen")
			forbidden := []string{
				topic("garden", protocol.SideDevice, protocol.MsgStatus),
				topic("garden", protocol.SideDevice, protocol.MsgReady),
				topic("garden", protocol.SideAgent, protocol.MsgTemps),
				topic("kitchen", protocol.SideAgent, protocol.MsgTemps),
				topic("kitchen", protocol.SideAgent, protocol.MsgRebirth),
				// Its own desired settings, another's, and their light commands.
				topic("kitchen", protocol.SideAgent, protocol.MsgSettings),
				topic("garden", protocol.SideAgent, protocol.MsgSettings),
				topic("garden", protocol.SideDevice, protocol.MsgSettings),
				topic("garden", protocol.SideDevice, protocol.MsgSensor),
				protocol.LightSetTopic("kitchen"),
				protocol.LightSetTopic("garden"),
				protocol.AgentStatusTopic("main"),
				"glowcast/v1/kitchen/owner",
				"glowcast/v1/kitchen",
				"homeassistant/sensor/kitchen/config",
			}
			for _, tp := range forbidden {
				publish(t, dev, tp, "forged", true)
			}
			marker := topic("kitchen", protocol.SideDevice, protocol.MsgReady)
			publish(t, dev, marker, "marker", false)
			r.waitFor(t, marker, "marker")
			for _, tp := range forbidden {
				if got := r.messages(tp); len(got) != 0 {
					t.Errorf("device kitchen wrote %s: agent got %q, want nothing", tp, got)
				}
			}
			// Retained forgeries would reach later subscribers too.
			late := newRecorder()
			subscribe(t, b.mustConnect(t, AgentUser), late, "glowcast/v1/#", "homeassistant/#")
			publish(t, dev, marker, "marker2", false)
			late.waitFor(t, marker, "marker2")
			for _, tp := range forbidden {
				if got := late.messages(tp); len(got) != 0 {
					t.Errorf("retained %s after device kitchen wrote it: got %q, want nothing", tp, got)
				}
			}
		})
	}
}

// TestSensorTopicPerDevice: the agent's ACL grants it every device's
// sensor topic; device kitchen publishes its own reading (QoS 0, as the
// daemon does) and cannot publish garden's.
func TestSensorTopicPerDevice(t *testing.T) {
	for _, auth := range authModes {
		t.Run(auth.String(), func(t *testing.T) {
			b := StartBroker(t, auth, users)
			filter := topic("+", protocol.SideDevice, protocol.MsgSensor)
			r := newRecorder()
			if got := subscribe(t, b.mustConnect(t, AgentUser), r, filter); got[filter] != 1 {
				t.Fatalf("agent subscription to %s granted %#x, want 1", filter, got[filter])
			}
			dev := b.mustConnect(t, "kitchen")
			forged, own := topic("garden", protocol.SideDevice, protocol.MsgSensor), topic("kitchen", protocol.SideDevice, protocol.MsgSensor)
			for _, m := range []struct{ topic, payload string }{{forged, `{"temp_c":-40}`}, {own, `{"temp_c":12.3}`}} {
				if tok := dev.Publish(m.topic, 0, false, m.payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
					t.Fatalf("publish %s: %v", m.topic, tok.Error())
				}
			}
			// One publisher's messages arrive in order: the forgery would
			// have come before kitchen's own reading.
			r.waitFor(t, own, `{"temp_c":12.3}`)
			if got := r.messages(forged); len(got) != 0 {
				t.Errorf("device kitchen wrote %s: agent got %q, want nothing", forged, got)
			}
		})
	}
}

// TestDeviceReadsOnlyItsOwnTopics: device kitchen subscribes as widely as
// it can; it gets its own temps and the agent's status, never garden's.
func TestDeviceReadsOnlyItsOwnTopics(t *testing.T) {
	for _, auth := range authModes {
		t.Run(auth.String(), func(t *testing.T) {
			b := StartBroker(t, auth, users)
			agent := b.mustConnect(t, AgentUser)
			// Retained before the device subscribes, and live after.
			publish(t, agent, topic("garden", protocol.SideAgent, protocol.MsgTemps), "garden-retained", true)
			publish(t, agent, topic("garden", protocol.SideAgent, protocol.MsgSettings), "garden-settings", true)
			publish(t, agent, topic("kitchen", protocol.SideAgent, protocol.MsgSettings), "kitchen-settings", true)
			publish(t, agent, topic("garden", protocol.SideDevice, protocol.MsgStatus), "garden-status", true)
			publish(t, agent, protocol.AgentStatusTopic("main"), "agent-online", true)

			dev := b.mustConnect(t, "kitchen")
			r := newRecorder()
			granted := subscribe(t, dev, r,
				"glowcast/v1/#", "glowcast/v1/+/agent/#", "glowcast/v1/garden/agent/temps",
				topic("kitchen", protocol.SideAgent, "+"), "glowcast/v1/agent/+/status")
			// Mosquitto grants any subscription and checks read access per
			// message, so what counts is what arrives.
			for _, f := range []string{topic("kitchen", protocol.SideAgent, "+"), "glowcast/v1/agent/+/status"} {
				if got := granted[f]; got != 1 {
					t.Errorf("subscription to %s granted %#x, want 1", f, got)
				}
			}
			r.waitFor(t, protocol.AgentStatusTopic("main"), "agent-online")
			// Its own desired settings, retained, reach it.
			r.waitFor(t, topic("kitchen", protocol.SideAgent, protocol.MsgSettings), "kitchen-settings")

			publish(t, agent, topic("garden", protocol.SideAgent, protocol.MsgTemps), "garden-live", false)
			own := topic("kitchen", protocol.SideAgent, protocol.MsgTemps)
			publish(t, agent, own, "kitchen-live", false)
			r.waitFor(t, own, "kitchen-live")
			for _, tp := range []string{topic("garden", protocol.SideAgent, protocol.MsgTemps), topic("garden", protocol.SideDevice, protocol.MsgStatus), topic("garden", protocol.SideAgent, protocol.MsgSettings)} {
				if got := r.messages(tp); len(got) != 0 {
					t.Errorf("device kitchen read %s: got %q, want nothing", tp, got)
				}
			}
		})
	}
}

// TestRefusedClients: nobody without valid credentials gets in.
func TestRefusedClients(t *testing.T) {
	type attempt struct{ name, user, pass, cert, key string }
	for _, auth := range authModes {
		t.Run(auth.String(), func(t *testing.T) {
			b := StartBroker(t, auth, users)
			good := b.identity(t, "kitchen")
			other := NewCA(t, t.TempDir(), "stranger-ca")
			strangerCert, strangerKey := other.Issue(t, "kitchen", "stranger")
			cases := []attempt{
				{name: "anonymous"},
				{name: "certificate from another CA", user: "kitchen", cert: strangerCert, key: strangerKey},
			}
			if auth == AuthCert {
				expCert, expKey := b.CA.Issue(t, "kitchen", "expired", Expired())
				revCert, revKey := b.CA.Issue(t, "garden", "revoked")
				b.CA.Revoke(t, revCert)
				b.Restart() // Mosquitto reads the revocation list at start
				cases = append(cases,
					attempt{name: "expired certificate", user: "kitchen", cert: expCert, key: expKey},
					attempt{name: "revoked certificate", user: "garden", cert: revCert, key: revKey},
					attempt{name: "password without certificate", user: "kitchen", pass: users["kitchen"]},
				)
			} else {
				cases = append(cases,
					attempt{name: "wrong password", user: "kitchen", pass: users["garden"]},
					attempt{name: "unknown user", user: "cellar", pass: "cellar-secret"},
					attempt{name: "user without password", user: "kitchen"},
				)
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					if err := rawConnect(b, tc.user, tc.pass, tc.cert, tc.key); err == nil {
						t.Errorf("connect with %s: accepted, want refused", tc.name)
					}
				})
			}
			// The same broker still lets the right credentials in.
			if _, err := b.connect(t, good, "test-good", nil); err != nil {
				t.Errorf("valid credentials refused: %v\n%s", err, b.Log())
			}
		})
	}
}

// TestPlainTCPIsRefused: the listener speaks TLS only.
func TestPlainTCPIsRefused(t *testing.T) {
	b := StartBroker(t, AuthPassword, users)
	if err := rawConnectPlain(b.Addr(), "kitchen", users["kitchen"]); err == nil {
		t.Errorf("plain MQTT on the TLS listener was accepted, want refused")
	}
}

// TestLastWillUnderACL: a device's will on its own status topic reaches the
// agent; a will forged onto another device's status does not.
func TestLastWillUnderACL(t *testing.T) {
	for _, auth := range authModes {
		t.Run(auth.String(), func(t *testing.T) {
			b := StartBroker(t, auth, users)
			r := newRecorder()
			subscribe(t, b.mustConnect(t, AgentUser), r, "glowcast/v1/#")
			own := topic("kitchen", protocol.SideDevice, protocol.MsgStatus)
			forged := topic("garden", protocol.SideDevice, protocol.MsgStatus)
			cfg := b.identity(t, "kitchen")
			for _, w := range []*will{{forged, "forged-will"}, {own, "kitchen-offline"}} {
				conn := tlsDial(t, b, cfg)
				if err := writeConnect(conn, "kitchen", b.passwords["kitchen"], b.Auth, w); err != nil {
					t.Fatal(err)
				}
				if rc := readConnack(t, conn); rc != packets.Accepted && w.topic == own {
					t.Fatalf("device connect with its own will: CONNACK %d, want accepted", rc)
				}
				conn.Close() // gone without DISCONNECT: the broker sends the will
			}
			r.waitFor(t, own, "kitchen-offline")
			if got := r.messages(forged); len(got) != 0 {
				t.Errorf("a will on garden's status from kitchen reached the agent: %q, want nothing", got)
			}
		})
	}
}

// TestAgentMayServeEveryDevice: the agent writes temps to any device and
// Home Assistant discovery, and reads every device's topics.
func TestAgentMayServeEveryDevice(t *testing.T) {
	for _, auth := range authModes {
		t.Run(auth.String(), func(t *testing.T) {
			b := StartBroker(t, auth, users)
			agent := b.mustConnect(t, AgentUser)
			ar := newRecorder()
			subscribe(t, agent, ar, "glowcast/v1/+/device/#", "homeassistant/#")
			dr := newRecorder()
			subscribe(t, b.mustConnect(t, "garden"), dr, topic("garden", protocol.SideAgent, "+"))
			publish(t, agent, topic("garden", protocol.SideAgent, protocol.MsgTemps), "t", false)
			dr.waitFor(t, topic("garden", protocol.SideAgent, protocol.MsgTemps), "t")
			publish(t, agent, "homeassistant/sensor/garden/config", "{}", true)
			ar.waitFor(t, "homeassistant/sensor/garden/config", "{}")
			publish(t, agent, "glowcast/v1/garden/owner", "main", true)
			publish(t, b.mustConnect(t, "kitchen"), topic("kitchen", protocol.SideDevice, protocol.MsgReady), "r", false)
			ar.waitFor(t, topic("kitchen", protocol.SideDevice, protocol.MsgReady), "r")
		})
	}
}

// rawConnect tries one connection with exactly these credentials (no
// checks by brokerconf, which would refuse some of them first).
func rawConnect(b *Broker, user, pass, cert, key string) error {
	tc := &tls.Config{RootCAs: b.CA.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return err
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", b.Addr(), tc)
	if err != nil {
		return err
	}
	defer conn.Close()
	return connectAndCheck(conn, user, pass)
}

func rawConnectPlain(addr, user, pass string) error {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	return connectAndCheck(conn, user, pass)
}

func connectAndCheck(conn net.Conn, user, pass string) error {
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	cp := packets.NewControlPacket(packets.Connect).(*packets.ConnectPacket)
	cp.ProtocolName, cp.ProtocolVersion, cp.CleanSession, cp.Keepalive = "MQTT", 4, true, 30
	cp.ClientIdentifier = "test-raw"
	if user != "" {
		cp.UsernameFlag, cp.Username = true, user
	}
	if pass != "" {
		cp.PasswordFlag, cp.Password = true, []byte(pass)
	}
	if err := cp.Write(conn); err != nil {
		return err
	}
	p, err := packets.ReadPacket(conn)
	if err != nil {
		return err
	}
	ca, ok := p.(*packets.ConnackPacket)
	if !ok {
		return errUnexpected
	}
	if ca.ReturnCode != packets.Accepted {
		return packets.ConnErrors[ca.ReturnCode]
	}
	return nil
}

var errUnexpected = errors.New("broker answered CONNECT with something other than CONNACK")

// tlsDial opens a TLS connection with cfg's files, as the programs would.
func tlsDial(t *testing.T, b *Broker, cfg brokerconf.Config) net.Conn {
	t.Helper()
	var o mqttmsg.Options
	if err := cfg.Apply(b.URL(), &o); err != nil {
		t.Fatal(err)
	}
	tc := o.TLS.Clone()
	tc.ServerName = "localhost"
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", b.Addr(), tc)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// writeConnect sends a CONNECT with a retained QoS 1 will.
func writeConnect(conn net.Conn, user, pass string, auth Auth, w *will) error {
	cp := packets.NewControlPacket(packets.Connect).(*packets.ConnectPacket)
	cp.ProtocolName, cp.ProtocolVersion, cp.CleanSession, cp.Keepalive = "MQTT", 4, true, 30
	cp.ClientIdentifier = "test-will-" + user
	cp.UsernameFlag, cp.Username = true, user
	if auth == AuthPassword {
		cp.PasswordFlag, cp.Password = true, []byte(pass)
	}
	cp.WillFlag, cp.WillTopic, cp.WillMessage, cp.WillQos, cp.WillRetain = true, w.topic, []byte(w.payload), 1, true
	return cp.Write(conn)
}

// readConnack returns the CONNACK's return code, or 0xff when the broker
// closed the connection instead.
func readConnack(t *testing.T, conn net.Conn) byte {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	p, err := packets.ReadPacket(conn)
	conn.SetReadDeadline(time.Time{})
	if err != nil {
		return 0xff
	}
	ca, ok := p.(*packets.ConnackPacket)
	if !ok {
		t.Fatalf("got %T, want CONNACK", p)
	}
	return ca.ReturnCode
}
