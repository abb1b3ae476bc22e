package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// Discovery is seven retained configs a device: published for a whole
// fleet at once they held back its resume after a restart, and a reconnect
// published them all again. They now wait for the fleet to settle, and a
// retained ready this process already announced costs nothing.
func TestHassDiscoveryWaitsForSettleAndSkipsRepeats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		published := map[string]int{} // topic → publishes
		pub := func(_ context.Context, topic string, _ []byte, _ bool) error {
			mu.Lock()
			published[topic]++
			mu.Unlock()
			return nil
		}
		total := func() int {
			mu.Lock()
			defer mu.Unlock()
			n := 0
			for _, c := range published {
				n += c
			}
			return n
		}
		ctx, cancel := context.WithCancel(context.Background())
		h := startHass(ctx, "main", "", "", pub, slog.New(slog.DiscardHandler), time.Hour, nil)
		defer func() { cancel(); h.wait() }()

		h.seen("a", "1.0", true)
		h.seen("b", "1.0", true)
		synctest.Wait()
		if n := total(); n != 0 {
			t.Fatalf("before the fleet settled: %d configs published, want 0", n)
		}
		if got := h.pendingCount(); got != 2 {
			t.Errorf("pending before settle: got %v, want 2", got)
		}
		h.settle()
		synctest.Wait()
		if n := total(); n != 14 {
			t.Fatalf("after settle: %d configs published, want 14 (7 for each of 2 devices)", n)
		}
		if got := h.pendingCount(); got != 0 {
			t.Errorf("pending after publishing: got %v, want 0", got)
		}

		h.seen("a", "1.0", true) // a reconnect replays the retained ready
		synctest.Wait()
		if n := total(); n != 14 {
			t.Errorf("retained ready of an announced version: %d configs in all, want still 14", n)
		}
		h.seen("a", "1.0", false) // a live ready: the device (re)announced itself
		h.seen("b", "1.1", true)  // a new version changes the configs
		synctest.Wait()
		if n := total(); n != 28 {
			t.Errorf("a live ready and a new version: %d configs in all, want 28", n)
		}
	})
}

// Without a settle (no sync echo), discovery starts after the restart grace.
func TestHassDiscoveryStartsAfterGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		n := 0
		pub := func(context.Context, string, []byte, bool) error { mu.Lock(); n++; mu.Unlock(); return nil }
		ctx, cancel := context.WithCancel(context.Background())
		h := startHass(ctx, "main", "", "", pub, slog.New(slog.DiscardHandler), 30*time.Second, nil)
		defer func() { cancel(); h.wait() }()
		h.seen("a", "1.0", true)
		time.Sleep(29 * time.Second)
		synctest.Wait()
		mu.Lock()
		before := n
		mu.Unlock()
		time.Sleep(2 * time.Second)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if before != 0 || n != 7 {
			t.Errorf("configs published: %d before the grace, %d after; want 0 and 7", before, n)
		}
	})
}

// A new agent process on the same state dir publishes no discovery its
// predecessor already published for the same configs: at 100,000 devices
// every restart sent 700,000 retained configs again. Other configs (another
// agent id, status page or agent version), or a record that cannot be
// read, mean every device is published again.
func TestHassDiscoveryRecordSparesRestarts(t *testing.T) {
	for _, tc := range []struct {
		name      string
		agentID   string
		corrupt   bool
		wantAgain int
	}{
		{name: "same configs", agentID: "main", wantAgain: 0},
		{name: "another agent id", agentID: "other", wantAgain: 14},
		{name: "unreadable record", agentID: "main", corrupt: true, wantAgain: 14},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				file := filepath.Join(t.TempDir(), HassFile)
				var mu sync.Mutex
				n := 0
				pub := func(context.Context, string, []byte, bool) error { mu.Lock(); n++; mu.Unlock(); return nil }
				published := func() int { mu.Lock(); defer mu.Unlock(); return n }
				run := func(agentID string) {
					ctx, cancel := context.WithCancel(context.Background())
					h := startHass(ctx, agentID, "", file, pub, slog.New(slog.DiscardHandler), time.Hour, nil)
					h.settle()
					h.seen("a", "1.0", true)
					h.seen("b", "1.0", true)
					synctest.Wait()
					cancel()
					h.wait()
				}
				run("main")
				if got := published(); got != 14 {
					t.Fatalf("first process: %d configs, want 14", got)
				}
				if tc.corrupt {
					if err := os.WriteFile(file, []byte("{not json"), 0o640); err != nil {
						t.Fatal(err)
					}
				}
				run(tc.agentID)
				if got := published() - 14; got != tc.wantAgain {
					t.Errorf("second process: %d configs, want %d", got, tc.wantAgain)
				}
			})
		})
	}
}

// A device's boot is a batch of one: the record is written a while after
// the last batch, not after each, so a fleet's boots do not rewrite a file
// that names every device.
func TestHassDiscoveryRecordIsWrittenAfterAPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		file := filepath.Join(t.TempDir(), HassFile)
		pub := func(context.Context, string, []byte, bool) error { return nil }
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		h := startHass(ctx, "main", "", file, pub, slog.New(slog.DiscardHandler), time.Hour, nil)
		h.settle()
		h.seen("a", "1.0", false)
		synctest.Wait()
		if _, err := os.Stat(file); err == nil {
			t.Fatalf("record written at once after a batch of one; want it after %v", hassSaveAfter)
		}
		time.Sleep(hassSaveAfter / 2)
		h.seen("b", "1.0", false)
		synctest.Wait()
		time.Sleep(hassSaveAfter - time.Second)
		synctest.Wait()
		if _, err := os.Stat(file); err == nil {
			t.Fatalf("record written %v after the last batch; want %v", hassSaveAfter-time.Second, hassSaveAfter)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("record after the pause: %v", err)
		}
		var rec hassRecord
		if err := json.Unmarshal(b, &rec); err != nil || rec.Devices["a"] != "1.0" || rec.Devices["b"] != "1.0" {
			t.Errorf("record: %s (%v); want devices a and b at 1.0", b, err)
		}
		cancel()
		h.wait()
	})
}

// A fleet's discovery goes hassWorkers devices at a time: each config waits
// for its acknowledgement, and one device after another, 100,000 devices'
// configs took over two minutes after a cold start. A stop in the middle of
// a batch ends it at once.
func TestHassDiscoveryPublishesDevicesSideBySide(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const devices, ack = 64, 10 * time.Millisecond
		var mu sync.Mutex
		inFlight, peak, published := map[string]int{}, 0, 0
		pub := func(ctx context.Context, topic string, _ []byte, _ bool) error {
			dev := strings.Split(topic, "/")[2][:len("glowcast_d000")] // homeassistant/<component>/glowcast_<id>[_<entity>]/config
			mu.Lock()
			inFlight[dev]++
			peak = max(peak, len(inFlight))
			mu.Unlock()
			defer func() {
				mu.Lock()
				if inFlight[dev]--; inFlight[dev] == 0 {
					delete(inFlight, dev)
				}
				mu.Unlock()
			}()
			select {
			case <-time.After(ack):
			case <-ctx.Done():
				return ctx.Err()
			}
			mu.Lock()
			published++
			mu.Unlock()
			return nil
		}
		ctx, cancel := context.WithCancel(context.Background())
		h := startHass(ctx, "main", "", "", pub, slog.New(slog.DiscardHandler), time.Hour, nil)
		for i := range devices {
			h.seen(fmt.Sprintf("d%03d", i), "1.0", true)
		}
		start := time.Now()
		h.settle()
		for h.pendingCount() > 0 {
			time.Sleep(time.Millisecond)
		}
		took := time.Since(start)
		mu.Lock()
		if peak != hassWorkers {
			t.Errorf("devices in flight at once: %d, want %d", peak, hassWorkers)
		}
		if published != devices*7 {
			t.Errorf("configs published: %d, want %d", published, devices*7)
		}
		mu.Unlock()
		if serial := devices * 7 * ack; took > serial/4 {
			t.Errorf("discovery of %d devices took %v, one at a time it takes %v", devices, took, serial)
		}

		// A stop during a batch: the batch ends, nothing is left running.
		for i := range devices {
			h.seen(fmt.Sprintf("e%03d", i), "1.0", false)
		}
		time.Sleep(ack / 2)
		cancel()
		h.wait()
		h.mu.Lock()
		inBatch := h.inBatch
		h.mu.Unlock()
		mu.Lock()
		defer mu.Unlock()
		if inBatch != 0 || published >= 2*devices*7 {
			t.Errorf("after a stop mid-batch: %d devices counted in the batch, %d configs published in all; want 0 and fewer than %d", inBatch, published, 2*devices*7)
		}
	})
}
