package sensor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeW1 builds a sysfs tree like the kernel's w1 bus for the given devices.
func fakeW1(t *testing.T, devs map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, temp := range devs {
		dir := filepath.Join(root, W1Dir, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "temperature"), []byte(temp), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	// The bus master is listed too and must not be taken for a sensor.
	os.MkdirAll(filepath.Join(root, W1Dir, "w1_bus_master1"), 0o755)
	return root
}

func TestDS18B20(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		want    float64
		wantErr string
	}{
		{"positive", "12312\n", 12.312, ""},
		{"negative", "-4062\n", -4.062, ""},
		{"crc error", "\n", 0, "CRC"},
		{"power-on", "85000\n", 0, "power-on"},
		{"garbage", "YES\n", 0, "unreadable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := fakeW1(t, map[string]string{"28-0316a2794f11": tc.value})
			d, err := FindDS18B20(root)
			if err != nil {
				t.Fatal(err)
			}
			got, err := d.Read(context.Background())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, %v; want error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestDS18B20Missing(t *testing.T) {
	_, err := FindDS18B20(fakeW1(t, nil))
	if err == nil || !strings.Contains(err.Error(), "dtoverlay=w1-gpio") {
		t.Fatalf("got %v, want the fix naming dtoverlay=w1-gpio", err)
	}
}
