package clickhouse

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/cratestream/cratestream/internal/embedded"
	"github.com/cratestream/cratestream/internal/testutil"
)

// migrated starts a private server, connects and migrates.
func migrated(t *testing.T) Conn {
	t.Helper()
	conn := connect(t, testutil.ClickHouse(t))
	if _, err := Migrate(context.Background(), conn); err != nil {
		t.Fatal(err)
	}
	return conn
}

func connect(t *testing.T, addr string) Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := Open(ctx, ConnOptions{Addr: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// requireClickHouse skips like testutil.ClickHouse for tests that start
// servers themselves (to reuse a data directory).
func requireClickHouse(t *testing.T) {
	t.Helper()
	if _, ok := embedded.LookPath("clickhouse-server"); !ok {
		if os.Getenv("CI") == "true" {
			t.Fatal("clickhouse-server is not installed (CI=true)")
		}
		t.Skip("skipping: clickhouse-server is not installed")
	}
}

func scalar[T any](t *testing.T, conn Conn, sql string, args ...any) T {
	t.Helper()
	var v T
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type wantRow struct {
	user    string
	release int64
	deleted bool
	version uint64
}

func insertWants(t *testing.T, conn Conn, rows ...wantRow) {
	t.Helper()
	b, err := conn.PrepareBatch(context.Background(), "INSERT INTO user_wantlist ("+wantColumns+")")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if err := b.Append(r.user, r.release, b2u(r.deleted), time.Unix(1700000000, 0), r.version); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}
