package clickhouse

import (
	"context"
	"fmt"
	"time"
)

// table is the pending batch of one ClickHouse table. A flushed batch is
// dropped and a new one started, never reset: the old one may still be
// inserting in the background.
type table interface {
	Name() string
	// Len is the number of rows the next Insert would send.
	Len() int
	// Insert sends the pending rows in one INSERT and returns how many. It
	// does not clear them: a failed insert is retried with the same rows.
	// ctx must come from batchContext.
	Insert(ctx context.Context, conn Conn) (int, error)
}

// rowTable buffers rows of a small table (sellers, releases, stats) as
// values in column order and inserts them row by row.
type rowTable struct {
	name    string
	columns string
	rows    [][]any
}

func (t *rowTable) Name() string { return t.name }
func (t *rowTable) Len() int     { return len(t.rows) }
func (t *rowTable) add(row ...any) {
	t.rows = append(t.rows, row)
}

func (t *rowTable) Insert(ctx context.Context, conn Conn) (int, error) {
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+t.name+" ("+t.columns+")")
	if err != nil {
		return 0, fmt.Errorf("prepare %s insert: %w", t.name, err)
	}
	defer b.Close()
	for _, r := range t.rows {
		if err := b.Append(r...); err != nil {
			return 0, fmt.Errorf("append %s row: %w", t.name, err)
		}
	}
	if err := b.Send(); err != nil {
		return 0, fmt.Errorf("insert %s: %w", t.name, err)
	}
	return len(t.rows), nil
}

const (
	sellerColumns  = "username, seller_id, rating_percent, has_rating, ratings_count, ships_from, updated_at, deleted, version"
	releaseColumns = "release_id, title, artists, artist_ids, labels, label_ids, catnos, genres, styles, year, released, formats, format_descriptions, master_id, country, updated_at, deleted, version"
	statsColumns   = "release_id, listing_count, min_price_minor, median_price_minor, currency, last_scraped, updated_at, deleted, version"
	wantColumns    = "user_id, release_id, deleted, updated_at, version"
)

// wantlistTable holds the latest profile of each user seen since the last
// flush: a profile is the user's whole state, so an older one in the same
// batch is superseded rather than written.
type wantlistTable struct {
	users map[string]*profileRows
	rows  int
}

type profileRows struct {
	releases []int64
	wanted   []bool
	version  uint64
	at       time.Time
}

// n is how many rows the profile writes: a sentinel when it has no items.
func (p *profileRows) n() int { return max(1, len(p.releases)) }

func (t *wantlistTable) Name() string { return "user_wantlist" }
func (t *wantlistTable) Len() int     { return t.rows }

func (t *wantlistTable) put(user string, p *profileRows) {
	if t.users == nil {
		t.users = map[string]*profileRows{}
	}
	if old, ok := t.users[user]; ok {
		if old.version > p.version {
			return
		}
		t.rows -= old.n()
	}
	t.users[user] = p
	t.rows += p.n()
}

func (t *wantlistTable) Insert(ctx context.Context, conn Conn) (int, error) {
	b, err := conn.PrepareBatch(ctx, "INSERT INTO user_wantlist ("+wantColumns+")")
	if err != nil {
		return 0, fmt.Errorf("prepare user_wantlist insert: %w", err)
	}
	defer b.Close()
	for user, p := range t.users {
		if len(p.releases) == 0 {
			if err := b.Append(user, int64(0), uint8(1), p.at, p.version); err != nil {
				return 0, fmt.Errorf("append user_wantlist row: %w", err)
			}
			continue
		}
		for i, r := range p.releases {
			if err := b.Append(user, r, b2u(!p.wanted[i]), p.at, p.version); err != nil {
				return 0, fmt.Errorf("append user_wantlist row: %w", err)
			}
		}
	}
	if err := b.Send(); err != nil {
		return 0, fmt.Errorf("insert user_wantlist: %w", err)
	}
	return t.rows, nil
}
