package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"

	"github.com/cratestream/cratestream/internal/grade"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// Queries are the dashboard's read paths. Every value from a caller is
// bound (client-side, quoted by the driver) or sent as an external table,
// never spliced into SQL, and every query carries max_execution_time so a
// query the client gave up on cannot keep a server core busy.
//
// How queries see one version per listing without FINAL (2-10x slower on
// 18.16): the narrow queries (one release, one wantlist) aggregate with
// argMax(x, version) per (release_id, listing_id), which on a few thousand
// rows costs little. Cheapest, the hot one, cannot afford to aggregate
// every listing of 500 releases, so it filters first and verifies after
// (see Cheapest). MarketOverview, a whole-table count, is the exception
// that uses FINAL (see there).
type Queries struct {
	conn Conn
	opts QueryOptions
}

// DefaultQueryTimeout bounds a dashboard query (client and server side).
const DefaultQueryTimeout = 10 * time.Second

// QueryOptions tunes the dashboard queries.
type QueryOptions struct {
	// Timeout bounds each query, sent as max_execution_time too; default
	// DefaultQueryTimeout.
	Timeout time.Duration
	// MaxThreads, when positive, is sent as max_threads. 0 keeps the
	// server's default, which 18.16 on a 2-vCPU machine computes as 1:
	// there, 2 makes the filtered search ~40% faster.
	MaxThreads int
}

// NewQueries returns the dashboard queries on conn.
func NewQueries(conn Conn, opts QueryOptions) *Queries {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultQueryTimeout
	}
	return &Queries{conn: conn, opts: opts}
}

// limit returns ctx with the query limits and settings.
func (q *Queries) limit(ctx context.Context, extra ...ch.Settings) (context.Context, context.CancelFunc) {
	if q.opts.MaxThreads > 0 {
		extra = append(extra, ch.Settings{"max_threads": q.opts.MaxThreads})
	}
	return withLimit(ctx, q.opts.Timeout, extra...)
}

// searchSettings are Cheapest's: short queries over scattered granules of
// popular (so recently read) releases, the case ClickHouse's uncompressed
// block cache is for. It halved the search's latency on 18.16; the server
// must have an uncompressed_cache_size (current releases ship 8 GiB in
// their config; without one the setting does nothing).
func searchSettings() ch.Settings { return ch.Settings{"use_uncompressed_cache": 1} }

// ErrBadQuery wraps invalid query parameters.
var ErrBadQuery = errors.New("bad query parameters")

func badQuery(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadQuery, fmt.Sprintf(format, args...))
}

// GradeCount is a number of listings of one media grade.
type GradeCount struct {
	Grade    uint8  `json:"grade"` // 1 = Mint .. 8 = Poor, 0 = not given
	Name     string `json:"name"`  // "VG+", "" when not given
	Listings uint64 `json:"listings"`
}

// KeyCount is a number of listings of one country or currency.
type KeyCount struct {
	Key      string `json:"key"`
	Listings uint64 `json:"listings"`
}

// MarketOverview counts the live listings (newest version not deleted).
type MarketOverview struct {
	Listings     uint64       `json:"listings"`
	ByMediaGrade []GradeCount `json:"by_media_grade"` // best grade first
	ByShipsFrom  []KeyCount   `json:"by_ships_from"`  // most listings first
	ByCurrency   []KeyCount   `json:"by_currency"`    // most listings first
}

// MarketOverview counts live listings by media grade, ships-from country
// and currency in one pass.
func (q *Queries) MarketOverview(ctx context.Context) (*MarketOverview, error) {
	ctx, cancel := q.limit(ctx)
	defer cancel()
	// A whole-table count is the one place FINAL wins: argMax per listing
	// builds a 10M-key hash table (~25 s on 18.16 at 10M rows) where FINAL
	// merges the sorted parts as it reads (~1 s). The live test is a
	// countIf, not a WHERE, so that no setting or version can apply it
	// before FINAL has picked each listing's newest row.
	rows, err := q.conn.Query(ctx, `
SELECT media_grade, ships_from, currency, countIf(deleted = 0)
FROM listings FINAL
GROUP BY media_grade, ships_from, currency`)
	if err != nil {
		return nil, fmt.Errorf("market overview: %w", err)
	}
	defer rows.Close()
	grades := map[uint8]uint64{}
	countries := map[string]uint64{}
	currencies := map[string]uint64{}
	out := &MarketOverview{ByMediaGrade: []GradeCount{}, ByShipsFrom: []KeyCount{}, ByCurrency: []KeyCount{}}
	for rows.Next() {
		var g uint8
		var sf, cur string
		var n uint64
		if err := rows.Scan(&g, &sf, &cur, &n); err != nil {
			return nil, fmt.Errorf("market overview: %w", err)
		}
		if n == 0 {
			continue
		}
		grades[g] += n
		countries[sf] += n
		currencies[cur] += n
		out.Listings += n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("market overview: %w", err)
	}
	for g, n := range grades {
		out.ByMediaGrade = append(out.ByMediaGrade, GradeCount{Grade: g, Name: grade.Short(pb.MediaGrade(g)), Listings: n})
	}
	// Graded best first, "not given" (0) last.
	sort.Slice(out.ByMediaGrade, func(i, j int) bool {
		a, b := out.ByMediaGrade[i].Grade, out.ByMediaGrade[j].Grade
		return (a != 0 && (b == 0 || a < b))
	})
	out.ByShipsFrom = byCount(countries)
	out.ByCurrency = byCount(currencies)
	return out, nil
}

func byCount(m map[string]uint64) []KeyCount {
	out := make([]KeyCount, 0, len(m))
	for k, n := range m {
		out = append(out, KeyCount{Key: k, Listings: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Listings != out[j].Listings {
			return out[i].Listings > out[j].Listings
		}
		return out[i].Key < out[j].Key
	})
	return out
}

// PriceDistribution summarises the EUR prices of a release's live
// listings. Quantiles are exact nearest-rank values (the element at
// floor(level * n) of the sorted prices), so they are real prices.
type PriceDistribution struct {
	ReleaseID int64  `json:"release_id"`
	Listings  uint64 `json:"listings"` // live listings with an EUR price
	MinEUR    int64  `json:"min_eur_minor"`
	P10EUR    int64  `json:"p10_eur_minor"`
	P25EUR    int64  `json:"p25_eur_minor"`
	MedianEUR int64  `json:"median_eur_minor"`
	P75EUR    int64  `json:"p75_eur_minor"`
	P90EUR    int64  `json:"p90_eur_minor"`
	MaxEUR    int64  `json:"max_eur_minor"`
}

// PriceDistribution returns the quantiles 0.1/0.25/0.5/0.75/0.9, count, min
// and max of the EUR price of release's live listings (those without an EUR
// rate are left out). A release without listings has Listings 0.
func (q *Queries) PriceDistribution(ctx context.Context, release int64) (*PriceDistribution, error) {
	if release <= 0 {
		return nil, badQuery("release id %d is not positive", release)
	}
	ctx, cancel := q.limit(ctx)
	defer cancel()
	var qs []int64
	out := &PriceDistribution{ReleaseID: release}
	err := q.conn.QueryRow(ctx, `
SELECT arrayMap(x -> toInt64(x), quantilesExact(0.1, 0.25, 0.5, 0.75, 0.9)(p)), count(), min(p), max(p)
FROM (
    SELECT argMax(price_eur_minor, version) AS p, argMax(deleted, version) AS d
    FROM listings
    PREWHERE release_id = @release
    GROUP BY release_id, listing_id
)
WHERE d = 0 AND p > 0`, ch.Named("release", release)).Scan(&qs, &out.Listings, &out.MinEUR, &out.MaxEUR)
	if err != nil {
		return nil, fmt.Errorf("price distribution of %d: %w", release, err)
	}
	if out.Listings == 0 {
		return &PriceDistribution{ReleaseID: release}, nil
	}
	if len(qs) != 5 {
		return nil, fmt.Errorf("price distribution of %d: %d quantiles", release, len(qs))
	}
	out.P10EUR, out.P25EUR, out.MedianEUR, out.P75EUR, out.P90EUR = qs[0], qs[1], qs[2], qs[3], qs[4]
	return out, nil
}

// CheapestQuery selects listings for Cheapest.
type CheapestQuery struct {
	// Releases to search (1..MaxQueryIDs).
	Releases []int64 `json:"releases"`
	// MinGrade is the worst acceptable media grade rank (3 = VG+ accepts
	// M, NM and VG+); 0 accepts anything, ungraded included.
	MinGrade uint8 `json:"min_grade"`
	// MinSellerRating is the lowest seller positive-feedback percent; 0
	// accepts unrated sellers.
	MinSellerRating float64 `json:"min_seller_rating"`
	// ShipsFrom restricts the countries; empty accepts all.
	ShipsFrom []string `json:"ships_from"`
	// MaxPriceEURMinor is the highest EUR price in cents; 0 = no limit.
	MaxPriceEURMinor int64 `json:"max_price_eur_minor"`
	// Limit is the number of listings; 0 means 100, at most 1,000.
	Limit int `json:"limit"`
}

// Listing is a live listing returned by Cheapest.
type Listing struct {
	ListingID     int64     `json:"listing_id"`
	ReleaseID     int64     `json:"release_id"`
	Seller        string    `json:"seller"`
	PriceMinor    int64     `json:"price_minor"`
	Currency      string    `json:"currency"`
	PriceEURMinor int64     `json:"price_eur_minor"`
	ShippingMinor int64     `json:"shipping_minor"`
	ShippingState uint8     `json:"shipping_state"`
	MediaGrade    uint8     `json:"media_grade"`
	Media         string    `json:"media"` // "VG+"
	SleeveGrade   uint8     `json:"sleeve_grade"`
	ShipsFrom     string    `json:"ships_from"`
	SellerRating  float32   `json:"seller_rating"`
	SeenAt        time.Time `json:"seen_at"`
}

// MaxQueryIDs bounds id lists bound with IN: 18.16 takes about 20,000.
const MaxQueryIDs = 20_000

const (
	defaultLimit = 100
	maxLimit     = 1000
)

func (c *CheapestQuery) check() error {
	switch {
	case len(c.Releases) == 0:
		return badQuery("no release to search")
	case len(c.Releases) > MaxQueryIDs:
		return badQuery("%d releases, at most %d", len(c.Releases), MaxQueryIDs)
	case c.MinGrade > 8:
		return badQuery("media grade %d is not 0..8", c.MinGrade)
	case math.IsNaN(c.MinSellerRating) || c.MinSellerRating < 0 || c.MinSellerRating > 100:
		return badQuery("seller rating %v is not 0..100", c.MinSellerRating)
	case len(c.ShipsFrom) > 500:
		return badQuery("%d countries, at most 500", len(c.ShipsFrom))
	case c.MaxPriceEURMinor < 0:
		return badQuery("negative price limit")
	case c.Limit < 0 || c.Limit > maxLimit:
		return badQuery("limit %d is not 0..%d", c.Limit, maxLimit)
	}
	for _, r := range c.Releases {
		if r <= 0 {
			return badQuery("release id %d is not positive", r)
		}
	}
	return nil
}

// Cheapest returns the cheapest live, available listings (by EUR price,
// then listing id) of the given releases that pass the filters. Listings
// without an EUR price are left out.
//
// It runs in two steps. The first reads only the narrow columns the
// filters and the order need, over the releases' rows, and returns the
// cheapest (listing, version) pairs that pass, whatever their version: the
// release list goes as an external table (no 500-literal IN to parse) and
// drives the primary index. The second reads the newest version of just
// those listings, with every column, through the index again: a candidate
// is kept when its version is the newest, since a newer version (a price
// change, a tombstone) that passes the filters is a candidate of its own.
// When superseded candidates crowd the page and there may be more passing
// rows, the first step is repeated with a larger window.
func (q *Queries) Cheapest(ctx context.Context, cq CheapestQuery) ([]Listing, error) {
	if err := cq.check(); err != nil {
		return nil, err
	}
	limit := cq.Limit
	if limit == 0 {
		limit = defaultLimit
	}
	// The SQL text varies only by which filters are present; every value
	// is bound or sent as data.
	var where strings.Builder
	var args []any
	where.WriteString("deleted = 0 AND available = 1 AND price_eur_minor > 0")
	if cq.MaxPriceEURMinor > 0 {
		where.WriteString(" AND price_eur_minor <= @max_price")
		args = append(args, ch.Named("max_price", cq.MaxPriceEURMinor))
	}
	if cq.MinGrade > 0 {
		where.WriteString(" AND media_grade BETWEEN 1 AND @grade")
		args = append(args, ch.Named("grade", cq.MinGrade))
	}
	if cq.MinSellerRating > 0 {
		// Compared as Float32, the column's type: 98.7 as a Float64
		// literal is above the Float32 98.7 stored.
		where.WriteString(" AND seller_rating >= toFloat32(@rating)")
		args = append(args, ch.Named("rating", cq.MinSellerRating))
	}
	if len(cq.ShipsFrom) > 0 {
		ships := make([]any, len(cq.ShipsFrom))
		for i, s := range cq.ShipsFrom {
			ships[i] = s
		}
		where.WriteString(" AND ships_from IN @ships")
		args = append(args, ch.Named("ships", ch.GroupSet{Value: ships}))
	}
	sql := `
SELECT listing_id, release_id, version
FROM listings
PREWHERE release_id IN ` + queryReleasesTable + `
WHERE ` + where.String() + `
ORDER BY price_eur_minor, listing_id, version DESC
LIMIT @k`

	k := limit + 16 // slack for superseded candidates
	for round := 0; ; round++ {
		cands, err := q.cheapestCandidates(ctx, sql, cq.Releases, append(args, ch.Named("k", k)))
		if err != nil {
			return nil, err
		}
		newest, err := q.newestRows(ctx, cands)
		if err != nil {
			return nil, err
		}
		out := make([]Listing, 0, limit)
		seen := map[int64]bool{}
		for _, c := range cands {
			n, ok := newest[[2]int64{c.release, c.listing}]
			if !ok || n.version != c.version || n.deleted || seen[c.listing] {
				continue // superseded, or a second copy of one version
			}
			seen[c.listing] = true
			out = append(out, n.Listing)
			if len(out) == limit {
				break
			}
		}
		// Fewer than k candidates means every passing row was seen: the
		// page is complete. Otherwise, with a short page, look further.
		if len(out) == limit || len(cands) < k || round == 3 {
			return out, nil
		}
		k *= 8
	}
}

// queryReleasesTable is the external table carrying Cheapest's releases.
const queryReleasesTable = "cheapest_releases"

type candidate struct {
	listing, release int64
	version          uint64
}

func (q *Queries) cheapestCandidates(ctx context.Context, sql string, releases []int64, args []any) ([]candidate, error) {
	rels, err := ext.NewTable(queryReleasesTable, ext.Column("id", "Int64"))
	if err != nil {
		return nil, fmt.Errorf("cheapest listings: %w", err)
	}
	for _, r := range releases {
		if err := rels.Append(r); err != nil {
			return nil, fmt.Errorf("cheapest listings: %w", err)
		}
	}
	ctx, cancel := q.limit(ch.Context(ctx, ch.WithExternalTable(rels)), searchSettings())
	defer cancel()
	rows, err := q.conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("cheapest listings: %w", err)
	}
	defer rows.Close()
	var out []candidate
	for rows.Next() {
		var c candidate
		if err := rows.Scan(&c.listing, &c.release, &c.version); err != nil {
			return nil, fmt.Errorf("cheapest listings: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cheapest listings: %w", err)
	}
	return out, nil
}

type versionedListing struct {
	Listing
	version uint64
	deleted bool
}

// newestRows returns the newest row (tombstones included) of each
// candidate's (release_id, listing_id), reading only the candidates'
// releases through the primary index.
func (q *Queries) newestRows(ctx context.Context, cands []candidate) (map[[2]int64]versionedListing, error) {
	out := map[[2]int64]versionedListing{}
	rels, ids := []any{}, []any{}
	seenR, seenL := map[int64]bool{}, map[int64]bool{}
	for _, c := range cands {
		if !seenR[c.release] {
			seenR[c.release] = true
			rels = append(rels, c.release)
		}
		if !seenL[c.listing] {
			seenL[c.listing] = true
			ids = append(ids, c.listing)
		}
	}
	const chunk = MaxQueryIDs / 2
	for start := 0; start < len(ids); start += chunk {
		if err := q.newestChunk(ctx, rels, ids[start:min(len(ids), start+chunk)], out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (q *Queries) newestChunk(ctx context.Context, rels, ids []any, out map[[2]int64]versionedListing) error {
	ctx, cancel := q.limit(ctx, searchSettings())
	defer cancel()
	rows, err := q.conn.Query(ctx, `
SELECT listing_id, release_id, version, deleted, seller, price_minor, currency, price_eur_minor, shipping_minor,
       shipping_state, media_grade, sleeve_grade, ships_from, seller_rating, seen_at
FROM listings
PREWHERE release_id IN @releases AND listing_id IN @ids
ORDER BY release_id, listing_id, version DESC
LIMIT 1 BY release_id, listing_id`,
		ch.Named("releases", ch.GroupSet{Value: rels}), ch.Named("ids", ch.GroupSet{Value: ids}))
	if err != nil {
		return fmt.Errorf("cheapest listings, newest versions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var v versionedListing
		var del uint8
		l := &v.Listing
		if err := rows.Scan(&l.ListingID, &l.ReleaseID, &v.version, &del, &l.Seller, &l.PriceMinor, &l.Currency, &l.PriceEURMinor,
			&l.ShippingMinor, &l.ShippingState, &l.MediaGrade, &l.SleeveGrade, &l.ShipsFrom, &l.SellerRating, &l.SeenAt); err != nil {
			return fmt.Errorf("cheapest listings, newest versions: %w", err)
		}
		v.deleted = del != 0
		l.Media = grade.Short(pb.MediaGrade(l.MediaGrade))
		l.SeenAt = l.SeenAt.UTC()
		out[[2]int64{l.ReleaseID, l.ListingID}] = v
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cheapest listings, newest versions: %w", err)
	}
	return nil
}

// WantlistSeller is a seller listing some of a user's wanted releases.
type WantlistSeller struct {
	Seller string `json:"seller"`
	// Releases is how many distinct wanted releases the seller lists.
	Releases uint64 `json:"releases"`
	// MinTotalEURMinor is what buying the cheapest copy of each of them
	// from this seller costs, in EUR cents, shipping not included.
	MinTotalEURMinor int64   `json:"min_total_eur_minor"`
	ReleaseIDs       []int64 `json:"release_ids"` // ascending
}

// SellersForWantlist ranks sellers by how many of user's wanted releases
// they list (live, available, with an EUR price), then by the lowest total,
// then by name. limit 0 means 100, at most 1,000.
func (q *Queries) SellersForWantlist(ctx context.Context, user string, limit int) ([]WantlistSeller, error) {
	switch {
	case user == "":
		return nil, badQuery("no user")
	case limit < 0 || limit > maxLimit:
		return nil, badQuery("limit %d is not 0..%d", limit, maxLimit)
	case limit == 0:
		limit = defaultLimit
	}
	ctx, cancel := q.limit(ctx)
	defer cancel()
	// The user's wantlist is the rows of the user's newest profile version
	// (see 005_user_wantlist.sql); a listing's state is its newest version.
	rows, err := q.conn.Query(ctx, `
SELECT s, count() AS releases, sum(min_p) AS total, groupArray(release_id)
FROM (
    SELECT s, release_id, min(p) AS min_p
    FROM (
        SELECT release_id, argMax(seller, version) AS s, argMax(price_eur_minor, version) AS p,
               argMax(deleted, version) AS d, argMax(available, version) AS a
        FROM listings
        PREWHERE release_id IN (
            SELECT release_id FROM user_wantlist
            WHERE user_id = @user AND deleted = 0
              AND version = (SELECT max(version) FROM user_wantlist WHERE user_id = @user))
        GROUP BY release_id, listing_id
    )
    WHERE d = 0 AND a = 1 AND p > 0
    GROUP BY s, release_id
)
GROUP BY s
ORDER BY releases DESC, total ASC, s ASC
LIMIT @limit`, ch.Named("user", user), ch.Named("limit", limit))
	if err != nil {
		return nil, fmt.Errorf("sellers for wantlist: %w", err)
	}
	defer rows.Close()
	out := []WantlistSeller{}
	for rows.Next() {
		var w WantlistSeller
		if err := rows.Scan(&w.Seller, &w.Releases, &w.MinTotalEURMinor, &w.ReleaseIDs); err != nil {
			return nil, fmt.Errorf("sellers for wantlist: %w", err)
		}
		sort.Slice(w.ReleaseIDs, func(i, j int) bool { return w.ReleaseIDs[i] < w.ReleaseIDs[j] })
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sellers for wantlist: %w", err)
	}
	return out, nil
}

// RecQuality is the online quality of one model version and cascade level:
// of the releases it recommended, how many users then wanted or collected.
type RecQuality struct {
	ModelVersion string  `json:"model_version"`
	Level        string  `json:"level"`
	Recommended  uint64  `json:"recommended"`
	Adopted      uint64  `json:"adopted"`
	AdoptionRate float64 `json:"adoption_rate"` // adopted / recommended, 0 when nothing was recommended
}

// RecQuality sums rec_outcomes since the given time (zero: all), by model
// version and cascade level, newest version first.
func (q *Queries) RecQuality(ctx context.Context, since time.Time) ([]RecQuality, error) {
	ctx, cancel := q.limit(ctx)
	defer cancel()
	if since.IsZero() {
		since = time.Unix(0, 0)
	}
	// FINAL: a replayed event is counted once.
	rows, err := q.conn.Query(ctx, `
SELECT model_version, level, sum(recommended), sum(adopted)
FROM rec_outcomes FINAL
WHERE event_time >= @since
GROUP BY model_version, level
ORDER BY model_version DESC, level ASC`, ch.Named("since", since.UTC()))
	if err != nil {
		return nil, fmt.Errorf("rec quality: %w", err)
	}
	defer rows.Close()
	out := []RecQuality{}
	for rows.Next() {
		var r RecQuality
		if err := rows.Scan(&r.ModelVersion, &r.Level, &r.Recommended, &r.Adopted); err != nil {
			return nil, fmt.Errorf("rec quality: %w", err)
		}
		if r.Recommended > 0 {
			r.AdoptionRate = float64(r.Adopted) / float64(r.Recommended)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("rec quality: %w", err)
	}
	return out, nil
}
