package main

import (
	"bytes"
	"context"
	"flag"
	"strings"
	"testing"

	"github.com/glowcast/glowcast/internal/cliconf"
)

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"unknown command", []string{"bogus"}, 2},
		{"unknown flag", []string{"-bogus"}, 2},
		{"init unknown flag", []string{"init", "-bogus"}, 2},
		{"init stray argument", []string{"init", "-config", t.TempDir() + "/x.yaml", "extra"}, 2},
		{"help", []string{"-h"}, 0},
		{"version", []string{"version"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(context.Background(), tc.args)
			if got := cliconf.ExitCode(err); got != tc.want {
				t.Errorf("exit code %d (err %v), want %d", got, err, tc.want)
			}
		})
	}
}

func TestUsageListsCommands(t *testing.T) {
	fs := flag.NewFlagSet("glowcastd", flag.ContinueOnError)
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	fs.String("broker", "", "broker")
	usage(fs)()
	for _, c := range []string{"init", "doctor", "ledtest", "version", "-broker"} {
		if !strings.Contains(buf.String(), c) {
			t.Errorf("glowcastd -h does not mention %q:\n%s", c, buf.String())
		}
	}
}
