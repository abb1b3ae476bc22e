package sdnotify

import (
	"bytes"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
		call func()
		want string
	}{
		{"ready", func() { Ready("showing forecast") }, "READY=1\nSTATUS=showing forecast"},
		{"status keeps one line", func() { Status("a\nWATCHDOG=1") }, "STATUS=a WATCHDOG=1"},
		{"stopping", Stopping, "STOPPING=1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := listen(t)
			tc.call()
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
	w.Ping()
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
	logs := captureLogs(t)
	Ready("x")
	Status("x")
	Stopping()
	w.Ping()
	if logs.Len() != 0 {
		t.Errorf("notify without systemd logged: %s", logs)
	}
}

// A notify socket that refuses messages is reported once, not once a call.
func TestFailureLoggedOnce(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "gone"))
	warned.Store(false)
	t.Cleanup(func() { warned.Store(false) })
	logs := captureLogs(t)
	Ready("x")
	Status("y")
	Stopping()
	if got := strings.Count(logs.String(), "systemd notify failed"); got != 1 {
		t.Errorf("got %d failure lines, want 1:\n%s", got, logs)
	}
}

func captureLogs(t *testing.T) *bytes.Buffer {
	var b bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&b, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })
	return &b
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
