// Package mqtttest is the test kit's one Mosquitto launcher: a real broker
// as its own process on a free loopback port, stopped (or restarted) by its
// owner, running the broker config glowcast ships
// (configs/mosquitto/glowcast.conf) with only the port, TLS material and
// paths swapped. Run does not need a testing.TB, so the benchmark uses
// it too; Start ties a broker to a test.
package mqtttest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/glowcast/glowcast/test/kit/proc"
)

// Broker is one Mosquitto process.
type Broker struct {
	Port    int
	Dir     string
	Persist bool
	extra   string
	listen  func(port int) string
	shipped []byte
	p       *proc.Proc
}

// Binary finds mosquitto; suites fail (not skip) without it, since CI
// installs it.
func Binary() (string, error) {
	for _, p := range []string{os.Getenv("MOSQUITTO"), "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
	}
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, nil
	}
	return "", errors.New("mosquitto not found: install it (apt-get install -y mosquitto) or set $MOSQUITTO")
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

// WithShipped takes the shipped glowcast.conf from text instead of this
// source tree (for a program run away from it, the benchmark).
func WithShipped(text []byte) Option { return func(b *Broker) { b.shipped = text } }

// Start runs Mosquitto for a test on a free loopback port; it is stopped at
// test end.
func Start(t testing.TB, opts ...Option) *Broker {
	t.Helper()
	b, err := Run(t.TempDir(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	return b
}

// Run runs Mosquitto on a free loopback port with its config, log and
// persistence in dir, and returns once the port accepts TCP. The caller
// stops it.
func Run(dir string, opts ...Option) (*Broker, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	b := &Broker{Dir: dir, Port: port}
	for _, o := range opts {
		o(b)
	}
	if err := b.start(); err != nil {
		return nil, err
	}
	return b, nil
}

// URL is the broker's tcp:// URL.
func (b *Broker) URL() string { return fmt.Sprintf("tcp://127.0.0.1:%d", b.Port) }

// Addr is host:port.
func (b *Broker) Addr() string { return fmt.Sprintf("127.0.0.1:%d", b.Port) }

// Proc is the broker's process, for its pid and /proc figures.
func (b *Broker) Proc() *proc.Proc { return b.p }

func (b *Broker) start() error {
	var conf string
	if b.listen != nil {
		conf = b.listen(b.Port) + "\n"
	} else {
		shipped := b.shipped
		if shipped == nil {
			var err error
			if shipped, err = os.ReadFile(ShippedPath()); err != nil {
				return err
			}
		}
		var err error
		if conf, err = ShippedConfig(shipped, b.Port, nil); err != nil {
			return err
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
		return err
	}
	bin, err := Binary()
	if err != nil {
		return err
	}
	if b.p == nil {
		b.p = proc.New("mosquitto", bin, filepath.Join(b.Dir, "mosquitto.log"), []string{"-c", path})
	}
	if err := b.p.Start(); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", b.Addr(), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if !b.p.Alive() {
			return fmt.Errorf("mosquitto exited at start:\n%s", b.p.Log())
		}
		if time.Now().After(deadline) {
			b.p.Kill()
			return fmt.Errorf("mosquitto did not listen on %s:\n%s", b.Addr(), b.p.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop ends the broker gracefully (SIGTERM: it saves persistence and
// publishes wills of connected clients, as a real shutdown does).
func (b *Broker) Stop() { b.p.Signal(syscall.SIGTERM, 5*time.Second) }

// Kill ends the broker with SIGKILL: nothing saved since the last autosave.
func (b *Broker) Kill() { b.p.Kill() }

// Restart stops and starts the broker on the same port. Without
// persistence every retained message is gone afterwards.
func (b *Broker) Restart() error {
	b.Stop()
	return b.start()
}

// Log returns the broker's log so far, for failure messages.
func (b *Broker) Log() string {
	out, _ := os.ReadFile(b.p.LogPath())
	return strings.TrimSpace(string(out))
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WaitFor polls cond every 10ms until it holds or timeout passes; on a
// timeout the test fails with what it waited for and the text of logs
// (a program's log, say).
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool, logs ...func() string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			var extra []string
			for _, l := range logs {
				extra = append(extra, l())
			}
			t.Fatalf("timed out after %v waiting for %s\n%s", timeout, what, strings.Join(extra, "\n---\n"))
		case <-time.After(10 * time.Millisecond):
		}
	}
}
