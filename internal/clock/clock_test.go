package clock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
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

func TestSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		t0 := time.Now()
		if err := Sleep(ctx, time.Minute); err != nil || time.Since(t0) != time.Minute {
			t.Fatalf("Sleep(1m): %v after %v, want nil after 1m", err, time.Since(t0))
		}
		time.AfterFunc(time.Second, cancel)
		t0 = time.Now()
		if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) || time.Since(t0) != time.Second {
			t.Fatalf("Sleep(1h) cancelled after 1s: %v after %v, want context.Canceled after 1s", err, time.Since(t0))
		}
		if err := Sleep(ctx, 0); !errors.Is(err, context.Canceled) {
			t.Fatalf("Sleep(0) on an ended context: %v, want context.Canceled", err)
		}
	})
}
