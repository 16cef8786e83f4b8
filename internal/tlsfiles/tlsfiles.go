// Package tlsfiles builds client TLS configurations from PEM files, the
// same way for Kafka, ClickHouse and Redis.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Client is the TLS of a client: the CAs it trusts (empty: the system's),
// an optional client certificate and key, and the server name to verify
// (empty: the host dialed).
type Client struct {
	CA, Cert, Key, ServerName string
}

// Enabled reports whether any field is set.
func (c Client) Enabled() bool {
	return c.CA != "" || c.Cert != "" || c.Key != "" || c.ServerName != ""
}

// Config loads the files. Errors name the file at fault.
func (c Client) Config() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CA != "" {
		pem, err := os.ReadFile(c.CA)
		if err != nil {
			return nil, fmt.Errorf("TLS CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS CA %s holds no PEM certificate", c.CA)
		}
		tc.RootCAs = pool
	}
	if (c.Cert == "") != (c.Key == "") {
		return nil, errors.New("a TLS client certificate and its key go together")
	}
	if c.Cert != "" {
		cert, err := tls.LoadX509KeyPair(c.Cert, c.Key)
		if err != nil {
			return nil, fmt.Errorf("TLS client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
