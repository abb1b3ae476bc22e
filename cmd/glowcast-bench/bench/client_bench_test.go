package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/glowcast/glowcast/mqttmsg"
	"github.com/glowcast/glowcast/protocol"
	"github.com/glowcast/glowcast/test/kit/mqtttest"
	"github.com/glowcast/glowcast/test/kit/mqttwatch"
)

// BenchmarkRetainedBurstClient sets the client library against the broker:
// the retained status, ready and claim of 10,000 devices read by the bare
// probe of the fleet rows (retainedDelivery) and by an mqttmsg.Client whose
// handlers do nothing, side by side in each iteration, on the shipped
// Mosquitto config. The client's time runs from Connect (its TCP connect,
// CONNECT and SUBSCRIBE included) to its last message; the ratio is what
// the library adds before any handler of the agent runs.
func BenchmarkRetainedBurstClient(b *testing.B) {
	const devices = 10000
	br := mqtttest.Start(b)
	ctx := context.Background()
	pub, err := mqttmsg.New(mqttmsg.Options{Broker: br.URL(), ClientID: "burst-publisher"})
	if err != nil {
		b.Fatal(err)
	}
	pub.Connect()
	defer pub.Close(ctx)
	if err := pub.WaitUp(ctx, 1); err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range devices {
		id, boot := fmt.Sprintf("sim-%05d", i), fmt.Sprintf("boot%05d", i)
		st, _ := json.Marshal(protocol.DeviceStatus{Online: true, BootID: boot, TS: now})
		rd, _ := json.Marshal(protocol.Ready{BootID: boot, LEDs: 5, Version: "v1"})
		cl := protocol.Claim{Agent: "a0", Session: "s-old", TS: now, Epoch: 1, BootID: boot, NextDue: now.Add(10 * time.Minute), TempsSeq: 5}
		for topic, payload := range map[string][]byte{
			protocol.DeviceTopic(id, protocol.SideDevice, protocol.MsgStatus): st,
			protocol.DeviceTopic(id, protocol.SideDevice, protocol.MsgReady):  rd,
			protocol.OwnerTopic(id): cl.Marshal(),
		} {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				if err := pub.Publish(ctx, topic, payload, true); err != nil {
					b.Error(err)
				}
			})
		}
	}
	wg.Wait()
	filters := []string{protocol.DeviceTopic("+", protocol.SideDevice, "+"), protocol.OwnerFilter}
	const want = 3 * devices
	var bare, client time.Duration
	b.ResetTimer()
	for i := range b.N {
		d, got, err := retainedDelivery(ctx, br.Addr(), filters, want, want)
		if err != nil || got != want {
			b.Fatalf("bare probe: %d of %d messages, %v", got, want, err)
		}
		bare += d
		d, err = mqttwatch.ReadRetained(ctx, mqttmsg.Options{Broker: br.URL(), ClientID: fmt.Sprint("burst-client-", i)}, filters, want, time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		client += d
	}
	b.StopTimer()
	b.ReportMetric(float64(bare.Milliseconds())/float64(b.N), "bare-ms")
	b.ReportMetric(float64(client.Milliseconds())/float64(b.N), "client-ms")
	b.ReportMetric(float64(client)/float64(bare), "client/bare")
}
