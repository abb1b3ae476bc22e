// Package mqtttest starts a real Mosquitto broker for tests: its own process
// on a free loopback port, stopped (or restarted) by the test, running the
// broker config glowcast ships (configs/mosquitto/glowcast.conf) with only
// the port, TLS material and paths swapped.
package mqtttest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Broker is a Mosquitto process owned by one test.
type Broker struct {
	t       testing.TB
	Port    int
	Dir     string
	Persist bool
	extra   string
	listen  func(port int) string
	cmd     *exec.Cmd
	done    chan struct{}
}

// Binary finds mosquitto; tests fail (not skip) without it, since CI
// installs it.
func Binary(t testing.TB) string {
	for _, p := range []string{os.Getenv("MOSQUITTO"), "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p
	}
	t.Fatal("mosquitto not found: install it (apt-get install -y mosquitto) or set $MOSQUITTO")
	return ""
}

// Option changes how the broker is started.
type Option func(*Broker)

// WithPersistence keeps retained messages across Restart.
func WithPersistence() Option { return func(b *Broker) { b.Persist = true } }

// WithConfig appends raw lines to the generated mosquitto.conf.
func WithConfig(lines string) Option { return func(b *Broker) { b.extra += lines + "\n" } }

// WithListener replaces the default config (the shipped one with a plain,
// anonymous listener) with the lines listen returns for the broker's port:
// the shipped one with TLS and its own authentication, say. The broker is
// up once the port accepts TCP.
func WithListener(listen func(port int) string) Option {
	return func(b *Broker) { b.listen = listen }
}

// Start runs Mosquitto on a free loopback port; it is killed at test end.
func Start(t testing.TB, opts ...Option) *Broker {
	t.Helper()
	b := &Broker{t: t, Dir: t.TempDir(), Port: FreePort(t)}
	for _, o := range opts {
		o(b)
	}
	b.start()
	t.Cleanup(b.Stop)
	return b
}

// URL is the broker's tcp:// URL.
func (b *Broker) URL() string { return fmt.Sprintf("tcp://127.0.0.1:%d", b.Port) }

// Addr is host:port.
func (b *Broker) Addr() string { return fmt.Sprintf("127.0.0.1:%d", b.Port) }

func (b *Broker) start() {
	b.t.Helper()
	var conf string
	if b.listen != nil {
		conf = b.listen(b.Port) + "\n"
	} else {
		shipped, err := os.ReadFile(ShippedPath())
		if err != nil {
			b.t.Fatal(err)
		}
		if conf, err = ShippedConfig(shipped, b.Port, nil); err != nil {
			b.t.Fatal(err)
		}
	}
	if b.Persist {
		conf += fmt.Sprintf("persistence true\npersistence_location %s/\nautosave_interval 1\n", b.Dir)
	} else {
		conf += "persistence false\n"
	}
	conf += b.extra
	path := filepath.Join(b.Dir, "mosquitto.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		b.t.Fatal(err)
	}
	log, err := os.OpenFile(filepath.Join(b.Dir, "mosquitto.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		b.t.Fatal(err)
	}
	cmd := exec.Command(Binary(b.t), "-c", path)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.t.Fatalf("start mosquitto: %v", err)
	}
	b.cmd = cmd
	b.done = make(chan struct{})
	go func() { cmd.Wait(); log.Close(); close(b.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", b.Addr(), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-b.done:
			out, _ := os.ReadFile(filepath.Join(b.Dir, "mosquitto.log"))
			b.t.Fatalf("mosquitto exited at start:\n%s", out)
		default:
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("mosquitto did not listen on %s", b.Addr())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop ends the broker gracefully (SIGTERM: it saves persistence and
// publishes wills of connected clients, as a real shutdown does).
func (b *Broker) Stop() {
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(5 * time.Second):
		b.cmd.Process.Kill()
		<-b.done
	}
	b.cmd = nil
}

// Kill ends the broker with SIGKILL: nothing saved since the last autosave.
func (b *Broker) Kill() {
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Kill()
	<-b.done
	b.cmd = nil
}

// Restart stops and starts the broker on the same port. Without
// persistence every retained message is gone afterwards.
func (b *Broker) Restart() {
	b.t.Helper()
	b.Stop()
	b.start()
}

// Log returns the broker's log so far, for failure messages.
func (b *Broker) Log() string {
	out, _ := os.ReadFile(filepath.Join(b.Dir, "mosquitto.log"))
	return strings.TrimSpace(string(out))
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// WaitFor polls cond every 10ms until it holds or timeout passes.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
