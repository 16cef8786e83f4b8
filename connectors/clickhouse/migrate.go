package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"time"

	chschema "github.com/cratestream/cratestream/schemas/clickhouse"
)

// MigrationsTable records applied schema versions.
const MigrationsTable = "schema_migrations"

// ClickHouse has no locks or transactions for DDL, so Migrate is safe by
// construction instead: the bookkeeping table and every statement of every
// migration are idempotent (CREATE ... IF NOT EXISTS, checked by the schema
// package's tests), a version is recorded only after all of its statements
// succeeded, and recording a version twice is harmless (ReplacingMergeTree
// keyed by version; readers use DISTINCT). Two processes migrating at once
// may both run a pending file: each statement then finds its table created
// by the other and does nothing. A process that dies half-way re-runs the
// whole file next time, which is again a no-op for what exists.
const createMigrationsTable = `CREATE TABLE IF NOT EXISTS ` + MigrationsTable + ` (
    version    UInt32,
    name       String,
    checksum   String,
    applied_at DateTime
) ENGINE = ReplacingMergeTree ORDER BY version`

// Server error codes that mean "someone else just did it": a concurrent
// CREATE ... IF NOT EXISTS can still lose the race on old servers.
const (
	codeTableAlreadyExists = 57
	codeDatabaseExists     = 82
)

// MigrateResult says what Migrate did.
type MigrateResult struct {
	Applied []string // files applied by this call, in order
	Current int      // highest recorded version afterwards
}

// Migrate applies the embedded migrations that schema_migrations does not
// list, each once, in version order. It fails when a recorded version's
// checksum differs from the embedded file (a released migration was
// edited). Versions recorded by a newer binary are left alone.
func Migrate(ctx context.Context, conn Conn) (MigrateResult, error) {
	var res MigrateResult
	ms, err := chschema.Migrations()
	if err != nil {
		return res, err
	}
	if err := execDDL(ctx, conn, createMigrationsTable); err != nil {
		return res, fmt.Errorf("migrate: create %s: %w", MigrationsTable, err)
	}
	applied, err := appliedVersions(ctx, conn)
	if err != nil {
		return res, err
	}
	for _, m := range ms {
		if sum, ok := applied[m.Version]; ok {
			if sum != m.Checksum {
				return res, fmt.Errorf("migrate: %s was applied with checksum %s but the embedded file has %s: released migrations must not change, add a new file", m.Name, short(sum), short(m.Checksum))
			}
			continue
		}
		for i, st := range m.Statements() {
			if err := execDDL(ctx, conn, st); err != nil {
				return res, fmt.Errorf("migrate: %s statement %d: %w", m.Name, i+1, err)
			}
		}
		if err := recordVersion(ctx, conn, m); err != nil {
			return res, err
		}
		res.Applied = append(res.Applied, m.Name)
	}
	applied, err = appliedVersions(ctx, conn)
	if err != nil {
		return res, err
	}
	for v := range applied {
		res.Current = max(res.Current, v)
	}
	return res, nil
}

func execDDL(ctx context.Context, conn Conn, stmt string) error {
	qctx, cancel := withLimit(ctx, 60*time.Second)
	defer cancel()
	err := conn.Exec(qctx, stmt)
	if c := exceptionCode(err); (c == codeTableAlreadyExists || c == codeDatabaseExists) && isIfNotExists(stmt) {
		return nil
	}
	return err
}

func isIfNotExists(stmt string) bool {
	return strings.Contains(strings.ToUpper(stmt), "IF NOT EXISTS")
}

// appliedVersions returns version → checksum of the recorded migrations.
func appliedVersions(ctx context.Context, conn Conn) (map[int]string, error) {
	qctx, cancel := withLimit(ctx, 30*time.Second)
	defer cancel()
	rows, err := conn.Query(qctx, `SELECT DISTINCT version, checksum FROM `+MigrationsTable)
	if err != nil {
		return nil, fmt.Errorf("migrate: read %s: %w", MigrationsTable, err)
	}
	defer rows.Close()
	out := map[int]string{}
	for rows.Next() {
		var v uint32
		var sum string
		if err := rows.Scan(&v, &sum); err != nil {
			return nil, fmt.Errorf("migrate: read %s: %w", MigrationsTable, err)
		}
		out[int(v)] = sum
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("migrate: read %s: %w", MigrationsTable, err)
	}
	return out, nil
}

func recordVersion(ctx context.Context, conn Conn, m chschema.Migration) error {
	qctx, done := batchContext(ctx, 30*time.Second)
	defer done()
	b, err := conn.PrepareBatch(qctx, `INSERT INTO `+MigrationsTable+` (version, name, checksum, applied_at)`)
	if err != nil {
		return fmt.Errorf("migrate: record %s: %w", m.Name, err)
	}
	defer b.Close()
	if err := b.Append(uint32(m.Version), m.Name, m.Checksum, time.Now()); err != nil {
		return fmt.Errorf("migrate: record %s: %w", m.Name, err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("migrate: record %s: %w", m.Name, err)
	}
	return nil
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}
