package security

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/glowcast/glowcast/internal/brokerconf"
	"github.com/glowcast/glowcast/mqttmsg"
	"github.com/glowcast/glowcast/protocol"
	"github.com/glowcast/glowcast/test/kit/mqttwatch"
)

// BenchmarkRetainedBurstTLS is a restarting agent's read of the retained
// claims of 10,000 devices, over TLS with a client certificate on the
// shipped Mosquitto config, as an agent meets it in production. Side by
// side in each iteration: an mqttmsg.Client (its own TLS dial, writes
// gathered) and a paho client on paho's TLS dial (a system call each
// record, every PUBACK one), both subscribing at QoS 1 and doing nothing
// with the messages.
func BenchmarkRetainedBurstTLS(b *testing.B) {
	const devices = 10000
	br := StartBroker(b, AuthCert, users)
	// The shipped config makes the user name the client id: one
	// identity is one session, so the publisher and the readers are two.
	options := func(user, id string) mqttmsg.Options {
		cert, key := br.CA.Issue(b, user, "bench-"+user)
		cfg := brokerconf.Config{Username: user, CAFile: br.Files.CA, CertFile: cert, KeyFile: key}
		var o mqttmsg.Options
		if err := cfg.Apply(br.URL(), &o); err != nil {
			b.Fatal(err)
		}
		o.Broker, o.ClientID = br.URL(), id
		return o
	}
	ctx := context.Background()
	now := time.Now().UTC()
	claims := make(map[string][]byte, devices)
	for i := range devices {
		id := fmt.Sprintf("sim-%05d", i)
		c := protocol.Claim{Agent: "a0", Session: "s-old", TS: now, Epoch: 1, BootID: "boot-" + id, NextDue: now.Add(10 * time.Minute), TempsSeq: 5}
		claims[protocol.OwnerTopic(id)] = c.Marshal()
	}
	if err := mqttwatch.PublishRetained(ctx, options(AgentUser, "burst-publisher"), claims); err != nil {
		b.Fatal(err)
	}
	reader := options(ObserverUser, "")

	var ours, pahos time.Duration
	b.ResetTimer()
	for i := range b.N {
		// mqttmsg, as the agent connects.
		o := reader
		o.ClientID = fmt.Sprint("burst-mqttmsg-", i)
		d, err := mqttwatch.ReadRetained(ctx, o, []string{protocol.OwnerFilter}, devices, time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		ours += d

		// paho on its own TLS dial.
		var n atomic.Int64
		pdone := make(chan struct{})
		po := mqtt.NewClientOptions().AddBroker(br.URL()).SetClientID(fmt.Sprint("burst-paho-", i)).SetProtocolVersion(4).
			SetCleanSession(true).SetAutoReconnect(false).SetTLSConfig(reader.TLS).SetUsername(reader.Username).SetOrderMatters(true)
		po.SetOnConnectHandler(func(pc mqtt.Client) {
			pc.Subscribe(protocol.OwnerFilter, 1, func(mqtt.Client, mqtt.Message) {
				if n.Add(1) == devices {
					close(pdone)
				}
			})
		})
		pc := mqtt.NewClient(po)
		start := time.Now()
		if tok := pc.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			b.Fatalf("paho connect: %v", tok.Error())
		}
		select {
		case <-pdone:
		case <-time.After(time.Minute):
			b.Fatalf("paho: %d of %d claims after a minute", n.Load(), devices)
		}
		pahos += time.Since(start)
		pc.Disconnect(250)
	}
	b.StopTimer()
	b.ReportMetric(float64(ours.Milliseconds())/float64(b.N), "mqttmsg-ms")
	b.ReportMetric(float64(pahos.Milliseconds())/float64(b.N), "paho-ms")
	b.ReportMetric(float64(ours)/float64(pahos), "mqttmsg/paho")
}
