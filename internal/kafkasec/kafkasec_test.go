package kafkasec_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cratestream/cratestream/internal/devcert"
	"github.com/cratestream/cratestream/internal/kafkasec"
)

const secret = "s3cr3t-Pa55"

// secureCluster is a kfake cluster with SASL (SCRAM-SHA-512 and PLAIN
// users) on a TLS listener whose certificate a fresh CA signed.
func secureCluster(t *testing.T) (*kfake.Cluster, devcert.Files) {
	t.Helper()
	ca, err := devcert.NewAuthority("test CA")
	if err != nil {
		t.Fatal(err)
	}
	files, err := ca.Issue(t.TempDir(), "broker", "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	tc, err := devcert.ServerTLS(files)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.TLS(tc),
		kfake.Superuser(kafkasec.ScramSHA512, "app", secret),
		kfake.Superuser(kafkasec.Plain, "plain-app", secret),
		kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, files
}

func TestSASLOverTLS(t *testing.T) {
	c, files := secureCluster(t)
	brokers := c.ListenAddrs()
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	otherCA, err := devcert.NewAuthority("someone else")
	if err != nil {
		t.Fatal(err)
	}
	other, err := otherCA.Issue(t.TempDir(), "other", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ok := kafkasec.Config{Mechanism: kafkasec.ScramSHA512, Username: "app", CAFile: files.CA}
	ok.SetPassword(secret)
	withFile := kafkasec.Config{Mechanism: kafkasec.ScramSHA512, Username: "app", PasswordFile: pwFile, CAFile: files.CA}
	plainOK := kafkasec.Config{Mechanism: kafkasec.Plain, Username: "plain-app", CAFile: files.CA}
	plainOK.SetPassword(secret)
	wrongPW := ok
	wrongPW.SetPassword("not-" + secret)
	untrusted := ok
	untrusted.CAFile = other.CA
	noTLS := kafkasec.Config{Mechanism: kafkasec.ScramSHA512, Username: "app"}
	noTLS.SetPassword(secret)

	for _, tc := range []struct {
		name     string
		sec      kafkasec.Config
		wantFail bool
	}{
		{"scram-sha-512", ok, false},
		{"password file", withFile, false},
		{"plain", plainOK, false},
		{"wrong password", wrongPW, true},
		{"untrusted certificate", untrusted, true},
		{"plaintext to the TLS listener", noTLS, true},
		{"nothing", kafkasec.Config{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts, err := tc.sec.Opts()
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			start := time.Now()
			err = kafkasec.Check(ctx, brokers, tc.sec, opts...)
			if !tc.wantFail {
				if err != nil {
					t.Fatalf("Check = %v", err)
				}
				produceAndRead(t, brokers, opts)
				return
			}
			var ce *kafkasec.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Check = %v, want a *ConfigError (after %s)", err, time.Since(start))
			}
			msg := err.Error()
			if !strings.Contains(msg, brokers[0]) || (tc.sec.Mechanism != "" && !strings.Contains(msg, tc.sec.Mechanism)) {
				t.Errorf("error %q does not name the broker and the mechanism", msg)
			}
			if strings.Contains(msg, secret) {
				t.Errorf("error %q carries the password", msg)
			}
			t.Logf("%s (after %s)", msg, time.Since(start).Round(time.Millisecond))
		})
	}
}

func produceAndRead(t *testing.T, brokers []string, opts []kgo.Opt) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("t"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	fs := cl.PollFetches(ctx)
	if err := fs.Err(); err != nil {
		t.Fatal(err)
	}
	if fs.NumRecords() == 0 || string(fs.Records()[0].Value) != "hello" {
		t.Fatalf("read back %d records", fs.NumRecords())
	}
}

// The password never shows: not in --help (even with the environment set),
// not in String, not in configuration errors.
func TestSecretsStaySecret(t *testing.T) {
	env := map[string]string{
		kafkasec.EnvMechanism: "SCRAM-SHA-256",
		kafkasec.EnvUsername:  "app",
		kafkasec.EnvPassword:  secret,
	}
	var c kafkasec.Config
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	c.Register(fs, func(k string) string { return env[k] })
	var help bytes.Buffer
	fs.SetOutput(&help)
	fs.PrintDefaults()
	if strings.Contains(help.String(), secret) {
		t.Errorf("--help shows the password:\n%s", help.String())
	}
	if !strings.Contains(help.String(), "kafka-sasl-mechanism") {
		t.Errorf("--help lacks the SASL flags:\n%s", help.String())
	}
	if s := c.String(); strings.Contains(s, secret) || !strings.Contains(s, "SCRAM-SHA-256") {
		t.Errorf("String() = %q", s)
	}
	if _, err := c.Opts(); err != nil {
		t.Fatalf("Opts from the environment: %v", err)
	}
	for _, bad := range []kafkasec.Config{
		{Mechanism: "SCRAM-SHA-1", Username: "app"},
		{Mechanism: kafkasec.Plain},
		{Username: "app"},
		{Mechanism: kafkasec.Plain, Username: "app", PasswordFile: "/nonexistent/pw"},
		{CAFile: "/nonexistent/ca.pem"},
		{CertFile: "/nonexistent/cert.pem"},
	} {
		bad.SetPassword(secret)
		_, err := bad.Opts()
		if err == nil {
			t.Errorf("%+v: no error", bad)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q carries the password", err)
		}
	}
}
