// Package sdnotify tells systemd how a glowcast daemon is doing, for units
// with Type=notify and WatchdogSec=: READY=1 once it serves, STATUS= lines
// that show in `systemctl status`, STOPPING=1, and watchdog pings from the
// daemon's main loop. Outside systemd ($NOTIFY_SOCKET unset) every call
// does nothing.
//
// The calls return nothing: a daemon cannot do anything useful about a
// notify socket that refuses a message, so the first failure is logged (to
// slog's default logger) and later ones are not, to keep a broken socket
// from flooding the journal once per status line.
package sdnotify

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

var warned atomic.Bool

func send(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil && !warned.Swap(true) {
		slog.Warn("systemd notify failed; further failures are not logged", "err", err)
	}
}

// Ready says the service is up, with a status line.
func Ready(status string) { send(daemon.SdNotifyReady + "\nSTATUS=" + oneLine(status)) }

// Status sets the line `systemctl status` shows.
func Status(status string) { send("STATUS=" + oneLine(status)) }

// Stopping says the service is shutting down on purpose.
func Stopping() { send(daemon.SdNotifyStopping) }

// Watchdog paces watchdog pings at half the unit's WatchdogSec=. Its C is
// nil without a watchdog, and a nil channel never fires in a select, so a
// loop can always include it.
type Watchdog struct {
	C <-chan time.Time
	t *time.Ticker
}

// NewWatchdog reads the watchdog timeout systemd gave this process.
func NewWatchdog() *Watchdog {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil || d <= 0 {
		return &Watchdog{}
	}
	t := time.NewTicker(d / 2)
	return &Watchdog{C: t.C, t: t}
}

// Interval is the ping period, 0 without a watchdog.
func (w *Watchdog) Interval() time.Duration {
	if w.t == nil {
		return 0
	}
	d, _ := daemon.SdWatchdogEnabled(false)
	return d / 2
}

// Ping tells systemd the loop is alive. Call it from the loop whose
// progress it vouches for, not from a goroutine of its own.
func (w *Watchdog) Ping() {
	if w.t != nil {
		send(daemon.SdNotifyWatchdog)
	}
}

// Stop releases the ticker.
func (w *Watchdog) Stop() {
	if w.t != nil {
		w.t.Stop()
	}
}

// oneLine keeps a status to one line: a newline would start a new
// assignment in the notify message.
func oneLine(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == '\n' || c == '\r' {
			b[i] = ' '
		}
	}
	return string(b)
}
