package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/cratestream/cratestream/internal/cartopt"
)

func cartCommand() command {
	c := command{
		name:    "cart",
		summary: "solve a cart problem file (cart-input/1) and print the carts",
		usage: `Usage: cratestream cart solve --input FILE [--objective seed|sum] [--multi-seller] [--top-n N]

Reads a cart problem (the cart-input/1 format: criteria, rates_per_eur,
candidates, listings; "-" reads stdin) and prints the exact optimum as one
JSON object:

  {"carts": [{"rank": 1, "seller_id": N, "seller_name": "...", "listing_ids": [...],
              "quantity": N, "subtotal": F, "shipping": F, "total": F, "score": F}, ...],
   "objective": "seed",
   "counts": {"candidates": N, "listings_in": N, "listings_kept": N, "sellers": N, "carts": N,
              "rejected": {"grade": N, "country": N, "seller_rating": N, ...}},
   "elapsed_ms": F}

Money is in the collector's currency with two decimals, score with six.
Multi-seller carts carry "sellers": [{"seller_id", "listing_ids", "subtotal",
"shipping"}] instead of seller_id/listing_ids.

Objectives: seed (default) = quantity x sum of scores; sum = sum of scores.
Per seller the best cart is the true optimum under the budget (items plus the
seller's largest shipping, in integer cents) with at least min_qty records;
--multi-seller combines sellers, each parcel paid once, one listing per
release. Errors (unknown currency, malformed file) exit with status 1 and a
message naming the field.`,
	}
	c.run = func(ctx context.Context, env *Env, args []string) error {
		fs := newFlags(env, c)
		input := fs.String("input", "", "problem file (cart-input/1); - for stdin")
		objective := fs.String("objective", "", "seed (default) or sum")
		multi := fs.Bool("multi-seller", false, "carts may combine several sellers")
		topN := fs.Int("top-n", 0, "carts to return (default: the file's criteria.top_n)")
		maxNodes := fs.Int64("max-nodes", 0, "fail instead of searching past this many nodes (0: no bound)")
		if len(args) == 0 || args[0] != "solve" {
			if err := parse(fs, args); err != nil {
				return err
			}
			return usagef("want: cart solve --input FILE")
		}
		if err := parse(fs, args[1:]); err != nil {
			return err
		}
		if *input == "" || fs.NArg() > 0 {
			return usagef("want: cart solve --input FILE")
		}
		switch *objective {
		case "", cartopt.ObjectiveSeed, cartopt.ObjectiveSum:
		default:
			return usagef("--objective: want seed or sum, not %q", *objective)
		}
		var r io.Reader = os.Stdin
		if *input != "-" {
			f, err := os.Open(*input)
			if err != nil {
				return err
			}
			defer f.Close()
			r = f
		}
		res, err := cartopt.SolveJSON(r, cartopt.Options{Objective: *objective, MultiSeller: *multi, TopN: *topN, MaxNodes: *maxNodes})
		if err != nil {
			return fmt.Errorf("%s: %w", *input, err)
		}
		w := bufio.NewWriter(env.Stdout)
		if err := res.WriteJSON(w); err != nil {
			return err
		}
		return w.Flush()
	}
	return c
}
