package sdnotify

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// listen makes a notify socket as systemd does and points $NOTIFY_SOCKET
// at it.
func listen(t *testing.T) *net.UnixConn {
	t.Helper()
	p := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: p, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", p)
	return c
}

func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	b := make([]byte, 4096)
	n, err := c.Read(b)
	if err != nil {
		t.Fatalf("no notify message: %v", err)
	}
	return string(b[:n])
}

func TestMessages(t *testing.T) {
	cases := []struct {
		name string
		call func() error
		want string
	}{
		{"ready", func() error { return Ready("showing forecast") }, "READY=1\nSTATUS=showing forecast"},
		{"status keeps one line", func() error { return Status("a\nWATCHDOG=1") }, "STATUS=a WATCHDOG=1"},
		{"stopping", Stopping, "STOPPING=1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := listen(t)
			if err := tc.call(); err != nil {
				t.Fatal(err)
			}
			if got := recv(t, c); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestWatchdog(t *testing.T) {
	c := listen(t)
	t.Setenv("WATCHDOG_USEC", "200000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	w := NewWatchdog()
	defer w.Stop()
	if got, want := w.Interval(), 100*time.Millisecond; got != want {
		t.Errorf("interval: got %v, want %v", got, want)
	}
	select {
	case <-w.C:
	case <-time.After(2 * time.Second):
		t.Fatal("watchdog ticker did not fire")
	}
	if err := w.Ping(); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, c); got != "WATCHDOG=1" {
		t.Errorf("got %q, want WATCHDOG=1", got)
	}
}

func TestNoSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	t.Setenv("WATCHDOG_USEC", "")
	w := NewWatchdog()
	defer w.Stop()
	if w.C != nil || w.Interval() != 0 {
		t.Errorf("watchdog without systemd: got C=%v interval=%v, want nil and 0", w.C, w.Interval())
	}
	for name, err := range map[string]error{"ready": Ready("x"), "status": Status("x"), "stopping": Stopping(), "ping": w.Ping()} {
		if err != nil {
			t.Errorf("%s without systemd: got %v, want nil", name, err)
		}
	}
}

func TestWatchdogForAnotherProcess(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "200000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()+1))
	w := NewWatchdog()
	defer w.Stop()
	if w.C != nil {
		t.Errorf("watchdog meant for pid %d armed in pid %d", os.Getpid()+1, os.Getpid())
	}
}
