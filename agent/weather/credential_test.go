package weather

import (
	"os"
	"path/filepath"
	"testing"
)

// The agent unit's SetCredential=weather-key: fallback is a blank file when
// /etc/glowcast/weather-key is absent; that is "no key", not an error.
func TestLoadKeyCredential(t *testing.T) {
	for _, tc := range []struct {
		name, cred, env, want string
	}{
		{"credential", "k-from-cred\n", "", "k-from-cred"},
		{"blank credential falls back to env", "\n", "k-from-env", "k-from-env"},
		{"blank credential, no env", "\n", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, CredentialName), []byte(tc.cred), 0o600); err != nil {
				t.Fatal(err)
			}
			env := map[string]string{"CREDENTIALS_DIRECTORY": dir, KeyEnv: tc.env}
			s, err := Config{}.LoadKey(func(k string) string { return env[k] })
			if err != nil {
				t.Fatalf("LoadKey: %v", err)
			}
			if got := s.Reveal(); got != tc.want {
				t.Errorf("key %q, want %q", got, tc.want)
			}
		})
	}
}
