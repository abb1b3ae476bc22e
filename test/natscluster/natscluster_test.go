// Package natscluster runs glowcast's MQTT layer against a three-node NATS
// cluster (MQTT gateway + JetStream) started from the shipped
// configs/nats/glowcast.conf, with real nats-server processes that the tests
// kill.
package natscluster

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/glowcast/glowcast/internal/brokerconf"
	"github.com/glowcast/glowcast/mqttmsg"
	"github.com/glowcast/glowcast/test/kit/mqtttest"
	"github.com/glowcast/glowcast/test/kit/proc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// natsVersion is the nats-server release the shipped config is written
// for; the Debian package (2.9) refuses default_max_consumers.
const natsVersion = "v2.15.2"

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// natsServer returns a nats-server natsVersion binary: $GLOWCAST_NATS_SERVER,
// or one built once with go install into the user cache.
func natsServer(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("GLOWCAST_NATS_SERVER"); p != "" {
		return p
	}
	binOnce.Do(func() {
		cache, err := os.UserCacheDir()
		if err != nil {
			binErr = err
			return
		}
		dir := filepath.Join(cache, "glowcast", "nats-server-"+natsVersion)
		binPath = filepath.Join(dir, "nats-server")
		if _, err := os.Stat(binPath); err == nil {
			return
		}
		cmd := exec.Command("go", "install", "github.com/nats-io/nats-server/v2@"+natsVersion)
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("building nats-server %s: %v\n%s", natsVersion, err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

type node struct {
	name    string
	dir     string
	mqtt    int
	cluster int
	http    int
	p       *proc.Proc
	shipped string
	routes  []int
	bin     string
	logPath string
}

func (n *node) url() string { return fmt.Sprintf("tcp://127.0.0.1:%d", n.mqtt) }

// start writes the node's own settings, includes the shipped file next to
// them (NATS resolves include relative to the including file) and starts it.
func (n *node) start(t *testing.T) {
	t.Helper()
	var routes []string
	for _, p := range n.routes {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	own := fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:-1
http: 127.0.0.1:%d
cluster { name: glowcast, listen: 127.0.0.1:%d, routes: [%s] }
include ./glowcast.conf
`, n.name, n.http, n.cluster, strings.Join(routes, ", "))
	if err := os.WriteFile(filepath.Join(n.dir, "node.conf"), []byte(own), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(n.shipped)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.dir, "glowcast.conf"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if n.p == nil {
		n.p = proc.New(n.name, n.bin, n.logPath, []string{"-c", filepath.Join(n.dir, "node.conf")},
			"GLOWCAST_STORE_DIR="+filepath.Join(n.dir, "js"),
			fmt.Sprintf("GLOWCAST_MQTT_LISTEN=127.0.0.1:%d", n.mqtt))
	}
	if err := n.p.Start(); err != nil {
		t.Fatal(err)
	}
}

func (n *node) kill() {
	if n.p != nil {
		n.p.Kill()
	}
}

func (n *node) log() string { b, _ := os.ReadFile(n.logPath); return string(b) }

// healthy reports whether the node's /healthz says its JetStream assets
// (the MQTT streams and consumers) are current: the readiness probe NATS
// documents for taking the next node down.
func (n *node) healthy() bool {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", n.http))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// waitHealthy waits until every given node is healthy. An R3 cluster
// survives one node at a time: the next may go only when the last one is
// back and caught up.
func waitHealthy(t *testing.T, ns ...*node) {
	t.Helper()
	for _, n := range ns {
		mqtttest.WaitFor(t, 60*time.Second, n.name+" healthy (/healthz)", n.healthy)
	}
}

func startCluster(t *testing.T) []*node {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Fatal("the cluster suite runs on Linux")
	}
	bin := natsServer(t)
	shipped, err := filepath.Abs("../../configs/nats/glowcast.conf")
	if err != nil {
		t.Fatal(err)
	}
	var ns []*node
	for i := range 3 {
		d := t.TempDir()
		ns = append(ns, &node{name: fmt.Sprintf("n%d", i+1), dir: d, mqtt: mqtttest.FreePort(t), cluster: mqtttest.FreePort(t), http: mqtttest.FreePort(t),
			shipped: shipped, bin: bin, logPath: filepath.Join(d, "log")})
	}
	for _, n := range ns {
		for _, o := range ns {
			if o != n {
				n.routes = append(n.routes, o.cluster)
			}
		}
	}
	for _, n := range ns {
		n.start(t)
	}
	t.Cleanup(func() {
		for _, n := range ns {
			n.kill()
		}
		if t.Failed() {
			for _, n := range ns {
				t.Logf("%s log:\n%s", n.name, n.log())
			}
		}
	})
	waitHealthy(t, ns...)
	return ns
}

// client makes a client as the programs do, with the shipped defaults for
// a broker list (brokerconf.Config.Apply): with several nodes it
// subscribes again DefaultResubscribe after each connect.
func client(t *testing.T, id, brokers string) *mqttmsg.Client {
	t.Helper()
	o := mqttmsg.Options{Broker: brokers, ClientID: id, KeepAlive: 5 * time.Second, ConnectTimeout: 5 * time.Second, MaxReconnectInterval: 2 * time.Second}
	var cfg brokerconf.Config
	if err := cfg.Apply(brokers, &o); err != nil {
		t.Fatal(err)
	}
	c, err := mqttmsg.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// connectTo connects a client with the broker list and makes sure its first
// connect landed on want: on a loaded host a node can be slow to load a
// session (its JetStream request times out) and the client rightly moves
// on to the next URL; the scenario needs the named node, so it tries again.
func connectTo(t *testing.T, id string, want *node, list string, handle func(*mqttmsg.Client)) *mqttmsg.Client {
	t.Helper()
	for attempt := 1; ; attempt++ {
		cl := client(t, id, list)
		if handle != nil {
			handle(cl)
		}
		cl.Connect()
		if err := cl.WaitUp(ctxT(t, 60*time.Second), 1); err != nil {
			cl.Close(context.Background())
			t.Fatal(err)
		}
		if cl.Broker() == want.url() {
			t.Cleanup(func() { cl.Close(context.Background()) })
			return cl
		}
		cl.Close(context.Background())
		if attempt == 5 {
			t.Fatalf("%s: connected to %s five times, want node %s %s", id, cl.Broker(), want.name, want.url())
		}
		t.Logf("%s: first connect landed on %s, not %s; again", id, cl.Broker(), want.name)
	}
}

// retained collects the newest payload per topic of a wildcard
// subscription.
type retained struct {
	mu   sync.Mutex
	seen map[string]string
}

func (r *retained) handle(m mqttmsg.Message) {
	r.mu.Lock()
	r.seen[m.Topic] = string(m.Payload)
	r.mu.Unlock()
}

func (r *retained) reset() { r.mu.Lock(); clear(r.seen); r.mu.Unlock() }

// describe says what was seen, for a timeout's message.
func (r *retained) describe() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	gens := map[string]int{}
	for _, v := range r.seen {
		gens[v]++
	}
	return fmt.Sprintf("%d topics seen, by payload %v", len(r.seen), gens)
}

// conn says where a client is, for a timeout's message.
func conn(c *mqttmsg.Client) func() string {
	return func() string { return fmt.Sprintf("connected %d times, now to %s", c.Ups(), c.Broker()) }
}

// all reports whether every one of n devices was seen with payload gen.
func (r *retained) all(n int, gen string) func() bool {
	return func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.seen) != n {
			return false
		}
		for _, v := range r.seen {
			if v != gen {
				return false
			}
		}
		return true
	}
}

// Retained state written through one node reaches a wildcard subscriber on
// another; when the subscriber's node is killed it fails over to a third
// through its broker list and gets the whole retained state again; when the
// writer's node is killed (after the first came back and caught up: an R3
// cluster survives one node at a time) the writer fails over, a fresh
// subscriber finds every retained message written before, and the
// writer's next generation reaches the agent live and stays retained.
func TestRetainedSurvivesNodeLoss(t *testing.T) {
	ns := startCluster(t)
	a, b, c := ns[0], ns[1], ns[2]
	const devices = 50

	// Devices on node A (with C as failover), publishing retained.
	pub := connectTo(t, "devices", a, a.url()+","+c.url(), nil)
	// The first MQTT client made the MQTT streams: a retained message
	// written before their leaders are elected can be acknowledged and
	// not stored (docs/SCALING.md).
	waitHealthy(t, ns...)
	publishAll := func(gen int) {
		for i := range devices {
			topic := fmt.Sprintf("glowcast/v1/d%03d/ready", i)
			if err := pub.Publish(ctxT(t, 10*time.Second), topic, fmt.Appendf(nil, "%d", gen), true); err != nil {
				t.Fatalf("publishing %s: %v", topic, err)
			}
		}
	}
	publishAll(1)

	// The agent on node B, with C as its failover.
	seen := &retained{seen: map[string]string{}}
	agent := connectTo(t, "agent", b, b.url()+","+c.url(), func(cl *mqttmsg.Client) {
		seen.reset()
		cl.Handle("glowcast/v1/+/ready", seen.handle)
	})
	mqtttest.WaitFor(t, 30*time.Second, "every retained ready through node B", seen.all(devices, "1"), seen.describe, conn(agent))
	if agent.Broker() != b.url() {
		t.Fatalf("agent connected to %s, want node B %s", agent.Broker(), b.url())
	}

	// Kill B: the agent reconnects to C and receives the retained state again.
	seen.reset()
	ups := agent.Ups()
	b.kill()
	if err := agent.WaitUp(ctxT(t, 60*time.Second), ups+1); err != nil {
		t.Fatal(err)
	}
	if agent.Broker() != c.url() {
		t.Errorf("agent failed over to %s, want node C %s", agent.Broker(), c.url())
	}
	mqtttest.WaitFor(t, 60*time.Second, "every retained ready again through node C", seen.all(devices, "1"), seen.describe, conn(agent))

	// Bring B back and wait until it has caught up, then kill A: the
	// devices reconnect to C.
	b.start(t)
	waitHealthy(t, b, c)
	ups = pub.Ups()
	a.kill()
	if err := pub.WaitUp(ctxT(t, 60*time.Second), ups+1); err != nil {
		t.Fatal(err)
	}
	if pub.Broker() != c.url() {
		t.Errorf("devices failed over to %s, want node C %s", pub.Broker(), c.url())
	}

	// Nothing retained was lost with A: a fresh subscriber on B gets it all.
	// It is B's first MQTT client since B came back: B loads its retained
	// messages as it answers, and the subscriber's second subscribe
	// (DefaultResubscribe) gets what its first missed.
	fresh := &retained{seen: map[string]string{}}
	check := connectTo(t, "check", b, b.url()+","+c.url(), func(cl *mqttmsg.Client) {
		fresh.reset()
		cl.Handle("glowcast/v1/+/ready", fresh.handle)
	})
	mqtttest.WaitFor(t, 60*time.Second, "every retained ready through node B after A died", fresh.all(devices, "1"), fresh.describe, conn(check))

	// The devices' next generation reaches the agent live and is retained.
	// NATS acknowledges a retained PUBLISH even when it cannot store it
	// (it logs "unable to store retained message"), so a write while
	// JetStream still elects leaders for A's streams could vanish: write
	// when the survivors report healthy.
	waitHealthy(t, b, c)
	publishAll(2)
	mqtttest.WaitFor(t, 60*time.Second, "the devices' new state through node C", seen.all(devices, "2"), seen.describe, conn(agent))
	late := &retained{seen: map[string]string{}}
	check2 := connectTo(t, "check2", b, b.url()+","+c.url(), func(cl *mqttmsg.Client) {
		late.reset()
		cl.Handle("glowcast/v1/+/ready", late.handle)
	})
	mqtttest.WaitFor(t, 60*time.Second, "the new generation retained on node B", late.all(devices, "2"), late.describe, conn(check2))
}

// The first MQTT client of a NATS node that has just started gets part of
// the retained messages, or none (3 to 872 of 3,000 here), and never the
// rest: the node loads them from JetStream as it answers. With a broker
// list, the programs' clients subscribe again after DefaultResubscribe and
// get them all. Each round restarts node B and makes the subscriber B's
// first client.
func TestFirstSubscriberOfARestartedNodeGetsEveryRetained(t *testing.T) {
	ns := startCluster(t)
	a, b, c := ns[0], ns[1], ns[2]
	const devices = 2000
	pub := connectTo(t, "devices", a, a.url(), nil)
	waitHealthy(t, ns...)
	for i := range devices {
		topic := fmt.Sprintf("glowcast/v1/d%04d/ready", i)
		if err := pub.Publish(ctxT(t, 10*time.Second), topic, []byte("1"), true); err != nil {
			t.Fatalf("publishing %s: %v", topic, err)
		}
	}
	for round := range 2 {
		b.kill()
		b.start(t)
		waitHealthy(t, ns...)
		seen := &retained{seen: map[string]string{}}
		sub := connectTo(t, fmt.Sprintf("agent%d", round), b, b.url()+","+c.url(), func(cl *mqttmsg.Client) {
			seen.reset()
			cl.Handle("glowcast/v1/+/ready", seen.handle)
		})
		time.Sleep(brokerconf.DefaultResubscribe / 2)
		t.Logf("round %d: %s before the second subscribe", round, seen.describe())
		mqtttest.WaitFor(t, 3*brokerconf.DefaultResubscribe, fmt.Sprintf("round %d: every retained ready through B's first client", round), seen.all(devices, "1"), seen.describe, conn(sub))
		sub.Close(context.Background())
	}
}
