package agent

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/glowcast/glowcast/mqttmsg"
	"github.com/glowcast/glowcast/protocol"
)

// The agent's own share of a resume: the retained claim, status and ready
// of every device through their handlers (payloads parsed as they arrive),
// then the sync echo that arms every cycle. No broker and no MQTT client:
// BENCHMARKS.md sets this against the client library's part of the
// re-arm. Reported per retained message; state=true is a restart, every
// device's state read from the state dir first (not timed), as the agent
// does before it connects.
func BenchmarkRetainedStateHandlers(b *testing.B) {
	for _, state := range []bool{false, true} {
		b.Run(fmt.Sprint("state=", state), func(b *testing.B) { benchRetainedState(b, state) })
	}
}

func benchRetainedState(b *testing.B, state bool) {
	const n = 10000
	now := time.Now()
	dir := ""
	if state {
		dir = b.TempDir()
		st, err := openStore(dir, slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		for i := range n {
			s := &Saved{Device: fmt.Sprintf("sim-%05d", i), BootID: fmt.Sprintf("boot%05d", i), NextDue: now.Add(10 * time.Minute)}
			if err := st.save(s); err != nil {
				b.Fatal(err)
			}
		}
	}
	type msg struct {
		kind, id string
		payload  []byte
	}
	var msgs []msg
	for i := range n {
		id, boot := fmt.Sprintf("sim-%05d", i), fmt.Sprintf("boot%05d", i)
		c := protocol.Claim{Agent: "a0", Session: "s-old", TS: now, Epoch: 1, BootID: boot, NextDue: now.Add(10 * time.Minute), TempsSeq: 5}
		st, _ := json.Marshal(protocol.DeviceStatus{Online: true, BootID: boot, TS: now})
		rd, _ := json.Marshal(protocol.Ready{BootID: boot, LEDs: 5, Version: "v1"})
		msgs = append(msgs, msg{"claim", id, c.Marshal()}, msg{"status", id, st}, msg{"ready", id, rd})
	}
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		h := newHarness(b, dir, ResumeFast)
		o := newOwnership(h.f, "0/1", "a0", "s-new", nil)
		h.f.connected()
		b.StartTimer()
		for _, m := range msgs {
			switch m.kind {
			case "claim":
				o.onClaimMsg(mqttmsg.Message{Topic: protocol.OwnerTopic(m.id), Payload: m.payload, Retained: true})
			case "status":
				s, err := protocol.ParseDeviceStatus(m.payload)
				if err != nil {
					b.Fatal(err)
				}
				h.f.onStatus(m.id, s, true)
			case "ready":
				r, err := protocol.ParseReady(m.payload)
				if err != nil {
					b.Fatal(err)
				}
				h.f.onReady(m.id, r, true)
			}
		}
		o.onSync(mqttmsg.Message{Topic: protocol.SyncTopic("a0"), Payload: []byte("s-new")})
		b.StopTimer()
		if got := h.f.countCycles(); got != n {
			b.Fatalf("cycles armed: %d, want %d", got, n)
		}
		h.close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(msgs)), "ns/msg")
}
