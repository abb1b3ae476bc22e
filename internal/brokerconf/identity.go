package brokerconf

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// ClientCert reads the client certificate in cert_file (the key is not
// needed); nil without error when cert_file is unset.
func (c *Config) ClientCert() (*x509.Certificate, error) {
	if c.CertFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(c.CertFile)
	if err != nil {
		return nil, fmt.Errorf("brokerconf: reading %s %s: %w", setCert, c.CertFile, err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("brokerconf: %s %s holds no PEM certificate", setCert, c.CertFile)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("brokerconf: %s %s: %w", setCert, c.CertFile, err)
	}
	return cert, nil
}

// Identity is the user name the broker knows this client by: the common
// name of cert_file (the shipped broker takes the user name from the
// certificate), else username, else fallback. The shipped broker also
// makes it the client id, so two processes with one identity push each
// other off.
func (c *Config) Identity(fallback string) string {
	if cert, err := c.ClientCert(); err == nil && cert != nil && cert.Subject.CommonName != "" {
		return cert.Subject.CommonName
	}
	if c.Username != "" {
		return c.Username
	}
	return fallback
}
