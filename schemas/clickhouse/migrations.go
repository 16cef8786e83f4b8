// Package clickhouse holds the versioned ClickHouse schema of cratestream:
// NNN_name.sql files embedded in the binary and applied in order by
// connectors/clickhouse.Migrate, which records them in schema_migrations.
//
// Every statement must work on ClickHouse 18.16 (CI) and on current
// ClickHouse (production) and must be idempotent (CREATE ... IF NOT EXISTS):
// two processes may apply the same migration at once, and a process may die
// between a statement and the record of its version. A released file is
// never edited (its checksum is recorded and checked); a change is a new
// file.
package clickhouse

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

//go:embed *.sql
var files embed.FS

// Migration is one versioned schema file.
type Migration struct {
	Version int    // the NNN prefix
	Name    string // file name, "001_listings.sql"
	SQL     string
	// Checksum is the hex SHA-256 of SQL: a recorded migration whose file
	// changed afterwards is an error, not a silent drift.
	Checksum string
}

// Statements returns the migration's statements, split safely.
func (m Migration) Statements() []string { return Split(m.SQL) }

// Migrations returns the embedded migrations sorted by version. File names
// must be NNN_name.sql with distinct versions starting at 1.
func Migrations() ([]Migration, error) {
	names, err := fs.Glob(files, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	out := make([]Migration, 0, len(names))
	seen := map[int]string{}
	for _, name := range names {
		prefix, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must be NNN_name.sql", name)
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", other, name, v)
		}
		seen[v] = name
		b, err := files.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", name, err)
		}
		sum := sha256.Sum256(b)
		m := Migration{Version: v, Name: name, SQL: string(b), Checksum: hex.EncodeToString(sum[:])}
		if len(m.Statements()) == 0 {
			return nil, fmt.Errorf("migration %s has no statement", name)
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Split splits SQL text into statements at semicolons that are outside
// string literals ('...'), quoted identifiers ("..." and `...`) and comments
// (-- to end of line, /* ... */), so a ';' in a comment or a default value
// never cuts a statement. Comments are kept inside their statement (the
// server ignores them); statements that are only whitespace and comments are
// dropped. Backslash escapes inside quotes are honoured as ClickHouse does.
func Split(sql string) []string {
	var out []string
	start := 0
	flush := func(end int) {
		if s := strings.TrimSpace(sql[start:end]); s != "" && !onlyComments(s) {
			out = append(out, s)
		}
	}
	for i := 0; i < len(sql); i++ {
		switch c := sql[i]; {
		case c == '\'' || c == '"' || c == '`':
			i = skipQuoted(sql, i, c)
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			i = skipLine(sql, i)
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			i = skipBlock(sql, i)
		case c == ';':
			flush(i)
			start = i + 1
		}
	}
	flush(len(sql))
	return out
}

// skipQuoted returns the index of the closing quote of the literal opened at
// i (or the last index when it is unterminated). A doubled quote or a
// backslash escape does not close it.
func skipQuoted(s string, i int, q byte) int {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case q:
			if j+1 < len(s) && s[j+1] == q {
				j++
				continue
			}
			return j
		}
	}
	return len(s) - 1
}

func skipLine(s string, i int) int {
	if j := strings.IndexByte(s[i:], '\n'); j >= 0 {
		return i + j
	}
	return len(s) - 1
}

func skipBlock(s string, i int) int {
	if j := strings.Index(s[i+2:], "*/"); j >= 0 {
		return i + 2 + j + 1
	}
	return len(s) - 1
}

// onlyComments reports whether s holds nothing but comments and whitespace.
func onlyComments(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			i = skipLine(s, i)
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			i = skipBlock(s, i)
		default:
			return false
		}
	}
	return true
}
