package marketplace

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

func TestWriteJSONLinesReal(t *testing.T) {
	p := parseBytes(t, readFixture(t, "discogs_alert_2026", "sell_release_2247646_real.html"), Options{})
	var buf bytes.Buffer
	if err := WriteJSONLines(&buf, p); err != nil {
		t.Fatal(err)
	}
	want := `{"listing_id":4112342466,"release_id":2247646,"seller":"kgrecords1976","seller_rating":84.6,"seller_ratings_count":28,"media_condition":"Very Good Plus (VG+)","sleeve_condition":"Very Good Plus (VG+)","price":{"amount_minor":900000,"currency":"USD"},"shipping":{"amount_minor":0,"currency":"USD"},"ships_from":"United States","available":true}
{"listing_id":431584673,"release_id":2247646,"seller":"johanz","seller_rating":98.8,"seller_ratings_count":166,"media_condition":"Near Mint (NM or M-)","sleeve_condition":"Near Mint (NM or M-)","price":{"amount_minor":1100000,"currency":"EUR"},"shipping":{"amount_minor":1400,"currency":"EUR"},"ships_from":"Netherlands","available":true}
`
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

// TestWriteJSONLinesKeys checks every line of every fixture for exactly the
// documented keys in the documented order, and the nulls.
func TestWriteJSONLinesKeys(t *testing.T) {
	keys := []string{"listing_id", "release_id", "seller", "seller_rating", "seller_ratings_count", "media_condition",
		"sleeve_condition", "price", "shipping", "ships_from", "available"}
	pages := []*Page{
		parseBytes(t, readFixture(t, "discogs_alert_2026", "sell_release_synthetic_5_listings.html"), Options{ReleaseID: syntheticRelease}),
		parseBytes(t, readFixture(t, "discoring_2024", "sell_release_2730201_table.html"), Options{}),
		parseBytes(t, readFixture(t, "discoring_2024", "sell_release_1164485_table_2024-11.html"), Options{}),
	}
	nulls := map[string]int{}
	for _, p := range pages {
		var buf bytes.Buffer
		if err := WriteJSONLines(&buf, p); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
		if len(lines) != len(p.Listings) {
			t.Fatalf("%d lines for %d listings", len(lines), len(p.Listings))
		}
		for i, line := range lines {
			dec := json.NewDecoder(strings.NewReader(line))
			dec.UseNumber()
			if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
				t.Fatalf("line %d: %q", i, line)
			}
			var got []string
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					t.Fatal(err)
				}
				var v any
				if err := dec.Decode(&v); err != nil {
					t.Fatal(err)
				}
				if v == nil {
					nulls[k.(string)]++
				}
				got = append(got, k.(string))
			}
			if strings.Join(got, ",") != strings.Join(keys, ",") {
				t.Errorf("line %d keys %v, want %v", i, got, keys)
			}
		}
	}
	// The synthetic page has a new seller and an ungraded sleeve; 2730201
	// and 1164485 have rows without shipping.
	for _, k := range []string{"seller_rating", "sleeve_condition", "shipping"} {
		if nulls[k] == 0 {
			t.Errorf("no null %s in any line", k)
		}
	}
	for k := range nulls {
		if k != "seller_rating" && k != "sleeve_condition" && k != "shipping" {
			t.Errorf("%s is null", k)
		}
	}
}

func TestWriteJSONLinesUnknownSeller(t *testing.T) {
	p := &Page{Listings: []*pb.Listing{{ListingId: 1, Seller: "ghost"}}}
	if err := WriteJSONLines(&bytes.Buffer{}, p); err == nil {
		t.Error("a listing without its seller was written")
	}
}
