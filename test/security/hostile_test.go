package security

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/glowcast/glowcast/protocol"
)

// The hostile-device suite: an attacker holds one device's valid
// credentials (kitchen's) and tries each probe of docs/SECURITY.md against
// the shipped glowcast.conf and glowcast.acl.

// TestClientIDTakeover: kitchen connects with the client id of another
// device and of the agent. The broker makes the user name the client id,
// so neither victim is pushed off and neither will fires.
func TestClientIDTakeover(t *testing.T) {
	gardenStatus := topic("garden", protocol.SideDevice, protocol.MsgStatus)
	agentStatus := protocol.AgentStatusTopic("main")
	marker := topic("kitchen", protocol.SideDevice, protocol.MsgReady)
	victims := []struct {
		name, user, clientID, willTopic string
		observer                        string // who may read willTopic
	}{
		{"device", "garden", "glowcastd-garden", gardenStatus, AgentUser},
		// The agent's client id is readable by devices (its status carries
		// the session); guessing is not needed.
		{"agent", AgentUser, "glowcast-agent-main-0123456789abcdef", agentStatus, "garden"},
	}
	for _, auth := range authModes {
		for _, v := range victims {
			t.Run(auth.String()+"/"+v.name, func(t *testing.T) {
				b := StartBroker(t, auth, users)
				obs := newRecorder()
				subscribe(t, b.mustConnect(t, v.observer), obs, v.willTopic)
				victim, err := b.connect(t, b.identity(t, v.user), v.clientID, &will{v.willTopic, "offline"})
				if err != nil {
					t.Fatal(err)
				}
				vr := newRecorder()
				if v.user == AgentUser {
					subscribe(t, victim, vr, marker)
				} else {
					subscribe(t, victim, vr, topic("garden", protocol.SideAgent, "+"))
				}
				for i := range 3 {
					attacker, err := b.connect(t, b.identity(t, "kitchen"), v.clientID, nil)
					if err != nil {
						t.Fatalf("attacker connect: %v", err)
					}
					publish(t, attacker, marker, fmt.Sprint("marker", i), false)
					attacker.Disconnect(100)
				}
				// The victim still hears its own topics.
				if v.user == AgentUser {
					vr.waitFor(t, marker, "marker2")
				} else {
					publish(t, b.mustConnect(t, AgentUser), topic("garden", protocol.SideAgent, protocol.MsgTemps), "t", false)
					vr.waitFor(t, topic("garden", protocol.SideAgent, protocol.MsgTemps), "t")
				}
				if !victim.IsConnectionOpen() {
					t.Errorf("%s was pushed off the broker by a device using its client id", v.name)
				}
				if got := obs.messages(v.willTopic); len(got) != 0 {
					t.Errorf("%s's will fired (%q) when a device took its client id, want nothing", v.name, got)
				}
			})
		}
	}
}

// TestRetainedFlood: a device writing retained messages on invented topics
// under its own id stores nothing; its own topics still work.
func TestRetainedFlood(t *testing.T) {
	b := StartBroker(t, AuthCert, users)
	dev := b.mustConnect(t, "kitchen")
	big := strings.Repeat("x", 60*1024)
	var invented []string
	for i := range 50 {
		tp := topic("kitchen", protocol.SideDevice, fmt.Sprintf("junk%d", i))
		invented = append(invented, tp)
		publish(t, dev, tp, big, true)
	}
	for _, tp := range []string{"glowcast/v1/kitchen/device/status/x", "glowcast/v1/kitchen/device"} {
		invented = append(invented, tp)
		publish(t, dev, tp, big, true)
	}
	own := topic("kitchen", protocol.SideDevice, protocol.MsgReady)
	publish(t, dev, own, "own", true)
	late := newRecorder()
	subscribe(t, b.mustConnect(t, AgentUser), late, "glowcast/v1/#")
	late.waitFor(t, own, "own")
	for _, tp := range invented {
		if got := late.messages(tp); len(got) != 0 {
			t.Errorf("retained %s stored for a device: %d messages, want none", tp, len(got))
		}
	}
}

// TestWeakCiphersRefused: a client offering only CBC or SHA-1 suites in
// TLS 1.2 gets no handshake; an AEAD suite does.
func TestWeakCiphersRefused(t *testing.T) {
	b := StartBroker(t, AuthCert, users)
	cert, key := b.CA.Issue(t, "kitchen", "kitchen-tls")
	cases := []struct {
		name   string
		suites []uint16
		ok     bool
	}{
		{"ECDHE-ECDSA-AES128-SHA", []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}, false},
		{"ECDHE-ECDSA-AES256-SHA", []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}, false},
		{"ECDHE-ECDSA-AES128-SHA256", []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256}, false},
		{"ECDHE-ECDSA-AES128-GCM-SHA256", []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, true},
		{"ECDHE-ECDSA-CHACHA20-POLY1305", []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pair, err := tls.LoadX509KeyPair(cert, key)
			if err != nil {
				t.Fatal(err)
			}
			c := &tls.Config{RootCAs: b.CA.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{pair},
				MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: tc.suites}
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", b.Addr(), c)
			if err == nil {
				conn.Close()
			}
			if (err == nil) != tc.ok {
				t.Errorf("TLS 1.2 handshake with only %s: err = %v, want accepted %v", tc.name, err, tc.ok)
			}
		})
	}
}
