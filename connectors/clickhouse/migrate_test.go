package clickhouse

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cratestream/cratestream/internal/testutil"
	chschema "github.com/cratestream/cratestream/schemas/clickhouse"
)

func TestMigrate(t *testing.T) {
	ms, err := chschema.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	last := ms[len(ms)-1].Version
	tables := []string{"listings", "sellers", "releases", "release_stats", "user_wantlist", MigrationsTable}
	ctx := context.Background()
	addr := testutil.ClickHouse(t)

	t.Run("once then twice", func(t *testing.T) {
		conn := connect(t, addr)
		res, err := Migrate(ctx, conn)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Applied) != len(ms) || res.Current != last {
			t.Fatalf("first run: %+v", res)
		}
		for _, tb := range tables {
			if n := scalar[uint64](t, conn, "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = ?", tb); n != 1 {
				t.Fatalf("table %s missing", tb)
			}
		}
		if engine := scalar[string](t, conn, "SELECT engine FROM system.tables WHERE database = currentDatabase() AND name = 'listings'"); engine != "ReplacingMergeTree" {
			t.Fatalf("listings engine %s", engine)
		}
		if key := scalar[string](t, conn, "SELECT sorting_key FROM system.tables WHERE database = currentDatabase() AND name = 'listings'"); strings.ReplaceAll(key, " ", "") != "release_id,listing_id" {
			t.Fatalf("listings sorting key %q", key)
		}
		res, err = Migrate(ctx, conn)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Applied) != 0 || res.Current != last {
			t.Fatalf("second run applied again: %+v", res)
		}
		if n := scalar[uint64](t, conn, "SELECT count() FROM "+MigrationsTable); n != uint64(len(ms)) {
			t.Fatalf("%d version rows, want %d", n, len(ms))
		}
	})

	t.Run("edited migration is refused", func(t *testing.T) {
		conn := connect(t, addr)
		b, err := conn.PrepareBatch(ctx, "INSERT INTO "+MigrationsTable+" (version, name, checksum, applied_at)")
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Append(uint32(1), "001_listings.sql", "0000", time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
		defer conn.Exec(ctx, "ALTER TABLE "+MigrationsTable+" DELETE WHERE checksum = '0000'") //nolint:errcheck
		// OPTIMIZE makes the fake row the only one of version 1, as a
		// migration edited after release would leave it.
		if err := conn.Exec(ctx, "OPTIMIZE TABLE "+MigrationsTable+" FINAL"); err != nil {
			t.Fatal(err)
		}
		if _, err := Migrate(ctx, conn); err == nil || !strings.Contains(err.Error(), "checksum") {
			t.Fatalf("want a checksum error, got %v", err)
		}
	})
}

// Two processes starting at once on an empty server both succeed and the
// schema ends up applied once.
func TestMigrateConcurrently(t *testing.T) {
	addr := testutil.ClickHouse(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		conn := connect(t, addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = Migrate(ctx, conn)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("migrator %d: %v", i, err)
		}
	}
	conn := connect(t, addr)
	ms, _ := chschema.Migrations()
	if n := scalar[uint64](t, conn, "SELECT count(DISTINCT version) FROM "+MigrationsTable); n != uint64(len(ms)) {
		t.Fatalf("%d versions recorded, want %d", n, len(ms))
	}
	res, err := Migrate(ctx, conn)
	if err != nil || len(res.Applied) != 0 {
		t.Fatalf("after the race: %+v, %v", res, err)
	}
}
