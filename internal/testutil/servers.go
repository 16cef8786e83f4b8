package testutil

import (
	"context"
	"os"
	"testing"

	"github.com/cratestream/cratestream/internal/embedded"
)

// requireBinary skips (or fails under CI=true) when a server binary is not
// installed.
func requireBinary(t testing.TB, name string) {
	t.Helper()
	if _, ok := embedded.LookPath(name); !ok {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (CI=true): .ci/run installs it", name)
		}
		t.Skipf("skipping: %s is not installed (`make test` installs it)", name)
	}
}

// Redis starts a private redis-server for the test and returns its address.
func Redis(t testing.TB) string {
	t.Helper()
	requireBinary(t, "redis-server")
	r, err := embedded.StartRedis(context.Background(), embedded.RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r.Addr
}

// ClickHouse starts a private clickhouse-server for the test and returns its
// native-protocol address.
func ClickHouse(t testing.TB) string {
	t.Helper()
	requireBinary(t, "clickhouse-server")
	ch, err := embedded.StartClickHouse(context.Background(), embedded.ClickHouseOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ch.Close)
	return ch.Addr
}

// Kafka starts an embedded 3-broker cluster and returns it.
func Kafka(t testing.TB) *embedded.Kafka {
	t.Helper()
	k, err := embedded.StartKafka(embedded.KafkaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	return k
}
