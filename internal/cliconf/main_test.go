package cliconf

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"testing"
)

func TestExitCode(t *testing.T) {
	errSupplanted := errors.New("supplanted")
	for _, tc := range []struct {
		name    string
		err     error
		code    int
		printed string
	}{
		{"success", nil, 0, ""},
		{"help", fmt.Errorf("parse: %w", flag.ErrHelp), 0, ""},
		{"failure", errors.New("broker refused"), 1, "prog: broker refused\n"},
		{"usage", Usage(errors.New("unknown command \"frob\"")), 2, "prog: unknown command \"frob\"\n"},
		{"flag's own complaint", Usage(errors.New("flag provided but not defined: -x")), 2, ""},
		{"clean ending", fmt.Errorf("agent: %w", errSupplanted), 0, "prog: agent: supplanted\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if got := exitCode(&out, "prog", tc.err, []error{errSupplanted}); got != tc.code {
				t.Errorf("exit code %d, want %d", got, tc.code)
			}
			if out.String() != tc.printed {
				t.Errorf("printed %q, want %q", out.String(), tc.printed)
			}
		})
	}
}
