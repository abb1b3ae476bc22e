// Package cliconf loads a program's configuration the one way every glowcast
// binary does: defaults, then the YAML file named by -config (unknown fields
// are errors), then the flags given explicitly on the command line.
package cliconf

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load fills cfg (a pointer to a struct already holding the defaults) from
// the -config file found in args, then registers the flags with bind — whose
// defaults are therefore the file's values — and parses args, so that only
// flags given explicitly override the file.
func Load(fs *flag.FlagSet, args []string, cfg any, bind func(fs *flag.FlagSet)) error {
	path := ConfigArg(args)
	if path != "" {
		if err := LoadFile(path, cfg); err != nil {
			return err
		}
	}
	fs.String("config", path, "YAML configuration `file`; flags given explicitly override it")
	bind(fs)
	// flag has printed the problem and the usage; the caller exits 2.
	return Usage(fs.Parse(args))
}

// LoadFile decodes the YAML file at path into cfg, rejecting unknown fields.
func LoadFile(path string, cfg any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return Decode(path, b, cfg)
}

// Decode decodes YAML from b (named name in errors) into cfg.
func Decode(name string, b []byte, cfg any) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config file %s: %w", name, err)
	}
	return nil
}

// ConfigArg returns the file named by -config FILE (or --config=FILE) in
// args, or "" when there is none.
func ConfigArg(args []string) string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		for _, p := range []string{"-config", "--config"} {
			if a == p && i+1 < len(args) {
				return args[i+1]
			}
			if v, ok := strings.CutPrefix(a, p+"="); ok {
				return v
			}
		}
	}
	return ""
}
