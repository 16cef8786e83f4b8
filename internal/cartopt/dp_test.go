package cartopt

import (
	"bytes"
	"cmp"
	"math/big"
	"os"
	"slices"
	"testing"
)

// dpBest is a cart's objective and total as a DP finds them.
type dpBest struct {
	seller int64
	obj    *big.Int
	total  int64
}

// dpSeller finds a seller's best objective and its least total with an
// exact dynamic program over (quantity, cost in cents) — the plain
// algorithm the search avoids, independent of it. Listings are added in
// shipping order; a cart whose largest shipping is listing e's is e plus
// listings before it, so querying the table before adding e prices its
// shipping exactly.
func dpSeller(items []item, budget int64, minQty int, seed bool) (dpBest, bool) {
	slices.SortFunc(items, func(a, b item) int { return cmp.Compare(a.ship, b.ship) })
	B := int(budget)
	// No cart holds more listings than the cheapest ones that fit.
	costs := make([]int64, len(items))
	for i, it := range items {
		costs[i] = it.cost
	}
	slices.Sort(costs)
	K, spent := 0, int64(0)
	for _, c := range costs {
		if spent+c > budget {
			break
		}
		spent += c
		K++
	}
	const none = int64(-1 << 62)
	dp := make([][]int64, K+1) // dp[k][c]: best score sum of k listings costing exactly c
	for k := range dp {
		dp[k] = make([]int64, B+1)
		for c := range dp[k] {
			dp[k][c] = none
		}
	}
	dp[0][0] = 0
	var best dpBest
	found := false
	for n, e := range items {
		lim := B - int(e.ship) - int(e.cost)
		for k := 0; k <= min(n, K-1) && lim >= 0; k++ {
			q := k + 1
			if q < minQty {
				continue
			}
			for c := 0; c <= lim; c++ {
				if dp[k][c] == none {
					continue
				}
				w := dp[k][c] + e.w
				obj := big.NewInt(w)
				if seed {
					obj.Mul(obj, big.NewInt(int64(q)))
				}
				total := int64(c) + e.cost + e.ship
				if !found || obj.Cmp(best.obj) > 0 || (obj.Cmp(best.obj) == 0 && total < best.total) {
					best, found = dpBest{obj: obj, total: total}, true
				}
			}
		}
		for k := min(n, K-1); k >= 0; k-- {
			row, next := dp[k], dp[k+1]
			for c := B - int(e.cost); c >= 0; c-- {
				if row[c] != none && row[c]+e.w > next[c+int(e.cost)] {
					next[c+int(e.cost)] = row[c] + e.w
				}
			}
		}
	}
	return best, found
}

// TestAgainstDP checks the single-seller answers on the shared files
// against the dynamic program: the same sellers ranked in the same order,
// with the same objectives and totals (the listing-id tie-break is the
// brute force tests' business). large is left out: its DP takes minutes.
func TestAgainstDP(t *testing.T) {
	for _, name := range []string{"small", "medium", "shipping"} {
		for _, obj := range []string{ObjectiveSeed, ObjectiveSum} {
			t.Run(name+"/"+obj, func(t *testing.T) {
				if testing.Short() && name != "small" {
					t.Skip("DP in -short")
				}
				p, err := ReadInput(bytes.NewReader(readShared(t, name)))
				if err != nil {
					t.Fatal(err)
				}
				pr, err := prepare(p)
				if err != nil {
					t.Fatal(err)
				}
				var want []dpBest
				for _, s := range pr.sellers {
					var items []item
					for _, r := range s.items {
						items = append(items, pr.items[r])
					}
					if b, ok := dpSeller(items, pr.budget, pr.minQty, obj == ObjectiveSeed); ok {
						b.seller = s.id
						want = append(want, b)
					}
				}
				slices.SortFunc(want, func(a, b dpBest) int {
					if c := b.obj.Cmp(a.obj); c != 0 {
						return c
					}
					if c := cmp.Compare(a.total, b.total); c != 0 {
						return c
					}
					return cmp.Compare(a.seller, b.seller)
				})
				want = want[:min(len(want), p.Criteria.TopN)]
				res, err := Solve(p, Options{Objective: obj})
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Carts) != len(want) {
					t.Fatalf("%d carts, DP %d", len(res.Carts), len(want))
				}
				for i, c := range res.Carts {
					w := want[i]
					got := new(big.Rat).Mul(c.ScoreRat(), new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(pr.scoreDigits)), nil)))
					if c.Sellers[0].SellerID != w.seller || c.Total != w.total || got.Cmp(new(big.Rat).SetInt(w.obj)) != 0 {
						t.Fatalf("rank %d: seller %d total %d score %s; DP seller %d total %d objective %s",
							i+1, c.Sellers[0].SellerID, c.Total, got.FloatString(0), w.seller, w.total, w.obj)
					}
				}
			})
		}
	}
}

// TestMultiAgainstDP checks the best multi-seller cart of the shared files
// without shipping against the DP over releases (each at its cheapest
// listing: with no shipping nothing beats it for the best objective and
// the least total).
func TestMultiAgainstDP(t *testing.T) {
	for _, name := range []string{"small", "medium", "large"} {
		for _, obj := range []string{ObjectiveSeed, ObjectiveSum} {
			t.Run(name+"/"+obj, func(t *testing.T) {
				if testing.Short() && name != "small" {
					t.Skip("DP in -short")
				}
				if name == "large" && os.Getenv("CARTOPT_LONG") == "" {
					t.Skip("the DP on large takes ~10 s: set CARTOPT_LONG=1")
				}
				p, err := ReadInput(bytes.NewReader(readShared(t, name)))
				if err != nil {
					t.Fatal(err)
				}
				pr, err := prepare(p)
				if err != nil {
					t.Fatal(err)
				}
				cheapest := map[int32]item{}
				for _, it := range pr.items {
					if it.ship != 0 {
						t.Fatal("the file has shipping")
					}
					if c, ok := cheapest[it.rel]; it.afford && (!ok || it.cost < c.cost) {
						cheapest[it.rel] = it
					}
				}
				var items []item
				for _, it := range cheapest {
					items = append(items, it)
				}
				want, ok := dpSeller(items, pr.budget, pr.minQty, obj == ObjectiveSeed)
				res, err := Solve(p, Options{Objective: obj, MultiSeller: true})
				if err != nil {
					t.Fatal(err)
				}
				if !ok || len(res.Carts) == 0 {
					t.Fatalf("DP found %v, solver %d carts", ok, len(res.Carts))
				}
				c := res.Carts[0]
				got := new(big.Rat).Mul(c.ScoreRat(), new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(pr.scoreDigits)), nil)))
				if c.Total != want.total || got.Cmp(new(big.Rat).SetInt(want.obj)) != 0 {
					t.Fatalf("best cart: total %d objective %s; DP total %d objective %s", c.Total, got.FloatString(0), want.total, want.obj)
				}
			})
		}
	}
}
