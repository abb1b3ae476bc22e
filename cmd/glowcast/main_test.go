package main

import (
	"context"
	"testing"

	"github.com/glowcast/glowcast/internal/cliconf"
)

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"no arguments", nil, 2},
		{"unknown command", []string{"bogus"}, 2},
		{"demo unknown flag", []string{"demo", "-bogus"}, 2},
		{"scale without png", []string{"scale"}, 2},
		{"help", []string{"-h"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := cliconf.ExitCode(run(context.Background(), tc.args)); got != tc.want {
				t.Errorf("exit code %d, want %d", got, tc.want)
			}
		})
	}
}
