package brokerconf

import (
	"path/filepath"
	"testing"

	securitytest "github.com/glowcast/glowcast/test/security"
)

func TestIdentity(t *testing.T) {
	dir := t.TempDir()
	ca := securitytest.NewCA(t, dir, "ca")
	cert, _ := ca.Issue(t, "kitchen-cn", "kitchen")
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"certificate's common name wins", Config{Username: "kitchen", CertFile: cert}, "kitchen-cn"},
		{"user name", Config{Username: "kitchen"}, "kitchen"},
		{"fallback", Config{}, "fallback"},
		{"unreadable certificate: user name", Config{Username: "kitchen", CertFile: filepath.Join(dir, "nope.crt")}, "kitchen"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.cfg.Identity("fallback"); got != tc.want {
				t.Errorf("Identity: got %q, want %q", got, tc.want)
			}
		})
	}
}
