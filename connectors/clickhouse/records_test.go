package clickhouse

import (
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

func TestListingRowConversion(t *testing.T) {
	sd := newSide(slog.New(slog.NewTextHandler(io.Discard, nil)), newMetrics(nil))
	sd.rates["USD"], _ = parseRate("USD", "1.25")
	sd.ratings["alice"] = 99.5
	rec := &kgo.Record{Topic: "listings.v1", Offset: 42, Timestamp: time.Unix(1700000000, 0)}
	good := func() *pb.Listing {
		return &pb.Listing{ListingId: 7, ReleaseId: 100, Seller: "alice", Price: &pb.Money{AmountMinor: 1000, Currency: "USD"},
			Shipping: &pb.Money{AmountMinor: 250, Currency: "USD"}, ShippingState: pb.ShippingState_SHIPPING_STATE_PRICED,
			Media: pb.MediaGrade_MEDIA_GRADE_VERY_GOOD_PLUS, Sleeve: pb.SleeveGrade_SLEEVE_GRADE_GENERIC, ShipsFrom: " Germany ",
			Available: true, SeenAtMs: 1700000123456}
	}
	r, err := listingRow(rec, 7, good(), sd)
	if err != nil {
		t.Fatal(err)
	}
	want := ListingRow{ListingID: 7, ReleaseID: 100, Seller: "alice", PriceMinor: 1000, Currency: "USD", PriceEURMinor: 800,
		ShippingMinor: 250, ShippingState: 1, MediaGrade: 3, SleeveGrade: 9, ShipsFrom: "Germany", Available: true,
		SellerRating: 99.5, SeenAt: time.UnixMilli(1700000123456), Version: 42}
	if r != want {
		t.Fatalf("got  %+v\nwant %+v", r, want)
	}
	noRate := good()
	noRate.Price.Currency, noRate.Shipping.Currency = "SEK", "SEK"
	if r, err := listingRow(rec, 7, noRate, sd); err != nil || r.PriceEURMinor != 0 {
		t.Fatalf("a currency without a rate gets EUR price 0: %+v %v", r, err)
	}

	tests := []struct {
		name string
		mod  func(l *pb.Listing)
	}{
		{"id differs from key", func(l *pb.Listing) { l.ListingId = 8 }},
		{"no price", func(l *pb.Listing) { l.Price = nil }},
		{"negative price", func(l *pb.Listing) { l.Price.AmountMinor = -1 }},
		{"lower-case currency", func(l *pb.Listing) { l.Price.Currency = "usd"; l.Shipping.Currency = "usd" }},
		{"shipping in another currency", func(l *pb.Listing) { l.Shipping.Currency = "EUR" }},
		{"priced shipping missing", func(l *pb.Listing) { l.Shipping = nil }},
		{"unknown media grade", func(l *pb.Listing) { l.Media = 9 }},
		{"media grade wrapping a byte", func(l *pb.Listing) { l.Media = 259 }},
		{"unknown sleeve grade", func(l *pb.Listing) { l.Sleeve = 12 }},
		{"no release", func(l *pb.Listing) { l.ReleaseId = 0 }},
		{"negative seller id", func(l *pb.Listing) { l.SellerId = -3 }},
		{"seen before 1970", func(l *pb.Listing) { l.SeenAtMs = -5000 }},
		{"seen after 2106", func(l *pb.Listing) { l.SeenAtMs = (maxDateTime + 10) * 1000 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := good()
			tt.mod(l)
			_, err := listingRow(rec, 7, l, sd)
			var br *badRecord
			if !errors.As(err, &br) || br.class != "invalid" {
				t.Fatalf("want an invalid record, got %v", err)
			}
		})
	}
}

func TestProfileRows(t *testing.T) {
	rec := &kgo.Record{Offset: 9, Timestamp: time.Unix(1700000000, 0)}
	p, err := profileRowsOf(rec, "u1", &pb.UserProfile{UserId: "u1", Items: []*pb.ProfileItem{{ReleaseId: 5, Wanted: true}, {ReleaseId: 6}}})
	if err != nil || p.n() != 2 || p.version != 9 || !p.wanted[0] || p.wanted[1] {
		t.Fatalf("%+v %v", p, err)
	}
	tomb, err := profileRowsOf(rec, "u1", nil)
	if err != nil || tomb.n() != 1 || len(tomb.releases) != 0 {
		t.Fatalf("a tombstone writes one sentinel row: %+v %v", tomb, err)
	}
	var w wantlistTable
	w.put("u1", p)
	w.put("u1", tomb) // same offset, later in the batch: replaces
	if w.Len() != 1 {
		t.Fatalf("the newest profile of a user supersedes the older in a batch: %d rows", w.Len())
	}
	if _, err := profileRowsOf(rec, "u1", &pb.UserProfile{UserId: "u2"}); err == nil {
		t.Fatal("a profile under another user's key is invalid")
	}
}
