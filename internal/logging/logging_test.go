package logging

import (
	"bytes"
	"log/slog"
	"regexp"
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name     string
		journal  string
		level    slog.Level
		wantTime bool
		lines    int // of the four logged below
	}{
		{name: "terminal, info", level: slog.LevelInfo, wantTime: true, lines: 3},
		{name: "journald, info", journal: "8:12345", level: slog.LevelInfo, wantTime: false, lines: 3},
		{name: "journald, warn", journal: "8:12345", level: slog.LevelWarn, wantTime: false, lines: 2},
		{name: "terminal, debug", level: slog.LevelDebug, wantTime: true, lines: 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("JOURNAL_STREAM", tc.journal)
			var buf bytes.Buffer
			log := New(&buf, tc.level).With("device", "kitchen")
			log.Debug("detail", "n", 1)
			log.Info("temps received", "temps_c", []float64{1.5, 2}, "note", "two words")
			log.Warn("broker connection lost; reconnecting", "err", "EOF")
			log.Error("writing to the LED strip", "err", "multi\nline")
			lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
			if len(lines) != tc.lines {
				t.Fatalf("got %d lines, want %d:\n%s", len(lines), tc.lines, buf.String())
			}
			for _, l := range lines {
				// One event per line, key=value, the level and the scope on each.
				if !regexp.MustCompile(`level=(DEBUG|INFO|WARN|ERROR) msg=.* device=kitchen`).MatchString(l) {
					t.Errorf("line %q is not key=value with level, msg and device", l)
				}
				if got := strings.HasPrefix(l, "time="); got != tc.wantTime {
					t.Errorf("time key present: got %v, want %v (JOURNAL_STREAM=%q): %q", got, tc.wantTime, tc.journal, l)
				}
			}
			if (tc.level <= slog.LevelInfo && !strings.Contains(buf.String(), `note="two words"`)) || !strings.Contains(buf.String(), `err="multi\nline"`) {
				t.Errorf("values with spaces or newlines are not quoted on one line:\n%s", buf.String())
			}
		})
	}
}

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in      string
		want    slog.Level
		wantErr bool
	}{
		{in: "debug", want: slog.LevelDebug},
		{in: "INFO", want: slog.LevelInfo},
		{in: "warn", want: slog.LevelWarn},
		{in: "error", want: slog.LevelError},
		{in: "loud", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseLevel(tc.in)
			if (err != nil) != tc.wantErr || (!tc.wantErr && got != tc.want) {
				t.Errorf("got %v, %v; want %v (error %v)", got, err, tc.want, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "use debug, info, warn or error") {
				t.Errorf("error %q does not say the accepted values", err)
			}
		})
	}
}
