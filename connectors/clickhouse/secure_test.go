package clickhouse

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cratestream/cratestream/internal/devcert"
	"github.com/cratestream/cratestream/internal/embedded"
	"github.com/cratestream/cratestream/internal/tlsfiles"
)

const chSecret = "cl1ckh0use-Pa55"

// A server with a password and a TLS native port (Debian's 18.16 serves
// tcp_port_secure): the right password over TLS migrates and queries; a
// wrong password, plaintext to the TLS port or an untrusted CA fail at
// Open without the password in the error.
func TestPasswordOverTLS(t *testing.T) {
	requireClickHouse(t)
	ca, err := devcert.NewAuthority("clickhouse test CA")
	if err != nil {
		t.Fatal(err)
	}
	files, err := ca.Issue(t.TempDir(), "clickhouse", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := embedded.StartClickHouse(context.Background(), embedded.ClickHouseOptions{Dir: t.TempDir(), Password: chSecret, TLS: &files})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	trusted, err := tlsfiles.Client{CA: files.CA}.Config()
	if err != nil {
		t.Fatal(err)
	}
	otherCA, _ := devcert.NewAuthority("other")
	other, err := otherCA.Issue(t.TempDir(), "other", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	untrusted, err := tlsfiles.Client{CA: other.CA}.Config()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		o    ConnOptions
		ok   bool
	}{
		{"password over tls", ConnOptions{Addr: []string{srv.SecureAddr}, Password: chSecret, TLS: trusted}, true},
		{"password in plaintext", ConnOptions{Addr: []string{srv.Addr}, Password: chSecret}, true},
		{"wrong password", ConnOptions{Addr: []string{srv.SecureAddr}, Password: "nope", TLS: trusted}, false},
		{"no password", ConnOptions{Addr: []string{srv.Addr}}, false},
		{"plaintext to the tls port", ConnOptions{Addr: []string{srv.SecureAddr}, Password: chSecret}, false},
		{"untrusted certificate", ConnOptions{Addr: []string{srv.SecureAddr}, Password: chSecret, TLS: untrusted}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			tc.o.DialTimeout = 2 * time.Second
			conn, err := Open(ctx, tc.o)
			if !tc.ok {
				if err == nil {
					conn.Close()
					t.Fatal("Open succeeded")
				}
				if strings.Contains(err.Error(), chSecret) {
					t.Errorf("error %q carries the password", err)
				}
				t.Log(err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := Migrate(ctx, conn); err != nil {
				t.Fatal(err)
			}
			if n := scalar[uint64](t, conn, "SELECT count() FROM system.tables WHERE database = currentDatabase()"); n == 0 {
				t.Error("no tables after the migration")
			}
		})
	}
}
