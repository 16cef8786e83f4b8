package cartopt

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// l is a listing in hand-written cases: price and shipping in cur (USD
// when empty), grade NM, rating 100, country US unless set.
type l struct {
	id, rel, seller int64
	price, ship     string
	cur             string
	grade           pb.MediaGrade
	rating          string
	country         string
	unavailable     bool
}

// problem builds a case: rates EUR 1, USD 1.25, JPY 125 (1 USD = 100 JPY),
// collector currency USD unless changed, scores by release.
func problem(budget string, minQty, topN int, scores map[int64]string, ls ...l) *Problem {
	p := &Problem{
		Criteria: Criteria{Budget: MustDecimal(budget), Currency: "USD", MinQty: minQty, TopN: topN},
		Rates:    map[string]Decimal{"EUR": MustDecimal("1"), "USD": MustDecimal("1.25"), "JPY": MustDecimal("125")},
	}
	rels := make([]int64, 0, len(scores))
	for r := range scores {
		rels = append(rels, r)
	}
	slices.Sort(rels)
	for _, r := range rels {
		p.Candidates = append(p.Candidates, Candidate{ReleaseID: r, Score: MustDecimal(scores[r])})
	}
	for _, x := range ls {
		li := Listing{ListingID: x.id, ReleaseID: x.rel, SellerID: x.seller, SellerName: fmt.Sprintf("s%d", x.seller),
			SellerRating: MustDecimal("100"), Country: "United States", Price: MustDecimal(x.price), Currency: "USD",
			Media: pb.MediaGrade_MEDIA_GRADE_NEAR_MINT, ShippingUnavailable: x.unavailable}
		if x.ship != "" {
			li.Shipping = MustDecimal(x.ship)
		}
		if x.cur != "" {
			li.Currency = x.cur
		}
		if x.grade != 0 {
			li.Media = x.grade
		}
		if x.rating != "" {
			li.SellerRating = MustDecimal(x.rating)
		}
		if x.country != "" {
			li.Country = x.country
		}
		p.Listings = append(p.Listings, li)
	}
	return p
}

// want is an expected cart: its listing ids and total in cents.
type want struct {
	ids   []int64
	total int64
}

func TestSolveCases(t *testing.T) {
	one := map[int64]string{1: "1", 2: "1", 3: "1"}
	tests := []struct {
		name  string
		p     *Problem
		o     Options
		want  []want
		check func(t *testing.T, r *Result)
	}{
		{
			name: "seed prefers two cheaper records",
			p: problem("60", 1, 5, map[int64]string{1: "1.0", 2: "0.4", 3: "0.4"},
				l{id: 1, rel: 1, seller: 1, price: "60"}, l{id: 2, rel: 2, seller: 1, price: "30"}, l{id: 3, rel: 3, seller: 1, price: "30"}),
			want: []want{{[]int64{2, 3}, 6000}}, // 2 × 0.8 = 1.6 beats 1 × 1.0
		},
		{
			name: "sum prefers the one better record",
			p: problem("60", 1, 5, map[int64]string{1: "1.0", 2: "0.4", 3: "0.4"},
				l{id: 1, rel: 1, seller: 1, price: "60"}, l{id: 2, rel: 2, seller: 1, price: "30"}, l{id: 3, rel: 3, seller: 1, price: "30"}),
			o:    Options{Objective: ObjectiveSum},
			want: []want{{[]int64{1}, 6000}},
		},
		{
			name: "one parcel: the largest shipping, not the sum",
			p:    problem("48", 1, 5, one, l{id: 1, rel: 1, seller: 1, price: "20", ship: "5"}, l{id: 2, rel: 2, seller: 1, price: "20", ship: "8"}),
			want: []want{{[]int64{1, 2}, 4800}},
			check: func(t *testing.T, r *Result) {
				if c := r.Carts[0]; c.Subtotal != 4000 || c.Shipping != 800 {
					t.Errorf("subtotal %d shipping %d", c.Subtotal, c.Shipping)
				}
			},
		},
		{
			name: "shipping can make the cheaper item the worse choice",
			p: problem("30", 2, 5, one,
				l{id: 1, rel: 1, seller: 1, price: "10", ship: "3"}, l{id: 2, rel: 2, seller: 1, price: "9", ship: "12"},
				l{id: 3, rel: 3, seller: 1, price: "12", ship: "4"}),
			want: []want{{[]int64{1, 3}, 2600}}, // {1,2}: 19+12 = 31 over budget
		},
		{
			name: "sellers tie: lower total, then lower seller id",
			p: problem("50", 1, 5, one,
				l{id: 1, rel: 1, seller: 1, price: "10"}, l{id: 2, rel: 1, seller: 3, price: "9"}, l{id: 3, rel: 1, seller: 2, price: "9"}),
			want: []want{{[]int64{3}, 900}, {[]int64{2}, 900}, {[]int64{1}, 1000}},
		},
		{
			name: "a seller's carts tie: lexicographically smaller ids",
			p: problem("20", 2, 5, map[int64]string{1: "0.5", 2: "0.5", 3: "0.5"},
				l{id: 30, rel: 1, seller: 1, price: "10"}, l{id: 20, rel: 2, seller: 1, price: "10"}, l{id: 10, rel: 3, seller: 1, price: "10"}),
			want: []want{{[]int64{10, 20}, 2000}},
		},
		{
			name: "top_n cuts",
			p: problem("50", 1, 2, one,
				l{id: 1, rel: 1, seller: 1, price: "10"}, l{id: 2, rel: 1, seller: 2, price: "11"}, l{id: 3, rel: 1, seller: 3, price: "12"}),
			want: []want{{[]int64{1}, 1000}, {[]int64{2}, 1100}},
		},
		{
			name: "options top_n overrides the criteria",
			p: problem("50", 1, 2, one,
				l{id: 1, rel: 1, seller: 1, price: "10"}, l{id: 2, rel: 1, seller: 2, price: "11"}, l{id: 3, rel: 1, seller: 3, price: "12"}),
			o:    Options{TopN: 1},
			want: []want{{[]int64{1}, 1000}},
		},
		{
			name: "nothing affordable",
			p:    problem("5", 1, 5, one, l{id: 1, rel: 1, seller: 1, price: "10"}, l{id: 2, rel: 2, seller: 1, price: "4", ship: "1.01"}),
			check: func(t *testing.T, r *Result) {
				if r.Counts.FeasibleSellers != 0 || r.Counts.ListingsKept != 2 {
					t.Errorf("counts %+v", r.Counts)
				}
			},
		},
		{
			name: "zero budget buys only free records",
			p:    problem("0", 0, 5, one, l{id: 1, rel: 1, seller: 1, price: "0"}, l{id: 2, rel: 2, seller: 1, price: "0.01"}),
			want: []want{{[]int64{1}, 0}},
		},
		{
			name: "budget in thousandths is floored to cents",
			p:    problem("10.009", 1, 5, one, l{id: 1, rel: 1, seller: 1, price: "10.00"}, l{id: 2, rel: 2, seller: 2, price: "10.01"}),
			want: []want{{[]int64{1}, 1000}},
		},
		{
			name: "min_qty beyond every seller",
			p: problem("100", 3, 5, one,
				l{id: 1, rel: 1, seller: 1, price: "1"}, l{id: 2, rel: 2, seller: 1, price: "1"}, l{id: 3, rel: 3, seller: 2, price: "1"}),
			check: func(t *testing.T, r *Result) {
				if r.Counts.FeasibleSellers != 0 {
					t.Errorf("feasible sellers %d", r.Counts.FeasibleSellers)
				}
			},
		},
		{
			name: "min_qty forces a worse mean",
			p: problem("100", 2, 5, map[int64]string{1: "1", 2: "0.01"},
				l{id: 1, rel: 1, seller: 1, price: "90"}, l{id: 2, rel: 2, seller: 1, price: "10"}),
			want: []want{{[]int64{1, 2}, 10000}},
		},
		{
			name: "every listing shipping-unavailable",
			p: problem("100", 1, 5, one,
				l{id: 1, rel: 1, seller: 1, price: "1", unavailable: true}, l{id: 2, rel: 2, seller: 2, price: "1", unavailable: true}),
			check: func(t *testing.T, r *Result) {
				if r.Counts.Rejected.ShippingUnavailable != 2 || r.Counts.ListingsKept != 0 {
					t.Errorf("counts %+v", r.Counts)
				}
			},
		},
		{
			name: "JPY converts to hundredths of a dollar",
			p: problem("20.01", 1, 5, one,
				l{id: 1, rel: 1, seller: 1, price: "1000", cur: "JPY"}, l{id: 2, rel: 2, seller: 1, price: "1001", cur: "JPY"}),
			want: []want{{[]int64{1, 2}, 2001}}, // 10.00 + 10.01
		},
		{
			name: "multi-seller: releases once, each parcel once",
			p: problem("40", 1, 3, one,
				l{id: 1, rel: 1, seller: 1, price: "10", ship: "5"}, l{id: 2, rel: 2, seller: 1, price: "10", ship: "5"},
				l{id: 3, rel: 1, seller: 2, price: "8", ship: "5"}, l{id: 4, rel: 3, seller: 2, price: "10", ship: "5"}),
			o:    Options{MultiSeller: true},
			want: []want{{[]int64{2, 3, 4}, 3800}, {[]int64{1, 2, 4}, 4000}, {[]int64{3, 4}, 2300}},
			check: func(t *testing.T, r *Result) {
				c := r.Carts[0]
				if len(c.Sellers) != 2 || c.Sellers[0].SellerID != 1 || !slices.Equal(c.Sellers[0].ListingIDs, []int64{2}) ||
					c.Sellers[1].Shipping != 500 || c.Shipping != 1000 {
					t.Errorf("cart 1 = %+v", c)
				}
			},
		},
		{
			name: "multi-seller sum",
			p: problem("40", 1, 3, map[int64]string{1: "3", 2: "1", 3: "1"},
				l{id: 1, rel: 1, seller: 1, price: "30", ship: "5"}, l{id: 2, rel: 2, seller: 1, price: "2", ship: "1"},
				l{id: 3, rel: 3, seller: 2, price: "1", ship: "1"}),
			o:    Options{MultiSeller: true, Objective: ObjectiveSum},
			want: []want{{[]int64{1, 2, 3}, 3900}, {[]int64{1, 2}, 3700}, {[]int64{1, 3}, 3700}}, // equal totals: ids decide
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Solve(tt.p, tt.o)
			if err != nil {
				t.Fatal(err)
			}
			var got []want
			for _, c := range r.Carts {
				got = append(got, want{c.ListingIDs, c.Total})
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("carts %v, want %v", got, tt.want)
			}
			for i, c := range r.Carts {
				if c.Rank != i+1 {
					t.Errorf("rank %d at %d", c.Rank, i)
				}
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func TestFilters(t *testing.T) {
	p := problem("100", 1, 5, map[int64]string{1: "1", 2: "1"},
		l{id: 1, rel: 1, seller: 1, price: "1"},                                                    // kept
		l{id: 2, rel: 1, seller: 1, price: "1"},                                                    // duplicate of 1 (same price, higher id)
		l{id: 3, rel: 2, seller: 1, price: "2"},                                                    // duplicate, dearer than 4
		l{id: 4, rel: 2, seller: 1, price: "1.50"},                                                 // kept
		l{id: 5, rel: 9, seller: 1, price: "1"},                                                    // not a candidate
		l{id: 6, rel: 1, seller: 2, price: "1", cur: "CHF"},                                        // unknown currency
		l{id: 7, rel: 1, seller: 2, price: "1", grade: pb.MediaGrade_MEDIA_GRADE_UNSPECIFIED + 99}, // unknown grade
		l{id: 8, rel: 1, seller: 2, price: "1", grade: pb.MediaGrade_MEDIA_GRADE_GOOD},             // below VG+
		l{id: 9, rel: 1, seller: 2, price: "1", rating: "97.99"},                                   // below 98
		l{id: 10, rel: 1, seller: 2, price: "1", country: "Japan"},                                 // not allowed
		l{id: 11, rel: 1, seller: 2, price: "1", unavailable: true},                                // no shipping
		l{id: 12, rel: 1, seller: 3, price: "1", rating: "98.0"},                                   // kept: 98.0 ≥ 98
		l{id: 13, rel: 9, seller: 3, price: "1", country: "Japan", cur: "CHF"},                     // first failing filter: currency
	)
	p.Criteria.MinMedia = pb.MediaGrade_MEDIA_GRADE_VERY_GOOD_PLUS
	p.Criteria.MinSellerRating = MustDecimal("98")
	p.Criteria.Countries = []string{"United States"}
	r, err := Solve(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	wantRej := Rejected{UnknownGrade: 1, UnknownCurrency: 2, NotCandidate: 1, Country: 1, Grade: 1, SellerRating: 1,
		ShippingUnavailable: 1, Duplicate: 2}
	if r.Counts.Rejected != wantRej {
		t.Errorf("rejected %+v\nwant     %+v", r.Counts.Rejected, wantRej)
	}
	if r.Counts.ListingsKept != 3 || r.Counts.ListingsIn != 13 || r.Counts.Sellers != 2 || r.Counts.Candidates != 2 {
		t.Errorf("counts %+v", r.Counts)
	}
	if len(r.Carts) != 2 || !slices.Equal(r.Carts[0].ListingIDs, []int64{1, 4}) {
		t.Errorf("carts %+v", r.Carts)
	}
}

func TestSolveErrors(t *testing.T) {
	p := problem("100", 1, 5, map[int64]string{1: "1"}, l{id: 1, rel: 1, seller: 1, price: "1"})
	if _, err := Solve(p, Options{Objective: "mean"}); err == nil || !strings.Contains(err.Error(), "objective") {
		t.Errorf("bad objective: %v", err)
	}
	bad := *p
	bad.Criteria.Currency = "CHF"
	if _, err := Solve(&bad, Options{}); !errors.Is(err, ErrUnknownCurrency) {
		t.Errorf("collector currency without rate: %v", err)
	}
	bad = *p
	bad.Candidates = append(slices.Clone(p.Candidates), Candidate{ReleaseID: 1, Score: MustDecimal("2")})
	if _, err := Solve(&bad, Options{}); err == nil || !strings.Contains(err.Error(), "candidates[1]") {
		t.Errorf("duplicate candidate: %v", err)
	}
	bad = *p
	bad.Listings = slices.Clone(p.Listings)
	bad.Listings[0].Price = MustDecimal("-1")
	if _, err := Solve(&bad, Options{}); err == nil || !strings.Contains(err.Error(), "listings[0].price") {
		t.Errorf("negative price: %v", err)
	}
	bad = *p
	bad.Criteria.Budget = MustDecimal("1e20")
	if _, err := Solve(&bad, Options{}); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("huge budget: %v", err)
	}
}

func TestSearchLimit(t *testing.T) {
	p, err := ReadInput(bytes.NewReader(readShared(t, "medium")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Solve(p, Options{MaxNodes: 10}); !errors.Is(err, ErrSearchLimit) {
		t.Errorf("MaxNodes 10: %v, want ErrSearchLimit", err)
	}
	if _, err := Solve(p, Options{MultiSeller: true, MaxNodes: 10}); !errors.Is(err, ErrSearchLimit) {
		t.Errorf("multi-seller, MaxNodes 10: %v, want ErrSearchLimit", err)
	}
}

func TestHugeCandidateList(t *testing.T) {
	scores := map[int64]string{}
	for r := range int64(200_000) {
		scores[r] = fmt.Sprintf("0.%06d", r%999_983)
	}
	p := problem("30", 1, 5, scores,
		l{id: 1, rel: 7, seller: 1, price: "10"}, l{id: 2, rel: 199_999, seller: 1, price: "10"}, l{id: 3, rel: 123_456, seller: 2, price: "5"})
	for _, multi := range []bool{false, true} {
		start := time.Now()
		r, err := Solve(p, Options{MultiSeller: multi})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Carts) == 0 || time.Since(start) > 2*time.Second {
			t.Errorf("multi %v: %d carts in %v", multi, len(r.Carts), time.Since(start))
		}
	}
}

func TestScorePrecision(t *testing.T) {
	// Scores differing in the 14th decimal are rounded to 12 (the
	// documented resolution): the two carts tie and the cheaper wins.
	p := problem("30", 1, 5, map[int64]string{1: "0.12345678901234", 2: "0.12345678901233"},
		l{id: 1, rel: 1, seller: 1, price: "10"}, l{id: 2, rel: 2, seller: 2, price: "9"})
	r, err := Solve(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Carts) != 2 || r.Carts[0].ListingIDs[0] != 2 || r.Carts[0].ScoreRat().Cmp(r.Carts[1].ScoreRat()) != 0 {
		t.Errorf("carts %+v", r.Carts)
	}
	// With ≤ 12 decimals scores are exact: the higher one wins.
	p = problem("30", 1, 5, map[int64]string{1: "0.123456789013", 2: "0.123456789012"},
		l{id: 1, rel: 1, seller: 1, price: "10"}, l{id: 2, rel: 2, seller: 2, price: "9"})
	if r, err = Solve(p, Options{}); err != nil || r.Carts[0].ListingIDs[0] != 1 {
		t.Errorf("exact scores: %+v, %v", r, err)
	}
}

func TestWriteJSON(t *testing.T) {
	p := problem("48", 1, 5, map[int64]string{1: "0.12345675", 2: "1"},
		l{id: 1, rel: 1, seller: 1, price: "20", ship: "5"}, l{id: 2, rel: 2, seller: 1, price: "20.5", ship: "0"})
	p.Listings[0].SellerName = "a \"quoted\"\nname"
	p.Listings[1].SellerName = p.Listings[0].SellerName
	r, err := Solve(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r.Elapsed = 1234567 * time.Nanosecond
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, s := range []string{
		`{"rank": 1, "seller_id": 1, "seller_name": "a \"quoted\"\u000aname", "listing_ids": [1, 2], "quantity": 2, "subtotal": 40.50, "shipping": 5.00, "total": 45.50, "score": 2.246914}`,
		`"objective": "seed"`, `"elapsed_ms": 1.234`, `"listings_kept": 2`, `"shipping_unavailable": 0`,
	} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %s:\n%s", s, out)
		}
	}
}
