// Package kafkasec is how every Kafka client the binary creates
// authenticates and encrypts: SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) and
// TLS (a CA file, an optional client certificate, a server name), read from
// flags and the environment in one place. Managed Kafka services (Confluent
// Cloud, Aiven, Event Hubs) require SASL over TLS.
//
// Secrets stay secret: the password is read from the environment or a file,
// never from a flag (it would show in ps and in --help defaults), and no
// String, error or log line carries it.
package kafkasec

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/cratestream/cratestream/internal/tlsfiles"
)

// The SASL mechanisms.
const (
	Plain       = "PLAIN"
	ScramSHA256 = "SCRAM-SHA-256"
	ScramSHA512 = "SCRAM-SHA-512"
)

// Environment variables, each the default of its flag.
const (
	EnvMechanism    = "CRATESTREAM_KAFKA_SASL_MECHANISM"
	EnvUsername     = "CRATESTREAM_KAFKA_USERNAME"
	EnvPassword     = "CRATESTREAM_KAFKA_PASSWORD"
	EnvPasswordFile = "CRATESTREAM_KAFKA_PASSWORD_FILE"
	EnvTLS          = "CRATESTREAM_KAFKA_TLS"
	EnvTLSCA        = "CRATESTREAM_KAFKA_TLS_CA"
	EnvTLSCert      = "CRATESTREAM_KAFKA_TLS_CERT"
	EnvTLSKey       = "CRATESTREAM_KAFKA_TLS_KEY"
	EnvServerName   = "CRATESTREAM_KAFKA_TLS_SERVER_NAME"
)

// Config is the security of the Kafka clients. The zero value is plaintext
// without authentication.
type Config struct {
	Mechanism    string // "", PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
	Username     string
	password     string // from EnvPassword; see SetPassword
	PasswordFile string // read when the options are built
	TLS          bool   // implied by any TLS file or the server name
	CAFile       string // trusted CAs (PEM); empty trusts the system's
	CertFile     string // client certificate (PEM), with KeyFile
	KeyFile      string
	ServerName   string // overrides the host name verified
}

// SetPassword sets the password (tests; the binary reads EnvPassword).
func (c *Config) SetPassword(p string) { c.password = p }

// Register adds the flags to fs, with the environment as defaults. The
// password has no flag: set EnvPassword or pass --kafka-password-file.
func (c *Config) Register(fs *flag.FlagSet, getenv func(string) string) {
	c.password = getenv(EnvPassword)
	fs.StringVar(&c.Mechanism, "kafka-sasl-mechanism", getenv(EnvMechanism), "Kafka SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (env "+EnvMechanism+"); the password comes from $"+EnvPassword+" or --kafka-password-file")
	fs.StringVar(&c.Username, "kafka-username", getenv(EnvUsername), "Kafka SASL user (env "+EnvUsername+")")
	fs.StringVar(&c.PasswordFile, "kafka-password-file", getenv(EnvPasswordFile), "file holding the Kafka SASL password (env "+EnvPasswordFile+")")
	fs.BoolVar(&c.TLS, "kafka-tls", truthy(getenv(EnvTLS)), "connect to Kafka over TLS (env "+EnvTLS+"; implied by the other --kafka-tls-* flags)")
	fs.StringVar(&c.CAFile, "kafka-tls-ca", getenv(EnvTLSCA), "PEM file of the CAs trusted for the brokers' certificates; default the system's (env "+EnvTLSCA+")")
	fs.StringVar(&c.CertFile, "kafka-tls-cert", getenv(EnvTLSCert), "PEM client certificate for mutual TLS (env "+EnvTLSCert+")")
	fs.StringVar(&c.KeyFile, "kafka-tls-key", getenv(EnvTLSKey), "PEM key of --kafka-tls-cert (env "+EnvTLSKey+")")
	fs.StringVar(&c.ServerName, "kafka-tls-server-name", getenv(EnvServerName), "host name to verify in the brokers' certificates (env "+EnvServerName+")")
}

func truthy(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

func (c Config) tlsOn() bool {
	return c.TLS || c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" || c.ServerName != ""
}

// String describes the configuration without its secrets.
func (c Config) String() string {
	var parts []string
	if c.Mechanism != "" {
		parts = append(parts, fmt.Sprintf("SASL %s as %q", c.Mechanism, c.Username))
	}
	if c.tlsOn() {
		t := "TLS"
		if c.CAFile != "" {
			t += " (CA " + c.CAFile + ")"
		}
		if c.CertFile != "" {
			t += " with client certificate " + c.CertFile
		}
		parts = append(parts, t)
	}
	if len(parts) == 0 {
		return "plaintext"
	}
	return strings.Join(parts, " over ")
}

// Opts builds the client options: SASL and TLS dialing. Its errors name the
// setting at fault, never the password.
func (c Config) Opts() ([]kgo.Opt, error) {
	var opts []kgo.Opt
	if c.Mechanism != "" || c.Username != "" {
		m, err := c.mechanism()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(m))
	}
	if c.tlsOn() {
		tc, err := c.tlsConfig()
		if err != nil {
			return nil, err
		}
		dialer := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: tc}
		opts = append(opts, kgo.Dialer(dialer.DialContext))
	}
	return opts, nil
}

func (c Config) mechanism() (sasl.Mechanism, error) {
	if c.Username == "" {
		return nil, errors.New("kafka: --kafka-sasl-mechanism needs --kafka-username")
	}
	pass := c.password
	if c.PasswordFile != "" {
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("kafka: password file: %w", err)
		}
		pass = strings.TrimRight(string(b), "\r\n")
	}
	if pass == "" {
		return nil, fmt.Errorf("kafka: SASL user %q has no password: set $%s or --kafka-password-file", c.Username, EnvPassword)
	}
	switch strings.ToUpper(c.Mechanism) {
	case Plain:
		return plain.Auth{User: c.Username, Pass: pass}.AsMechanism(), nil
	case ScramSHA256:
		return scram.Auth{User: c.Username, Pass: pass}.AsSha256Mechanism(), nil
	case ScramSHA512:
		return scram.Auth{User: c.Username, Pass: pass}.AsSha512Mechanism(), nil
	case "":
		return nil, fmt.Errorf("kafka: --kafka-username %q needs --kafka-sasl-mechanism (%s, %s or %s)", c.Username, Plain, ScramSHA256, ScramSHA512)
	}
	return nil, fmt.Errorf("kafka: unknown SASL mechanism %q (want %s, %s or %s)", c.Mechanism, Plain, ScramSHA256, ScramSHA512)
}

func (c Config) tlsConfig() (*tls.Config, error) {
	tc, err := tlsfiles.Client{CA: c.CAFile, Cert: c.CertFile, Key: c.KeyFile, ServerName: c.ServerName}.Config()
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	return tc, nil
}

// ConfigError is a failure no retry can mend: wrong credentials, an
// untrusted certificate, a broker that speaks another protocol.
type ConfigError struct {
	Broker   string
	Security string // the Config's String
	Err      error
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("kafka broker %s refused this client's security settings (%s): %v", e.Broker, e.Security, e.Err)
}

func (e *ConfigError) Unwrap() error { return e.Err }

// IsConfigError reports whether err is (or wraps) a security failure that a
// retry cannot mend.
func IsConfigError(err error) bool {
	var ce *ConfigError
	if errors.As(err, &ce) {
		return true
	}
	return isSecurityErr(err)
}

func isSecurityErr(err error) bool {
	var (
		uae  x509.UnknownAuthorityError
		hne  x509.HostnameError
		cie  x509.CertificateInvalidError
		cve  *tls.CertificateVerificationError
		rhe  tls.RecordHeaderError
		alrt tls.AlertError
		eof  *kgo.ErrFirstReadEOF // the broker hung up on the first request: TLS or SASL missing
	)
	return errors.Is(err, kerr.SaslAuthenticationFailed) || errors.Is(err, kerr.UnsupportedSaslMechanism) ||
		errors.Is(err, kerr.IllegalSaslState) || errors.Is(err, kerr.ClusterAuthorizationFailed) ||
		errors.As(err, &uae) || errors.As(err, &hne) || errors.As(err, &cie) || errors.As(err, &cve) ||
		errors.As(err, &rhe) || errors.As(err, &alrt) || errors.As(err, &eof)
}

// Check asks each seed broker for metadata once, with the client options
// opts (which must hold the security options). When one answers it returns
// nil; when a broker refuses the security settings it returns a
// *ConfigError naming it — the caller should stop, not retry. Otherwise
// (nothing reachable in time) the last error.
func Check(ctx context.Context, brokers []string, sec Config, opts ...kgo.Opt) error {
	var last error
	for _, b := range brokers {
		err := ping(ctx, b, opts)
		if err == nil {
			return nil
		}
		if isSecurityErr(err) {
			return &ConfigError{Broker: b, Security: sec.String(), Err: err}
		}
		last = fmt.Errorf("kafka broker %s: %w", b, err)
	}
	return last
}

func ping(ctx context.Context, broker string, opts []kgo.Opt) error {
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...), kgo.SeedBrokers(broker), kgo.RequestRetries(0))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return cl.Ping(pctx)
}
