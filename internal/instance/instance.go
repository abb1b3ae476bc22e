// Package instance owns the host-wide mark that a glowcast daemon holding
// a broker identity is running, so a diagnostic run with the same identity
// (glowcastd doctor, glowcast-agent doctor) can see it and stay off the
// broker: the shipped Mosquitto config makes the user name the client id,
// and a second connection as that user would push the daemon off.
//
// The mark is an abstract Unix socket (Linux), bound for as long as the
// daemon runs and released by the kernel when it ends, however it ends:
// no file to go stale, no directory both need to reach. It is per network
// namespace, which systemd units share with the host unless they set
// PrivateNetwork=.
package instance

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"syscall"
)

// name is the abstract socket name for identity on broker (the broker
// URL or URLs as configured: one identity on two brokers is two sessions
// that do not push each other off); long names are hashed to stay within
// sun_path.
func name(broker, identity string) string {
	const prefix = "@glowcast/mqtt-identity/"
	key := identity + "@" + broker
	if len(prefix)+len(key) > 100 {
		h := sha256.Sum256([]byte(key))
		key = hex.EncodeToString(h[:])
	}
	return prefix + key
}

// Mark is a held mark; Close releases it.
type Mark struct{ c *net.UnixConn }

// Close releases the mark.
func (m *Mark) Close() error {
	if m == nil || m.c == nil {
		return nil
	}
	return m.c.Close()
}

// ErrHeld is Hold's error when another process holds the identity.
var ErrHeld = errors.New("instance: another process on this host holds this broker identity")

// Hold marks identity as in use on broker by this process. An empty
// identity (an anonymous client) marks nothing: the broker does not bind
// its client id.
func Hold(broker, identity string) (*Mark, error) {
	if identity == "" {
		return &Mark{}, nil
	}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name(broker, identity), Net: "unixgram"})
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, ErrHeld
	}
	if err != nil {
		return nil, err
	}
	return &Mark{c: c}, nil
}

// Held reports whether a running process holds identity on broker.
func Held(broker, identity string) bool {
	m, err := Hold(broker, identity)
	if err != nil {
		return errors.Is(err, ErrHeld)
	}
	m.Close()
	return false
}
