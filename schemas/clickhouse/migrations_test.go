package clickhouse

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", nil},
		{"only comments", "-- a;\n/* b; */\n", nil},
		{"one without semicolon", "SELECT 1", []string{"SELECT 1"}},
		{"two", "SELECT 1;\nSELECT 2;\n", []string{"SELECT 1", "SELECT 2"}},
		{"semicolon in string", "SELECT 'a;b'; SELECT 2", []string{"SELECT 'a;b'", "SELECT 2"}},
		{"escaped quote", `SELECT 'it\'s;'; SELECT 2`, []string{`SELECT 'it\'s;'`, "SELECT 2"}},
		{"doubled quote", "SELECT 'it''s;'; SELECT 2", []string{"SELECT 'it''s;'", "SELECT 2"}},
		{"quoted identifiers", "SELECT \"a;\" , `b;`; SELECT 2", []string{"SELECT \"a;\" , `b;`", "SELECT 2"}},
		{"line comment", "SELECT 1 -- not; here\n;SELECT 2", []string{"SELECT 1 -- not; here", "SELECT 2"}},
		{"block comment", "SELECT /* ; */ 1; SELECT 2", []string{"SELECT /* ; */ 1", "SELECT 2"}},
		{"leading comment kept", "-- why\nCREATE TABLE t (x Int8) ENGINE = Memory;", []string{"-- why\nCREATE TABLE t (x Int8) ENGINE = Memory"}},
		{"unterminated string", "SELECT 'a;", []string{"SELECT 'a;"}},
		{"empty statements", ";;\n;SELECT 1;;", []string{"SELECT 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Split(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Split(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// Every statement must be idempotent and avoid what 18.16 or current
// ClickHouse reject (see ../../../shared/clickhouse.md).
func TestMigrationsAreOrderedIdempotentAndPortable(t *testing.T) {
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 5 {
		t.Fatalf("want at least 5 migrations, got %d", len(ms))
	}
	idempotent := regexp.MustCompile(`(?is)^(--[^\n]*\n\s*)*CREATE\s+(TABLE|VIEW|MATERIALIZED\s+VIEW|DATABASE)\s+IF\s+NOT\s+EXISTS\b`)
	forbidden := []string{"LowCardinality", "DateTime64", "Bool", "Map(", "TTL", "CODEC", "INDEX", "is_deleted", "Nullable", "PARTITION BY"}
	for i, m := range ms {
		if m.Version != i+1 {
			t.Errorf("%s: version %d, want %d (no gaps)", m.Name, m.Version, i+1)
		}
		if len(m.Checksum) != 64 {
			t.Errorf("%s: checksum %q", m.Name, m.Checksum)
		}
		for _, st := range m.Statements() {
			if !idempotent.MatchString(st) {
				t.Errorf("%s: statement is not CREATE ... IF NOT EXISTS:\n%s", m.Name, st)
			}
			code := stripComments(st)
			for _, f := range forbidden {
				if strings.Contains(code, f) {
					t.Errorf("%s: uses %q, which 18.16 or the sink's layout rules out", m.Name, f)
				}
			}
			if strings.Contains(code, "MergeTree") && !strings.Contains(code, "ReplacingMergeTree(version)") {
				t.Errorf("%s: tables must be ReplacingMergeTree(version)", m.Name)
			}
		}
	}
}

func stripComments(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if i := strings.Index(line, "--"); i >= 0 {
			line = line[:i]
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}
