package main

import (
	"bytes"
	"context"
	"flag"
	"strings"
	"testing"

	"github.com/glowcast/glowcast/internal/cliconf"
)

// TestExitCodes: a usage mistake exits 2 before anything starts (the
// agent would otherwise connect to the default broker and serve).
func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"unknown command", []string{"bogus"}, 2},
		{"stray argument after flags", []string{"-agent-id", "x", "extra"}, 2},
		{"unknown flag", []string{"-bogus"}, 2},
		{"doctor unknown flag", []string{"doctor", "-bogus"}, 2},
		{"help", []string{"-h"}, 0},
		{"version", []string{"version"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // should anything start, it stops at once
			err := run(ctx, tc.args)
			if got := cliconf.ExitCode(err); got != tc.want {
				t.Errorf("exit code %d (err %v), want %d", got, err, tc.want)
			}
		})
	}
}

func TestUsageListsCommands(t *testing.T) {
	fs := flag.NewFlagSet("glowcast-agent", flag.ContinueOnError)
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	fs.String("broker", "", "broker")
	usage(fs)()
	for _, c := range []string{"doctor", "version", "man", "-broker"} {
		if !strings.Contains(buf.String(), c) {
			t.Errorf("glowcast-agent -h does not mention %q:\n%s", c, buf.String())
		}
	}
}
