package mqttmsg

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"
)

// tlsServer accepts TLS connections for 127.0.0.1 and sends back what
// each one read until its end; it returns the address and a pool trusting
// its certificate.
func tlsServer(t *testing.T) (string, *x509.CertPool, <-chan string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "broker"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan string, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, _ := io.ReadAll(c)
				got <- string(b)
			}()
		}
	}()
	return ln.Addr().String(), pool, got
}

// A TLS broker's connection gathers its writes like a plain one: without
// it every record (one a packet, a PUBACK included) was a system call of
// its own, and an agent's resume over TLS, as shipped, paid one per
// retained message. The server's name is still checked.
func TestTLSBrokerConnectionGathersWritesAndChecksTheName(t *testing.T) {
	addr, pool, got := tlsServer(t)
	ctx := context.Background()
	u, _ := url.Parse("mqtts://" + addr)
	conn, err := dialBroker(ctx, u, &net.Dialer{}, &tls.Config{RootCAs: pool}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	tc, ok := conn.(*tls.Conn)
	if !ok {
		t.Fatalf("mqtts:// connection is a %T, want *tls.Conn", conn)
	}
	if _, ok := tc.NetConn().(*readBuffered); !ok {
		t.Errorf("TLS runs over a %T, want the gathering connection (*readBuffered)", tc.NetConn())
	}
	for range 100 {
		if _, err := conn.Write([]byte("puback")); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close()
	select {
	case s := <-got:
		if s != strings.Repeat("puback", 100) {
			t.Errorf("server read %d bytes, want the 600 written", len(s))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server read nothing")
	}

	// The certificate names 127.0.0.1, not localhost.
	u, _ = url.Parse("mqtts://" + strings.Replace(addr, "127.0.0.1", "localhost", 1))
	conn, err = dialBroker(ctx, u, &net.Dialer{}, &tls.Config{RootCAs: pool}, time.Second)
	if err == nil {
		conn.Close()
		t.Fatal("a certificate for another name was accepted")
	}
	if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("got %v, want the certificate's name refused", err)
	}
}
