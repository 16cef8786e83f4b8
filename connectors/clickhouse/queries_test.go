package clickhouse

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

// l builds a hand-made listing row.
func l(id, rel int64, seller string, price int64, cur string, eur int64, media uint8, ships string, avail bool, rating float32, v uint64) ListingRow {
	return ListingRow{ListingID: id, ReleaseID: rel, Seller: seller, PriceMinor: price, Currency: cur, PriceEURMinor: eur,
		ShippingState: 1, ShippingMinor: 300, MediaGrade: media, SleeveGrade: media, ShipsFrom: ships, Available: avail,
		SellerRating: rating, SeenAt: time.Unix(1700000000+int64(v), 0), Version: v}
}

func deleted(id, rel int64, v uint64) ListingRow {
	return ListingRow{ListingID: id, ReleaseID: rel, SeenAt: time.Unix(1700000000, 0), Deleted: true, Version: v}
}

// The hand-built market. Newest versions, by release:
//
//	100: L1 alice 1000 EUR g2 DE; L2 bob 850 (900 USD) g3 US 98.7 (v1 was 1417);
//	     L3 carol 580 (500 GBP) g4 UK; L4 dave 700 g1 DE - deleted; L5 erin no EUR rate
//	     g2 JP; L6 frank 1200 g2 FR unavailable; L12 alice 900 g2 DE
//	200: L7 alice 3000 g3 DE; L8 bob 4000 g2 US (v1 was 1400); L9 carol 100 g6 UK;
//	     L13 gina 50 g2 NL rating 90
//	300: L10 alice 800 g2 DE; L11 bob 600 g5 US (v1 was g2)
//
// L1 is also inserted twice with the same version (a replay).
func loadMarket(t *testing.T, conn Conn) {
	t.Helper()
	ctx := context.Background()
	batches := [][]ListingRow{
		{
			l(1, 100, "alice", 1000, "EUR", 1000, 2, "DE", true, 99.5, 1),
			l(2, 100, "bob", 1500, "USD", 1417, 3, "US", true, 98.7, 1),
			l(3, 100, "carol", 500, "GBP", 580, 4, "UK", true, 100, 2),
			l(4, 100, "dave", 700, "EUR", 700, 1, "DE", true, 99, 3),
			l(5, 100, "erin", 2000, "JPY", 0, 2, "JP", true, 99, 4),
			l(6, 100, "frank", 1200, "EUR", 1200, 2, "FR", false, 99.9, 2),
			l(7, 200, "alice", 3000, "EUR", 3000, 3, "DE", true, 99.5, 1),
			l(8, 200, "bob", 1400, "EUR", 1400, 2, "US", true, 98.7, 1),
			l(9, 200, "carol", 100, "EUR", 100, 6, "UK", true, 100, 1),
			l(10, 300, "alice", 800, "EUR", 800, 2, "DE", true, 99.5, 1),
			l(11, 300, "bob", 600, "EUR", 600, 2, "US", true, 98.7, 1),
		},
		{
			l(2, 100, "bob", 900, "USD", 850, 3, "US", true, 98.7, 5),
			deleted(4, 100, 9),
			l(8, 200, "bob", 4000, "EUR", 4000, 2, "US", true, 98.7, 3),
			l(11, 300, "bob", 600, "EUR", 600, 5, "US", true, 98.7, 2),
			l(12, 100, "alice", 900, "EUR", 900, 2, "DE", true, 99.5, 1),
			l(13, 200, "gina", 50, "EUR", 50, 2, "NL", true, 90, 1),
		},
		{l(1, 100, "alice", 1000, "EUR", 1000, 2, "DE", true, 99.5, 1)},
	}
	for _, b := range batches {
		if err := InsertListings(ctx, conn, b); err != nil {
			t.Fatal(err)
		}
	}
	insertWants(t, conn,
		wantRow{"u1", 300, false, 5}, wantRow{"u1", 400, false, 5}, // an older profile
		wantRow{"u1", 100, false, 10}, wantRow{"u1", 200, false, 10}, wantRow{"u1", 300, true, 10},
		wantRow{"u2", 100, false, 3}, wantRow{"u2", 0, true, 7}, // u2 emptied the wantlist
	)
}

func TestQueriesOnHandBuiltMarket(t *testing.T) {
	conn := migrated(t)
	loadMarket(t, conn)
	q := NewQueries(conn, QueryOptions{Timeout: 5 * time.Second})
	ctx := context.Background()

	t.Run("market overview", func(t *testing.T) {
		got, err := q.MarketOverview(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := &MarketOverview{
			Listings: 12,
			ByMediaGrade: []GradeCount{
				{2, "NM", 7}, {3, "VG+", 2}, {4, "VG", 1}, {5, "G+", 1}, {6, "G", 1},
			},
			ByShipsFrom: []KeyCount{{"DE", 4}, {"US", 3}, {"UK", 2}, {"FR", 1}, {"JP", 1}, {"NL", 1}},
			ByCurrency:  []KeyCount{{"EUR", 9}, {"GBP", 1}, {"JPY", 1}, {"USD", 1}},
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got  %+v\nwant %+v", got, want)
		}
		if _, err := json.Marshal(got); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("price distribution", func(t *testing.T) {
		tests := []struct {
			release int64
			want    PriceDistribution
		}{
			// Sorted EUR prices of release 100: 580 850 900 1000 1200
			// (L4 deleted, L5 no rate, L2's 1417 superseded, L1 once).
			// Nearest rank floor(level*5): 0.1->0, 0.25->1, 0.5->2, 0.75->3, 0.9->4.
			{100, PriceDistribution{ReleaseID: 100, Listings: 5, MinEUR: 580, P10EUR: 580, P25EUR: 850, MedianEUR: 900, P75EUR: 1000, P90EUR: 1200, MaxEUR: 1200}},
			// 200: 50 100 3000 4000 (L8's 1400 superseded): 0, 1, 2, 3, 3.
			{200, PriceDistribution{ReleaseID: 200, Listings: 4, MinEUR: 50, P10EUR: 50, P25EUR: 100, MedianEUR: 3000, P75EUR: 4000, P90EUR: 4000, MaxEUR: 4000}},
			{999, PriceDistribution{ReleaseID: 999}},
		}
		for _, tt := range tests {
			got, err := q.PriceDistribution(ctx, tt.release)
			if err != nil {
				t.Fatal(err)
			}
			if *got != tt.want {
				t.Errorf("release %d: got %+v, want %+v", tt.release, *got, tt.want)
			}
		}
		if _, err := q.PriceDistribution(ctx, 0); !errors.Is(err, ErrBadQuery) {
			t.Fatalf("release 0: %v", err)
		}
	})

	t.Run("cheapest", func(t *testing.T) {
		tests := []struct {
			name string
			q    CheapestQuery
			want []int64
		}{
			// L3 fails the grade, L5 has no EUR price, L6 is unavailable,
			// L4 is deleted, L8 and L11 only passed in superseded versions,
			// L13's seller is rated 90, L7 is too dear; L2's rating is
			// exactly 98.7 (a Float32 column against a Float64 literal).
			{"vg+ rated cheap", CheapestQuery{Releases: []int64{100, 200, 300}, MinGrade: 3, MinSellerRating: 98.7, MaxPriceEURMinor: 1500, Limit: 10}, []int64{10, 2, 12, 1}},
			{"limit", CheapestQuery{Releases: []int64{100, 200, 300}, MinGrade: 3, MinSellerRating: 98.7, MaxPriceEURMinor: 1500, Limit: 2}, []int64{10, 2}},
			{"no filters", CheapestQuery{Releases: []int64{200}}, []int64{13, 9, 7, 8}},
			{"ships from", CheapestQuery{Releases: []int64{100, 300}, ShipsFrom: []string{"DE"}}, []int64{10, 12, 1}},
			{"two countries", CheapestQuery{Releases: []int64{100, 300}, ShipsFrom: []string{"UK", "US"}}, []int64{3, 11, 2}},
			{"unknown release", CheapestQuery{Releases: []int64{12345}}, []int64{}},
			{"injection in a country is data", CheapestQuery{Releases: []int64{100}, ShipsFrom: []string{"DE') OR 1=1 --", "x' OR '1'='1", `\' OR 1=1 --`}}, []int64{}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := q.Cheapest(ctx, tt.q)
				if err != nil {
					t.Fatal(err)
				}
				ids := []int64{}
				for _, g := range got {
					ids = append(ids, g.ListingID)
				}
				if !reflect.DeepEqual(ids, tt.want) {
					t.Fatalf("got %v, want %v", ids, tt.want)
				}
			})
		}
		got, err := q.Cheapest(ctx, CheapestQuery{Releases: []int64{100}, MinGrade: 3, MinSellerRating: 98.7, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		want := Listing{ListingID: 2, ReleaseID: 100, Seller: "bob", PriceMinor: 900, Currency: "USD", PriceEURMinor: 850,
			ShippingMinor: 300, ShippingState: 1, MediaGrade: 3, Media: "VG+", SleeveGrade: 3, ShipsFrom: "US", SellerRating: 98.7,
			SeenAt: time.Unix(1700000005, 0).UTC()}
		if len(got) != 1 || got[0] != want {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	})

	t.Run("sellers for wantlist", func(t *testing.T) {
		// u1 wants 100 and 200 (its newest profile). Per seller, the
		// cheapest live, available, EUR-priced copy of each:
		// carol 580 + 100; alice 900 (L12 beats L1) + 3000; bob 850 + 4000;
		// gina 50 for 200 only. dave is deleted, erin has no rate, frank
		// is unavailable.
		got, err := q.SellersForWantlist(ctx, "u1", 0)
		if err != nil {
			t.Fatal(err)
		}
		want := []WantlistSeller{
			{"carol", 2, 680, []int64{100, 200}},
			{"alice", 2, 3900, []int64{100, 200}},
			{"bob", 2, 4850, []int64{100, 200}},
			{"gina", 1, 50, []int64{200}},
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got  %+v\nwant %+v", got, want)
		}
		if got, _ := q.SellersForWantlist(ctx, "u1", 2); len(got) != 2 || got[1].Seller != "alice" {
			t.Fatalf("limit 2: %+v", got)
		}
		for _, user := range []string{"u2", "nobody", "u1' OR 1=1 --", `u1\' OR 1=1 --`} {
			got, err := q.SellersForWantlist(ctx, user, 10)
			if err != nil || len(got) != 0 {
				t.Fatalf("user %q: %+v, %v", user, got, err)
			}
		}
	})

	t.Run("bad parameters", func(t *testing.T) {
		bad := []CheapestQuery{
			{},
			{Releases: []int64{0}},
			{Releases: []int64{1}, MinGrade: 9},
			{Releases: []int64{1}, MinSellerRating: 101},
			{Releases: []int64{1}, Limit: 1001},
			{Releases: []int64{1}, MaxPriceEURMinor: -1},
			{Releases: make([]int64, MaxQueryIDs+1)},
		}
		for _, b := range bad {
			if _, err := q.Cheapest(ctx, b); !errors.Is(err, ErrBadQuery) {
				t.Errorf("%+v: %v", b, err)
			}
		}
		if _, err := q.SellersForWantlist(ctx, "", 1); !errors.Is(err, ErrBadQuery) {
			t.Error(err)
		}
	})

	if n := scalar[uint64](t, conn, "SELECT count() FROM listings"); n != 18 {
		t.Fatalf("the table still holds every row version: %d", n)
	}
}

// Stale versions that pass the filters can outnumber the page: Cheapest
// must look further rather than return a short or wrong page.
func TestCheapestWidensPastStaleVersions(t *testing.T) {
	conn := migrated(t)
	var rows []ListingRow
	for v := uint64(1); v <= 60; v++ { // cheap and passing, then raised
		rows = append(rows, l(1, 500, "s", 100, "EUR", 100, 2, "DE", true, 99, v))
	}
	rows = append(rows, l(1, 500, "s", 9000, "EUR", 9000, 2, "DE", true, 99, 61))
	rows = append(rows, l(2, 500, "t", 200, "EUR", 200, 2, "DE", true, 99, 1))
	if err := InsertListings(context.Background(), conn, rows); err != nil {
		t.Fatal(err)
	}
	got, err := NewQueries(conn, QueryOptions{}).Cheapest(context.Background(), CheapestQuery{Releases: []int64{500}, MaxPriceEURMinor: 1000, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ListingID != 2 {
		t.Fatalf("got %+v, want listing 2", got)
	}
}

func TestInsertListingsValidates(t *testing.T) {
	good := l(1, 1, "s", 100, "EUR", 100, 2, "DE", true, 99, 1)
	tests := []struct {
		name string
		mod  func(r *ListingRow)
	}{
		{"negative price", func(r *ListingRow) { r.PriceMinor = -1 }},
		{"huge price", func(r *ListingRow) { r.PriceMinor = maxMinor + 1 }},
		{"negative EUR", func(r *ListingRow) { r.PriceEURMinor = -5 }},
		{"negative shipping", func(r *ListingRow) { r.ShippingMinor = -5 }},
		{"no listing id", func(r *ListingRow) { r.ListingID = 0 }},
		{"no release", func(r *ListingRow) { r.ReleaseID = 0 }},
		{"grade 9", func(r *ListingRow) { r.MediaGrade = 9 }},
		{"sleeve 12", func(r *ListingRow) { r.SleeveGrade = 12 }},
		{"shipping state 4", func(r *ListingRow) { r.ShippingState = 4 }},
		{"currency", func(r *ListingRow) { r.Currency = "eur" }},
		{"rating", func(r *ListingRow) { r.SellerRating = 100.5 }},
		{"before 1970", func(r *ListingRow) { r.SeenAt = time.Unix(-1, 0) }},
		{"after 2106", func(r *ListingRow) { r.SeenAt = time.Unix(maxDateTime+1, 0) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := good
			tt.mod(&r)
			if err := r.Validate(); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	del := deleted(1, 0, 2) // a tombstone of a listing never seen
	if err := del.Validate(); err != nil {
		t.Fatal(err)
	}
}
