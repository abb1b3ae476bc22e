package cliconf

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Main is the body of every glowcast main: run gets a context that ends on
// SIGINT or SIGTERM, and its error decides the exit. flag.ErrHelp exits 0
// silently (the usage was printed); an error that is one of clean is
// printed and exits 0, for endings a supervisor must not restart; a usage
// error exits 2 (flag has already printed its own complaint); any other
// error is printed and exits 1. It does not return.
func Main(name string, run func(ctx context.Context, args []string) error, clean ...error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	os.Exit(exitCode(os.Stderr, name, err, clean))
}

func exitCode(w io.Writer, name string, err error, clean []error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var u *UsageError
	if !errors.As(err, &u) || !strings.HasPrefix(err.Error(), "flag ") {
		fmt.Fprintf(w, "%s: %v\n", name, err)
	}
	for _, c := range clean {
		if errors.Is(err, c) {
			return 0
		}
	}
	return ExitCode(err)
}
