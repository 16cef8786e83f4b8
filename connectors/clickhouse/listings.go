package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// ListingRow is one row of the listings table. The sink builds them from
// listings.v1; tests and the search benchmark insert them directly with
// InsertListings.
type ListingRow struct {
	ListingID     int64
	ReleaseID     int64
	Seller        string
	SellerID      int64
	PriceMinor    int64
	Currency      string
	PriceEURMinor int64 // 0: no rate
	ShippingMinor int64
	ShippingState uint8 // pb.ShippingState
	MediaGrade    uint8 // 1 = Mint .. 8 = Poor, 0 = not given
	SleeveGrade   uint8 // 1..8 as media, 9 Generic, 10 Not Graded, 11 No Cover
	ShipsFrom     string
	Available     bool
	SellerRating  float32 // positive feedback percent, 0 = unknown
	SeenAt        time.Time
	Deleted       bool
	Version       uint64
}

// maxMinor bounds money amounts: ten trillion units of a two-digit currency
// is no real price, and the bound keeps EUR conversion and sums far from
// int64 overflow.
const maxMinor = 1_000_000_000_000_000

// maxDateTime is the last second a ClickHouse DateTime (UInt32) holds; the
// client wraps later (and earlier than 1970) times silently.
const maxDateTime = math.MaxUint32

// Validate checks what the client would silently accept and mangle
// (negatives into unsigned, times outside 1970..2106) and what makes no
// sense for a listing.
func (r *ListingRow) Validate() error {
	switch {
	case r.ListingID <= 0:
		return fmt.Errorf("listing id %d is not positive", r.ListingID)
	case r.ReleaseID < 0 || (r.ReleaseID == 0 && !r.Deleted):
		return fmt.Errorf("listing %d: release id %d is not positive", r.ListingID, r.ReleaseID)
	case r.PriceMinor < 0 || r.PriceMinor > maxMinor:
		return fmt.Errorf("listing %d: price %d out of range", r.ListingID, r.PriceMinor)
	case r.PriceEURMinor < 0 || r.PriceEURMinor > 100*maxMinor:
		return fmt.Errorf("listing %d: EUR price %d out of range", r.ListingID, r.PriceEURMinor)
	case r.ShippingMinor < 0 || r.ShippingMinor > maxMinor:
		return fmt.Errorf("listing %d: shipping %d out of range", r.ListingID, r.ShippingMinor)
	case !r.Deleted && !isCurrencyCode(r.Currency):
		return fmt.Errorf("listing %d: currency %q is not an ISO 4217 code", r.ListingID, r.Currency)
	case r.ShippingState > 3:
		return fmt.Errorf("listing %d: unknown shipping state %d", r.ListingID, r.ShippingState)
	case r.MediaGrade > 8:
		return fmt.Errorf("listing %d: unknown media grade %d", r.ListingID, r.MediaGrade)
	case r.SleeveGrade > 11:
		return fmt.Errorf("listing %d: unknown sleeve grade %d", r.ListingID, r.SleeveGrade)
	case math.IsNaN(float64(r.SellerRating)) || r.SellerRating < 0 || r.SellerRating > 100:
		return fmt.Errorf("listing %d: seller rating %v out of 0..100", r.ListingID, r.SellerRating)
	case r.SeenAt.Unix() < 0 || r.SeenAt.Unix() > maxDateTime:
		return fmt.Errorf("listing %d: seen_at %v outside 1970..2106", r.ListingID, r.SeenAt)
	}
	return nil
}

func isCurrencyCode(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

const listingColumns = "listing_id, release_id, seller, seller_id, price_minor, currency, price_eur_minor, shipping_minor, shipping_state, media_grade, sleeve_grade, ships_from, available, seller_rating, seen_at, deleted, version"

const insertListings = "INSERT INTO listings (" + listingColumns + ")"

// listingCols buffers listing rows column by column: a 100,000-row batch is
// 17 slices rather than 1.7M interface values, and goes to the client with
// one Append per column.
type listingCols struct {
	listingID, releaseID []int64
	seller               []string
	sellerID, priceMinor []int64
	currency             []string
	priceEUR, shipping   []int64
	shipState            []uint8
	media, sleeve        []uint8
	shipsFrom            []string
	available            []uint8
	rating               []float32
	seenAt               []int64 // Unix seconds
	deleted              []uint8
	version              []uint64
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func (c *listingCols) add(r *ListingRow) {
	c.listingID = append(c.listingID, r.ListingID)
	c.releaseID = append(c.releaseID, r.ReleaseID)
	c.seller = append(c.seller, r.Seller)
	c.sellerID = append(c.sellerID, r.SellerID)
	c.priceMinor = append(c.priceMinor, r.PriceMinor)
	c.currency = append(c.currency, r.Currency)
	c.priceEUR = append(c.priceEUR, r.PriceEURMinor)
	c.shipping = append(c.shipping, r.ShippingMinor)
	c.shipState = append(c.shipState, r.ShippingState)
	c.media = append(c.media, r.MediaGrade)
	c.sleeve = append(c.sleeve, r.SleeveGrade)
	c.shipsFrom = append(c.shipsFrom, r.ShipsFrom)
	c.available = append(c.available, b2u(r.Available))
	c.rating = append(c.rating, r.SellerRating)
	c.seenAt = append(c.seenAt, r.SeenAt.Unix())
	c.deleted = append(c.deleted, b2u(r.Deleted))
	c.version = append(c.version, r.Version)
}

func (c *listingCols) len() int { return len(c.listingID) }

// appendTo appends the buffered rows to b column by column, in
// listingColumns order.
func (c *listingCols) appendTo(b driver.Batch) error {
	cols := []any{c.listingID, c.releaseID, c.seller, c.sellerID, c.priceMinor, c.currency, c.priceEUR,
		c.shipping, c.shipState, c.media, c.sleeve, c.shipsFrom, c.available, c.rating, c.seenAt, c.deleted, c.version}
	for i, v := range cols {
		if err := b.Column(i).Append(v); err != nil {
			return fmt.Errorf("listings column %d: %w", i, err)
		}
	}
	return nil
}

// InsertListings validates rows and inserts them in one batch. It is what
// the search benchmark and the query tests load data with; the sink uses the
// same column layout.
func InsertListings(ctx context.Context, conn Conn, rows []ListingRow) error {
	var c listingCols
	for i := range rows {
		if err := rows[i].Validate(); err != nil {
			return err
		}
		c.add(&rows[i])
	}
	bctx, done := batchContext(ctx, 10*time.Minute)
	defer done()
	return sendListings(bctx, conn, &c, nil)
}

func sendListings(ctx context.Context, conn Conn, c, extra *listingCols) error {
	b, err := conn.PrepareBatch(ctx, insertListings)
	if err != nil {
		return fmt.Errorf("prepare listings insert: %w", err)
	}
	defer b.Close()
	if err := c.appendTo(b); err != nil {
		return err
	}
	if extra != nil && extra.len() > 0 {
		if err := extra.appendTo(b); err != nil {
			return err
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert listings: %w", err)
	}
	return nil
}

// tombstone is a listings.v1 record with a nil value: the listing is gone.
type tombstone struct {
	listingID int64
	version   uint64
	at        time.Time
}

// listingsTable is the pending batch of the listings table.
type listingsTable struct {
	cols  listingCols
	tombs []tombstone
}

// newListingsTable preallocates rows: a full batch grown by appending
// copies each column several times over.
func newListingsTable(rows int) *listingsTable {
	c := listingCols{
		listingID: make([]int64, 0, rows), releaseID: make([]int64, 0, rows), seller: make([]string, 0, rows),
		sellerID: make([]int64, 0, rows), priceMinor: make([]int64, 0, rows), currency: make([]string, 0, rows),
		priceEUR: make([]int64, 0, rows), shipping: make([]int64, 0, rows), shipState: make([]uint8, 0, rows),
		media: make([]uint8, 0, rows), sleeve: make([]uint8, 0, rows), shipsFrom: make([]string, 0, rows),
		available: make([]uint8, 0, rows), rating: make([]float32, 0, rows), seenAt: make([]int64, 0, rows),
		deleted: make([]uint8, 0, rows), version: make([]uint64, 0, rows),
	}
	return &listingsTable{cols: c}
}

func (t *listingsTable) Name() string { return "listings" }
func (t *listingsTable) Len() int     { return t.cols.len() + len(t.tombs) }

// Insert sends the pending rows plus one deleted row per tombstone. A
// deleted row must carry the listing's release id to replace it (the
// ReplacingMergeTree key is (release_id, listing_id)), and a tombstone has
// only the listing id: it is looked up in this batch first, then in the
// table. A listing never seen gets release id 0, which matches nothing.
func (t *listingsTable) Insert(ctx context.Context, conn Conn) (int, error) {
	var tc listingCols
	if len(t.tombs) > 0 {
		rel, err := t.resolveReleases(ctx, conn)
		if err != nil {
			return 0, err
		}
		for _, tb := range t.tombs {
			tc.add(&ListingRow{ListingID: tb.listingID, ReleaseID: rel[tb.listingID], SeenAt: tb.at, Deleted: true, Version: tb.version})
		}
	}
	if err := sendListings(ctx, conn, &t.cols, &tc); err != nil {
		return 0, err
	}
	return t.Len(), nil
}

// lookupChunk keeps IN lists well under the ~20,000 ids that 18.16 takes.
const lookupChunk = 5000

func (t *listingsTable) resolveReleases(ctx context.Context, conn Conn) (map[int64]int64, error) {
	rel := make(map[int64]int64, len(t.tombs))
	for i, id := range t.cols.listingID {
		rel[id] = t.cols.releaseID[i]
	}
	var missing []any
	seen := map[int64]bool{}
	for _, tb := range t.tombs {
		if _, ok := rel[tb.listingID]; !ok && !seen[tb.listingID] {
			seen[tb.listingID] = true
			missing = append(missing, tb.listingID)
		}
	}
	for len(missing) > 0 {
		n := min(len(missing), lookupChunk)
		chunk := missing[:n]
		missing = missing[n:]
		qctx, cancel := withLimit(ctx, 30*time.Second)
		rows, err := conn.Query(qctx, `SELECT listing_id, argMax(release_id, version) FROM listings PREWHERE listing_id IN @ids AND release_id != 0 GROUP BY listing_id`,
			ch.Named("ids", ch.GroupSet{Value: chunk}))
		if err != nil {
			cancel()
			return nil, fmt.Errorf("look up releases of deleted listings: %w", err)
		}
		for rows.Next() {
			var id, r int64
			if err := rows.Scan(&id, &r); err != nil {
				rows.Close()
				cancel()
				return nil, fmt.Errorf("look up releases of deleted listings: %w", err)
			}
			rel[id] = r
		}
		err = errors.Join(rows.Err(), rows.Close())
		cancel()
		if err != nil {
			return nil, fmt.Errorf("look up releases of deleted listings: %w", err)
		}
	}
	return rel, nil
}

// normCountry trims what scrapers leave around a country name.
func normCountry(s string) string { return strings.TrimSpace(s) }
