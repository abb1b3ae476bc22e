package security

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/glowcast/glowcast/internal/brokerconf"
	"github.com/glowcast/glowcast/mqttmsg"
)

// identity returns the mqtt settings of user: a certificate from the
// broker's CA (AuthCert) or its password in a file (AuthPassword).
func (b *Broker) identity(t *testing.T, user string) brokerconf.Config {
	t.Helper()
	if b.Auth == AuthCert {
		cert, key := b.CA.Issue(t, user, "client-"+user)
		return brokerconf.Config{Username: user, CAFile: b.Files.CA, CertFile: cert, KeyFile: key}
	}
	pf := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pf, []byte(b.passwords[user]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return brokerconf.Config{Username: user, PasswordFile: pf, CAFile: b.Files.CA}
}

// will is a last will for connect.
type will struct {
	topic   string
	payload string
}

// connect opens one MQTT connection with the settings of cfg (through
// brokerconf, as the programs do) and no retries.
func (b *Broker) connect(t *testing.T, cfg brokerconf.Config, id string, w *will) (mqtt.Client, error) {
	t.Helper()
	var o mqttmsg.Options
	if err := cfg.Apply(b.URL(), &o); err != nil {
		return nil, err
	}
	po := mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID(id).SetProtocolVersion(4).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).SetTLSConfig(o.TLS)
	if o.Username != "" {
		po.SetUsername(o.Username).SetPassword(o.Password)
	}
	if w != nil {
		po.SetWill(w.topic, w.payload, 1, true)
	}
	c := mqtt.NewClient(po)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, fmt.Errorf("connect %s: timed out", id)
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c, nil
}

// mustConnect is connect for clients the broker must accept.
func (b *Broker) mustConnect(t *testing.T, user string) mqtt.Client {
	t.Helper()
	c, err := b.connect(t, b.identity(t, user), "test-"+user, nil)
	if err != nil {
		t.Fatalf("%s (%v auth) refused: %v\n%s", user, b.Auth, err, b.Log())
	}
	return c
}

// recorder keeps every message a client receives, by topic.
type recorder struct {
	mu   sync.Mutex
	got  map[string][]string
	seen chan string
}

func newRecorder() *recorder {
	return &recorder{got: map[string][]string{}, seen: make(chan string, 1000)}
}

func (r *recorder) handle(_ mqtt.Client, m mqtt.Message) {
	r.mu.Lock()
	r.got[m.Topic()] = append(r.got[m.Topic()], string(m.Payload()))
	r.mu.Unlock()
	r.seen <- m.Topic() + " " + string(m.Payload())
}

func (r *recorder) messages(topic string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got[topic]...)
}

// waitFor waits until the recorder saw payload on topic.
func (r *recorder) waitFor(t *testing.T, topic, payload string) {
	t.Helper()
	want := topic + " " + payload
	deadline := time.After(5 * time.Second)
	for {
		select {
		case s := <-r.seen:
			if s == want {
				return
			}
		case <-deadline:
			t.Fatalf("timed out waiting for %q on %s", payload, topic)
		}
	}
}

// subscribe subscribes c to filters and returns the granted QoS per filter
// (0x80: refused).
func subscribe(t *testing.T, c mqtt.Client, r *recorder, filters ...string) map[string]byte {
	t.Helper()
	fs := map[string]byte{}
	for _, f := range filters {
		fs[f] = 1
	}
	tok := c.SubscribeMultiple(fs, r.handle)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %v: %v", filters, tok.Error())
	}
	return tok.(*mqtt.SubscribeToken).Result()
}

func publish(t *testing.T, c mqtt.Client, topic, payload string, retained bool) {
	t.Helper()
	tok := c.Publish(topic, 1, retained, payload)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}
