package mqtttest

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/glowcast/glowcast/configs"
)

// ShippedPath is configs/mosquitto/glowcast.conf in this source tree.
func ShippedPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "configs", "mosquitto", "glowcast.conf")
}

// TLSFiles are the files the shipped config names, as a test has them.
// Password selects authentication option B (password file) instead of
// option A (client certificates).
type TLSFiles struct {
	CA, CRL, Cert, Key, ACL, Passwd string
	Password                        bool
}

// ShippedConfig derives a broker config from the shipped glowcast.conf
// (its text in shipped): the listener is bound to port on loopback; with
// tls nil it is plain and anonymous (TLS, authentication and the ACL are
// left out, and with them use_username_as_clientid, which refuses clients
// without a user name), otherwise the file paths are tls's. Every other line — the
// limits above all — is kept verbatim, so a change to the shipped file is
// what the tests, the fault campaign and the benchmarks run. Every rewrite
// must apply exactly once: a change to the file's shape fails loudly
// instead of silently testing something else.
func ShippedConfig(shipped []byte, port int, tls *TLSFiles) (string, error) {
	rewrite := func(match, with string) configs.Line { return configs.Line{Match: match, With: with} }
	rw := []configs.Line{rewrite("listener 8883", fmt.Sprintf("listener %d 127.0.0.1", port))}
	if tls == nil {
		for _, m := range []string{"tls_version ", "cafile ", "certfile ", "keyfile ", "crlfile ",
			"require_certificate true", "use_identity_as_username true", "acl_file ",
			// Anonymous clients have no user name to take as their client id.
			"use_username_as_clientid true"} {
			rw = append(rw, rewrite(m, "#"+m+" (left out: plain test listener)"))
		}
		rw = append(rw, rewrite("allow_anonymous false", "allow_anonymous true"))
	} else {
		rw = append(rw,
			rewrite("cafile ", "cafile "+tls.CA),
			rewrite("certfile ", "certfile "+tls.Cert),
			rewrite("keyfile ", "keyfile "+tls.Key),
			rewrite("crlfile ", "crlfile "+tls.CRL),
			rewrite("acl_file ", "acl_file "+tls.ACL))
		if tls.Password {
			rw = append(rw,
				rewrite("require_certificate true", "#require_certificate true"),
				rewrite("use_identity_as_username true", "#use_identity_as_username true"),
				rewrite("#password_file ", "password_file "+tls.Passwd))
		}
	}
	conf, err := configs.Rewrite("glowcast.conf", string(shipped), rw)
	if err != nil {
		return "", fmt.Errorf("mqtttest: %w", err)
	}
	conf += "\n"
	if tls != nil && os.Geteuid() == 0 {
		// As root Mosquitto drops to its own user, which cannot read the
		// test's private temp dir; a real install has its own files.
		conf += "user root\n"
	}
	return conf, nil
}

// ShippedLimits returns the max_* lines of a config, for reports.
func ShippedLimits(conf string) []string {
	var out []string
	for _, l := range strings.Split(conf, "\n") {
		if strings.HasPrefix(l, "max_") {
			out = append(out, l)
		}
	}
	return out
}
