package testutil

import (
	"context"
	"os"
	"testing"

	"github.com/cratestream/cratestream/internal/embedded"
)

// Binary returns the path of an installed program a test needs (a server
// or a client such as kcat). When it is missing the test is skipped, or
// fails under CI=true, where .ci/run (make test) installs it.
func Binary(t testing.TB, name string) string {
	t.Helper()
	p, ok := embedded.LookPath(name)
	if !ok {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (CI=true): .ci/run installs it (scripts/install-deps.sh --test)", name)
		}
		t.Skipf("skipping: %s is not installed (`make test` installs it, or: sudo apt-get install %s)", name, name)
	}
	return p
}

// Redis starts a private redis-server for the test and returns its address.
func Redis(t testing.TB) string {
	t.Helper()
	Binary(t, "redis-server")
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
	Binary(t, "clickhouse-server")
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
