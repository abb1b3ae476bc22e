package ledstriptest

import (
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	// One GRB LED: G=0x80 (bits 1000 0000), R=0xff, B=0x01.
	good := []byte{0, 0, 0,
		0xe8, 0x88, 0x88, 0x88,
		0xee, 0xee, 0xee, 0xee,
		0x88, 0x88, 0x88, 0x8e,
		0, 0, 0}
	leds, err := Decode(good, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := leds[0], []byte{0x80, 0xff, 0x01}; string(got) != string(want) {
		t.Errorf("got % x, want % x", got, want)
	}
	for _, tc := range []struct {
		name  string
		edit  func([]byte) []byte
		n, ch int
		want  string
	}{
		{"length", func(b []byte) []byte { return b[:len(b)-1] }, 1, 3, "want 18"},
		{"channels", func(b []byte) []byte { return b }, 1, 4, "want 22"},
		{"padding", func(b []byte) []byte { b[len(b)-1] = 1; return b }, 1, 3, "padding"},
		{"nibble", func(b []byte) []byte { b[5] = 0x8c; return b }, 1, 3, "nibble 0xc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.edit(append([]byte(nil), good...)), tc.n, tc.ch)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
