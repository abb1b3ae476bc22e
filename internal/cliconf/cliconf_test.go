package cliconf

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type cfg struct {
	Broker   string        `yaml:"broker"`
	Interval time.Duration `yaml:"interval"`
	LEDs     int           `yaml:"leds"`
}

func (c *cfg) bind(fs *flag.FlagSet) {
	fs.StringVar(&c.Broker, "broker", c.Broker, "")
	fs.DurationVar(&c.Interval, "interval", c.Interval, "")
	fs.IntVar(&c.LEDs, "leds", c.LEDs, "")
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	os.WriteFile(file, []byte("broker: tcp://file:1883\ninterval: 10m\n"), 0o600)
	tests := []struct {
		name string
		args []string
		want cfg
	}{
		{"defaults", nil, cfg{"tcp://default:1883", 30 * time.Minute, 5}},
		{"file over defaults", []string{"-config", file}, cfg{"tcp://file:1883", 10 * time.Minute, 5}},
		{"flags over file", []string{"--config=" + file, "--interval", "1m"}, cfg{"tcp://file:1883", time.Minute, 5}},
		{"flag before -config", []string{"--leds", "7", "-config", file}, cfg{"tcp://file:1883", 10 * time.Minute, 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg{"tcp://default:1883", 30 * time.Minute, 5}
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			if err := Load(fs, tt.args, &c, c.bind); err != nil {
				t.Fatal(err)
			}
			if c != tt.want {
				t.Errorf("got %+v, want %+v", c, tt.want)
			}
		})
	}
}

func TestFileErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content, want string
	}{
		{"unknown field", "brokr: x\n", "field brokr not found"},
		{"wrong type", "leds: many\n", "cannot unmarshal"},
		{"bad duration", "interval: soon\n", "line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(dir, tt.name+".yaml")
			os.WriteFile(file, []byte(tt.content), 0o600)
			var c cfg
			err := Load(flag.NewFlagSet("t", flag.ContinueOnError), []string{"-config", file}, &c, c.bind)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), file) {
				t.Fatalf("got %v, want an error naming %s and containing %q", err, file, tt.want)
			}
		})
	}
	var c cfg
	err := Load(flag.NewFlagSet("t", flag.ContinueOnError), []string{"-config", filepath.Join(dir, "missing.yaml")}, &c, c.bind)
	if err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("missing file: got %v", err)
	}
}
