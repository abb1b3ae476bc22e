package clock

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestFileOffset(t *testing.T) {
	p := filepath.Join(t.TempDir(), "skew")
	tests := []struct {
		name    string
		content string // "" leaves the file absent
		want    time.Duration
	}{
		{"absent", "", 0},
		{"ahead", "2h\n", 2 * time.Hour},
		{"behind", "-90m", -90 * time.Minute},
		{"garbage", "soon", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(p)
			if tt.content != "" {
				if err := os.WriteFile(p, []byte(tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			c := NewFileOffset(p)
			got := c.Now().Round(0).Sub(time.Now().Round(0))
			if d := got - tt.want; d < -time.Second || d > time.Second {
				t.Errorf("offset: got %v, want about %v", got, tt.want)
			}
		})
	}
}

func TestFromEnv(t *testing.T) {
	t.Setenv(EnvSkewFile, "")
	if _, ok := FromEnv().(System); !ok {
		t.Errorf("FromEnv without %s: got %T, want System", EnvSkewFile, FromEnv())
	}
	t.Setenv(EnvSkewFile, filepath.Join(t.TempDir(), "skew"))
	if _, ok := FromEnv().(*FileOffset); !ok {
		t.Errorf("FromEnv with %s: got %T, want *FileOffset", EnvSkewFile, FromEnv())
	}
}
