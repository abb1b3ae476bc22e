// Package logging sets up log/slog for glowcast's daemons: key=value lines,
// and no timestamp of our own under journald, which adds its own.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// ParseLevel maps debug, info, warn and error to slog levels.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToLower(s))); err != nil {
		return 0, fmt.Errorf("log level %q: use debug, info, warn or error", s)
	}
	return l, nil
}

// New returns a text logger on w at level. When the process runs under
// journald ($JOURNAL_STREAM set) the time key is dropped.
func New(w io.Writer, level slog.Level) *slog.Logger {
	underJournal := os.Getenv("JOURNAL_STREAM") != ""
	opts := &slog.HandlerOptions{Level: level}
	if underJournal {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
