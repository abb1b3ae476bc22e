package mqtttest

import (
	"os"
	"strings"
	"testing"
)

func TestShippedConfigKeepsLimits(t *testing.T) {
	shipped, err := os.ReadFile(ShippedPath())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		tls  *TLSFiles
		want []string
		gone []string
	}{
		{"plain", nil, []string{"listener 4242 127.0.0.1", "allow_anonymous true"}, []string{"cafile ", "acl_file ", "require_certificate true"}},
		{"tls", &TLSFiles{CA: "/t/ca", CRL: "/t/crl", Cert: "/t/c", Key: "/t/k", ACL: "/t/acl"}, []string{"listener 4242 127.0.0.1", "cafile /t/ca", "acl_file /t/acl", "allow_anonymous false"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf, err := ShippedConfig(shipped, 4242, tc.tls)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(conf, "\n")
			has := func(l string) bool {
				for _, x := range lines {
					if x == l || (strings.HasSuffix(l, " ") && strings.HasPrefix(x, l)) {
						return true
					}
				}
				return false
			}
			for _, l := range tc.want {
				if !has(l) {
					t.Errorf("derived config lacks %q", l)
				}
			}
			for _, l := range tc.gone {
				if has(l) {
					t.Errorf("derived config still has %q", l)
				}
			}
			// Every limit of the shipped file reaches the test broker.
			for _, l := range ShippedLimits(string(shipped)) {
				if !has(l) {
					t.Errorf("shipped limit %q missing from the derived config", l)
				}
			}
			if len(ShippedLimits(string(shipped))) < 3 {
				t.Errorf("shipped limits: got %q, want max_packet_size, max_queued_messages and max_inflight_messages", ShippedLimits(string(shipped)))
			}
		})
	}
	// A file whose shape changed fails instead of testing something else.
	if _, err := ShippedConfig([]byte("listener 1883\n"), 4242, nil); err == nil {
		t.Error("a config without the shipped listener and TLS lines was accepted")
	}
}

// The broker the tests start runs the shipped limits.
func TestStartRunsShippedConfig(t *testing.T) {
	b := Start(t)
	conf, err := os.ReadFile(b.Dir + "/mosquitto.conf")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(conf), "\nmax_queued_messages ") {
		t.Fatalf("test broker config lacks the shipped max_queued_messages:\n%s", conf)
	}
}
