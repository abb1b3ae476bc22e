// Package securitytest holds what glowcast's security tests share: a
// throwaway certificate authority made with crypto/x509 (no external tool),
// and a Mosquitto started from the production configs/mosquitto files with
// only their paths and port rewritten. Its own tests check the broker ACL,
// TLS and credential handling, and the systemd units.
package securitytest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority living in a test's temp dir.
type CA struct {
	Dir      string
	CertFile string
	CRLFile  string
	cert     *x509.Certificate
	key      crypto.Signer
	serial   int64
	revoked  []x509.RevocationListEntry
}

// NewCA makes a CA named name with its certificate in dir/name.crt and an
// empty revocation list in dir/name.crl.
func NewCA(t testing.TB, dir, name string) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &CA{Dir: dir, CertFile: filepath.Join(dir, name+".crt"), CRLFile: filepath.Join(dir, name+".crl"), cert: cert, key: key, serial: 1}
	writePEM(t, ca.CertFile, "CERTIFICATE", der)
	ca.writeCRL(t)
	return ca
}

// Pool is a cert pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// IssueOption changes a certificate Issue makes.
type IssueOption func(*x509.Certificate)

// Server makes a broker certificate for 127.0.0.1 and localhost.
func Server() IssueOption {
	return func(c *x509.Certificate) {
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		c.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		c.DNSNames = []string{"localhost"}
	}
}

// Expired makes a certificate whose validity ended an hour ago.
func Expired() IssueOption {
	return func(c *x509.Certificate) {
		c.NotBefore = time.Now().Add(-48 * time.Hour)
		c.NotAfter = time.Now().Add(-time.Hour)
	}
}

// ValidFor makes a certificate that expires d from now.
func ValidFor(d time.Duration) IssueOption {
	return func(c *x509.Certificate) { c.NotAfter = time.Now().Add(d) }
}

// Issue signs a certificate with common name cn and writes it with its key
// to dir/<file>.crt and dir/<file>.key; it returns the two paths.
func (ca *CA) Issue(t testing.TB, cn, file string, opts ...IssueOption) (certFile, keyFile string) {
	t.Helper()
	key := newKey(t)
	ca.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, o := range opts {
		o(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(ca.Dir, file+".crt"), filepath.Join(ca.Dir, file+".key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", kder)
	return certFile, keyFile
}

// Revoke adds the certificate in certFile to the revocation list.
func (ca *CA) Revoke(t testing.TB, certFile string) {
	t.Helper()
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", certFile)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	ca.revoked = append(ca.revoked, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: time.Now()})
	ca.writeCRL(t)
}

func (ca *CA) writeCRL(t testing.TB) {
	t.Helper()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(int64(len(ca.revoked) + 1)),
		ThisUpdate:                time.Now().Add(-time.Hour),
		NextUpdate:                time.Now().Add(24 * time.Hour),
		RevokedCertificateEntries: ca.revoked,
	}, ca.cert, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, ca.CRLFile, "X509 CRL", der)
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
