package configs

import (
	"strings"
	"testing"
)

func TestRewrite(t *testing.T) {
	const text = "listener 8883\ncafile /etc/ca.crt\nmax_queued_messages 1000\nmax_queued_bytes 0"
	tests := []struct {
		name    string
		change  Line
		want    string // a line the result must hold
		wantErr string
	}{
		{"exact line", Line{Match: "listener 8883", With: "listener 1883 127.0.0.1"}, "listener 1883 127.0.0.1", ""},
		{"prefix ending in a space", Line{Match: "cafile ", With: "cafile /tmp/ca"}, "cafile /tmp/ca", ""},
		{"no line matches", Line{Match: "keyfile ", With: "keyfile /k"}, "", `0 lines match "keyfile "`},
		{"no trailing space: not a prefix", Line{Match: "max_queued_messages", With: "x"}, "", `0 lines match "max_queued_messages"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Rewrite("glowcast.conf", text, []Line{tt.change})
			if tt.want == "" {
				if tt.wantErr == "" {
					tt.wantErr = "lines match"
				}
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "glowcast.conf") {
					t.Fatalf("got %v, want an error naming glowcast.conf and %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains("\n"+got+"\n", "\n"+tt.want+"\n") {
				t.Errorf("got %q, want a line %q", got, tt.want)
			}
		})
	}
	if _, err := Rewrite("glowcast.conf", "a 1\na 2", []Line{{Match: "a ", With: "b"}}); err == nil || !strings.Contains(err.Error(), "2 lines match") {
		t.Errorf("a prefix on two lines: got %v, want an error naming 2 matches", err)
	}
}
