package redis_test

import (
	"context"
	"strings"
	"testing"

	"github.com/cratestream/cratestream/connectors/redis"
	"github.com/cratestream/cratestream/internal/devcert"
	"github.com/cratestream/cratestream/internal/embedded"
	"github.com/cratestream/cratestream/internal/testutil"
	"github.com/cratestream/cratestream/internal/tlsfiles"
)

const secret = "r3d1s-Pa55"

// An ACL user with a password, over TLS (Redis's tls-port): the right
// settings work; a wrong password, a missing TLS or an untrusted CA fail at
// Open with an error that does not carry the password.
func TestACLUserOverTLS(t *testing.T) {
	testutil.Binary(t, "redis-server")
	ca, err := devcert.NewAuthority("redis test CA")
	if err != nil {
		t.Fatal(err)
	}
	files, err := ca.Issue(t.TempDir(), "redis", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := embedded.StartRedis(context.Background(), embedded.RedisOptions{User: "cratestream", Password: secret, TLS: &files})
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
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		o    redis.Options
		ok   bool
	}{
		{"acl user over tls", redis.Options{Username: "cratestream", Password: secret, TLS: trusted}, true},
		{"wrong password", redis.Options{Username: "cratestream", Password: "nope", TLS: trusted}, false},
		{"default user", redis.Options{Password: secret, TLS: trusted}, false},
		{"no tls", redis.Options{Username: "cratestream", Password: secret}, false},
		{"untrusted certificate", redis.Options{Username: "cratestream", Password: secret, TLS: untrusted}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Addr = srv.Addr
			s, err := redis.Open(ctx, tc.o)
			if !tc.ok {
				if err == nil {
					s.Close()
					t.Fatal("Open succeeded")
				}
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q carries the password", err)
				}
				t.Log(err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.SetListingIDs(ctx, 7, []int64{1, 2}); err != nil {
				t.Fatal(err)
			}
			if ids, err := s.ListingIDs(ctx, 7); err != nil || len(ids) != 2 {
				t.Fatalf("ListingIDs = %v, %v", ids, err)
			}
		})
	}
}
