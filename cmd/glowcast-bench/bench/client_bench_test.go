package bench

import (
	"context"
	"encoding/json"
	"fmt"
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
	now := time.Now().UTC()
	state := make(map[string][]byte, 3*devices)
	for i := range devices {
		id, boot := fmt.Sprintf("sim-%05d", i), fmt.Sprintf("boot%05d", i)
		st, _ := json.Marshal(protocol.DeviceStatus{Online: true, BootID: boot, TS: now})
		rd, _ := json.Marshal(protocol.Ready{BootID: boot, LEDs: 5, Version: "v1"})
		cl := protocol.Claim{Agent: "a0", Session: "s-old", TS: now, Epoch: 1, BootID: boot, NextDue: now.Add(10 * time.Minute), TempsSeq: 5}
		state[protocol.DeviceTopic(id, protocol.SideDevice, protocol.MsgStatus)] = st
		state[protocol.DeviceTopic(id, protocol.SideDevice, protocol.MsgReady)] = rd
		state[protocol.OwnerTopic(id)] = cl.Marshal()
	}
	if err := mqttwatch.PublishRetained(ctx, mqttmsg.Options{Broker: br.URL(), ClientID: "burst-publisher"}, state); err != nil {
		b.Fatal(err)
	}
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
