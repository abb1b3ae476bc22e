package protocol

import (
	"crypto/rand"
	"encoding/hex"
)

// RandomID returns a fresh process id for a status's boot_id or session,
// or for a one-off client id: 16 hex digits, so two processes never share
// one and it always passes ValidID.
func RandomID() string {
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	return hex.EncodeToString(b[:])
}
