package cartopt

import (
	"bytes"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cratestream/cratestream/internal/testutil"
)

var sharedFiles = []string{"small", "medium", "shipping", "large"}

func readShared(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testutil.SharedDir(t, "carts"), name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// rawInput is the input decoded independently of ReadInput, with
// encoding/json and exact number texts.
type rawInput struct {
	Criteria struct {
		Budget   json.Number `json:"budget"`
		Currency string      `json:"currency"`
		MinQty   int         `json:"min_qty"`
	} `json:"criteria"`
	Rates map[string]struct {
		Rate json.Number `json:"rate"`
	} `json:"rates_per_eur"`
	Candidates []struct {
		ReleaseID int64       `json:"release_id"`
		Score     json.Number `json:"score"`
	} `json:"candidates"`
	Listings []struct {
		ListingID int64       `json:"listing_id"`
		ReleaseID int64       `json:"release_id"`
		SellerID  int64       `json:"seller_id"`
		Price     json.Number `json:"price"`
		Currency  string      `json:"currency"`
		Shipping  json.Number `json:"shipping"`
	} `json:"listings"`
}

// rawOutput is WriteJSON's output decoded with encoding/json.
type rawOutput struct {
	Carts []struct {
		Rank       int         `json:"rank"`
		SellerID   int64       `json:"seller_id"`
		ListingIDs []int64     `json:"listing_ids"`
		Quantity   int         `json:"quantity"`
		Subtotal   json.Number `json:"subtotal"`
		Shipping   json.Number `json:"shipping"`
		Total      json.Number `json:"total"`
		Score      json.Number `json:"score"`
		Sellers    []struct {
			SellerID   int64       `json:"seller_id"`
			ListingIDs []int64     `json:"listing_ids"`
			Subtotal   json.Number `json:"subtotal"`
			Shipping   json.Number `json:"shipping"`
		} `json:"sellers"`
	} `json:"carts"`
	Objective string `json:"objective"`
	Counts    struct {
		ListingsIn   int            `json:"listings_in"`
		ListingsKept int            `json:"listings_kept"`
		Carts        int            `json:"carts"`
		Rejected     map[string]int `json:"rejected"`
	} `json:"counts"`
	ElapsedMS json.Number `json:"elapsed_ms"`
}

func rat(t testing.TB, s json.Number) *big.Rat {
	t.Helper()
	r, ok := new(big.Rat).SetString(string(s))
	if !ok {
		t.Fatalf("not a number: %q", s)
	}
	return r
}

// TestSharedFiles solves the four shared problems in both modes and both
// objectives and checks the JSON output against the input, recomputed
// independently: every listing exists and belongs to its seller, money in
// two decimals adds up (prices converted again here with big.Rat), totals
// fit the budget, quantities reach min_qty, releases are distinct, scores
// match, ranks are ordered, counts add up.
func TestSharedFiles(t *testing.T) {
	for _, name := range sharedFiles {
		data := readShared(t, name)
		var in rawInput
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&in); err != nil {
			t.Fatal(err)
		}
		p, err := ReadInput(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, multi := range []bool{false, true} {
			for _, obj := range []string{ObjectiveSeed, ObjectiveSum} {
				t.Run(name+"/"+obj+map[bool]string{false: "", true: "/multi"}[multi], func(t *testing.T) {
					if testing.Short() && name == "large" {
						t.Skip("large in -short")
					}
					res, err := Solve(p, Options{Objective: obj, MultiSeller: multi})
					if err != nil {
						t.Fatal(err)
					}
					var buf bytes.Buffer
					if err := res.WriteJSON(&buf); err != nil {
						t.Fatal(err)
					}
					var out rawOutput
					d := json.NewDecoder(&buf)
					d.UseNumber()
					if err := d.Decode(&out); err != nil {
						t.Fatalf("output is not JSON: %v\n%s", err, buf.String())
					}
					checkOutput(t, &in, &out, multi, obj)
				})
			}
		}
	}
}

func checkOutput(t *testing.T, in *rawInput, out *rawOutput, multi bool, obj string) {
	t.Helper()
	toRate := rat(t, in.Rates[in.Criteria.Currency].Rate)
	cents := func(amount json.Number, cur string) *big.Rat {
		if amount == "" {
			return new(big.Rat)
		}
		x := rat(t, amount)
		x.Quo(x, rat(t, in.Rates[cur].Rate))
		x.Mul(x, toRate)
		x.Mul(x, big.NewRat(100, 1))
		return new(big.Rat).SetInt(roundHalfUpRat(x))
	}
	byID := map[int64]int{}
	for i, l := range in.Listings {
		byID[l.ListingID] = i
	}
	score := map[int64]*big.Rat{}
	for _, c := range in.Candidates {
		score[c.ReleaseID] = rat(t, c.Score)
	}
	budget := rat(t, in.Criteria.Budget)
	hundred := big.NewRat(100, 1)
	if out.Objective != obj || out.Counts.Carts != len(out.Carts) || len(out.Carts) == 0 {
		t.Fatalf("objective %q, %d carts, counts.carts %d", out.Objective, len(out.Carts), out.Counts.Carts)
	}
	rejected := 0
	for _, n := range out.Counts.Rejected {
		rejected += n
	}
	if out.Counts.ListingsKept+rejected != out.Counts.ListingsIn || out.Counts.ListingsIn != len(in.Listings) {
		t.Fatalf("counts do not add up: %+v", out.Counts)
	}
	var prevScore, prevTotal *big.Rat
	for i, c := range out.Carts {
		if c.Rank != i+1 {
			t.Fatalf("rank %d at position %d", c.Rank, i)
		}
		type part struct {
			seller int64
			ids    []int64
		}
		parts := []part{{c.SellerID, c.ListingIDs}}
		if multi {
			parts = parts[:0]
			for _, s := range c.Sellers {
				parts = append(parts, part{s.SellerID, s.ListingIDs})
			}
		}
		sub, ship, sum := new(big.Rat), new(big.Rat), new(big.Rat)
		rels := map[int64]bool{}
		n := 0
		for j, pt := range parts {
			if !slices.IsSorted(pt.ids) {
				t.Fatalf("cart %d: ids not sorted", c.Rank)
			}
			psub, pship := new(big.Rat), new(big.Rat)
			for _, id := range pt.ids {
				li, ok := byID[id]
				if !ok {
					t.Fatalf("cart %d: listing %d not in the input", c.Rank, id)
				}
				l := in.Listings[li]
				if l.SellerID != pt.seller {
					t.Fatalf("cart %d: listing %d is seller %d's, not %d's", c.Rank, id, l.SellerID, pt.seller)
				}
				if rels[l.ReleaseID] {
					t.Fatalf("cart %d: release %d twice", c.Rank, l.ReleaseID)
				}
				rels[l.ReleaseID] = true
				psub.Add(psub, cents(l.Price, l.Currency))
				if s := cents(l.Shipping, l.Currency); s.Cmp(pship) > 0 {
					pship = s
				}
				sum.Add(sum, score[l.ReleaseID])
				n++
			}
			if multi {
				s := c.Sellers[j]
				if new(big.Rat).Mul(rat(t, s.Subtotal), hundred).Cmp(psub) != 0 || new(big.Rat).Mul(rat(t, s.Shipping), hundred).Cmp(pship) != 0 {
					t.Fatalf("cart %d seller %d: subtotal %s shipping %s, recomputed %s %s cents", c.Rank, s.SellerID, s.Subtotal, s.Shipping, psub, pship)
				}
			}
			sub.Add(sub, psub)
			ship.Add(ship, pship)
		}
		total := new(big.Rat).Add(sub, ship)
		if new(big.Rat).Mul(rat(t, c.Subtotal), hundred).Cmp(sub) != 0 ||
			new(big.Rat).Mul(rat(t, c.Shipping), hundred).Cmp(ship) != 0 ||
			new(big.Rat).Mul(rat(t, c.Total), hundred).Cmp(total) != 0 {
			t.Fatalf("cart %d: %s + %s = %s, recomputed %s + %s cents", c.Rank, c.Subtotal, c.Shipping, c.Total, sub, ship)
		}
		if rat(t, c.Total).Cmp(budget) > 0 || n != c.Quantity || n < max(1, in.Criteria.MinQty) {
			t.Fatalf("cart %d: total %s over budget %s, or quantity %d (%d listings, min %d)", c.Rank, c.Total, budget, c.Quantity, n, in.Criteria.MinQty)
		}
		if obj == ObjectiveSeed {
			sum.Mul(sum, big.NewRat(int64(n), 1))
		}
		if got := formatScore(sum); got != string(c.Score) {
			t.Fatalf("cart %d: score %s, recomputed %s", c.Rank, c.Score, got)
		}
		sc := rat(t, c.Score)
		if prevScore != nil && (sc.Cmp(prevScore) > 0 || (sc.Cmp(prevScore) == 0 && rat(t, c.Total).Cmp(prevTotal) < 0)) {
			t.Fatalf("cart %d ranks above a better cart", c.Rank)
		}
		prevScore, prevTotal = sc, rat(t, c.Total)
	}
}
