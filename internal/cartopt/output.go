package cartopt

import (
	"bufio"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"unicode/utf8"
)

// WriteJSON writes r in the output format of FORMAT.md: money as numbers
// with two decimals, the score with six (rounded half up from the exact
// objective), counts with the rejection reasons, elapsed_ms. Multi-seller
// carts carry "sellers" instead of seller_id/listing_ids.
func (r *Result) WriteJSON(w io.Writer) error {
	bw := bufio.NewWriter(w)
	bw.WriteString(`{"carts": [`)
	for i := range r.Carts {
		c := &r.Carts[i]
		if i > 0 {
			bw.WriteString(",")
		}
		bw.WriteString("\n  {\"rank\": ")
		bw.WriteString(strconv.Itoa(c.Rank))
		if r.MultiSeller {
			bw.WriteString(`, "sellers": [`)
			for j, sc := range c.Sellers {
				if j > 0 {
					bw.WriteString(", ")
				}
				bw.WriteString(`{"seller_id": `)
				bw.WriteString(strconv.FormatInt(sc.SellerID, 10))
				bw.WriteString(`, "seller_name": `)
				writeString(bw, sc.SellerName)
				bw.WriteString(`, "listing_ids": `)
				writeIDs(bw, sc.ListingIDs)
				bw.WriteString(`, "subtotal": `)
				bw.WriteString(formatCents(sc.Subtotal))
				bw.WriteString(`, "shipping": `)
				bw.WriteString(formatCents(sc.Shipping))
				bw.WriteString("}")
			}
			bw.WriteString("]")
		} else if len(c.Sellers) > 0 {
			bw.WriteString(`, "seller_id": `)
			bw.WriteString(strconv.FormatInt(c.Sellers[0].SellerID, 10))
			bw.WriteString(`, "seller_name": `)
			writeString(bw, c.Sellers[0].SellerName)
			bw.WriteString(`, "listing_ids": `)
			writeIDs(bw, c.ListingIDs)
		}
		fmt.Fprintf(bw, `, "quantity": %d, "subtotal": %s, "shipping": %s, "total": %s, "score": %s}`,
			c.Quantity, formatCents(c.Subtotal), formatCents(c.Shipping), formatCents(c.Total), formatScore(c.scoreRat))
	}
	if len(r.Carts) > 0 {
		bw.WriteString("\n")
	}
	bw.WriteString(`], "objective": `)
	writeString(bw, r.Objective)
	fmt.Fprintf(bw, `, "multi_seller": %t, "currency": `, r.MultiSeller)
	writeString(bw, r.Currency)
	c := &r.Counts
	rj := &c.Rejected
	fmt.Fprintf(bw, `,
 "counts": {"candidates": %d, "listings_in": %d, "listings_kept": %d, "sellers": %d, "feasible_sellers": %d, "carts": %d,
  "rejected": {"unknown_grade": %d, "unknown_currency": %d, "not_candidate": %d, "country": %d, "grade": %d, "seller_rating": %d, "shipping_unavailable": %d, "duplicate": %d}},
 "elapsed_ms": %s}
`, c.Candidates, c.ListingsIn, c.ListingsKept, c.Sellers, c.FeasibleSellers, c.Carts,
		rj.UnknownGrade, rj.UnknownCurrency, rj.NotCandidate, rj.Country, rj.Grade, rj.SellerRating, rj.ShippingUnavailable, rj.Duplicate,
		strconv.FormatFloat(float64(r.Elapsed.Microseconds())/1000, 'f', 3, 64))
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write carts: %w", err)
	}
	return nil
}

// formatCents prints integer cents with two decimals ("5.50", "-0.05").
func formatCents(c int64) string {
	return DecimalFromInt(c, 2).fixed(2)
}

// formatScore prints an exact objective with six decimals, half up.
func formatScore(x *big.Rat) string {
	if x == nil {
		return "0.000000"
	}
	v := new(big.Rat).Mul(x, big.NewRat(1_000_000, 1))
	n := roundHalfUpRat(v)
	return Decimal{rat: new(big.Rat).SetFrac(n, big.NewInt(1_000_000))}.fixed(6)
}

// fixed prints d with exactly n decimals; d must have at most n.
func (d Decimal) fixed(n int) string {
	if d.rat != nil {
		return d.rat.FloatString(n)
	}
	return d.Rat().FloatString(n)
}

func writeIDs(w *bufio.Writer, ids []int64) {
	w.WriteByte('[')
	for i, id := range ids {
		if i > 0 {
			w.WriteString(", ")
		}
		w.WriteString(strconv.FormatInt(id, 10))
	}
	w.WriteByte(']')
}

// writeString writes s as a JSON string literal.
func writeString(w *bufio.Writer, s string) {
	const hex = "0123456789abcdef"
	w.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				w.WriteByte('\\')
				w.WriteByte(c)
			case c < 0x20:
				w.WriteString(`\u00`)
				w.WriteByte(hex[c>>4])
				w.WriteByte(hex[c&0xf])
			default:
				w.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			w.WriteString(`\ufffd`)
		case r == '\u2028' || r == '\u2029':
			fmt.Fprintf(w, `\u%04x`, r)
		default:
			w.WriteString(s[i : i+size])
		}
		i += size
	}
	w.WriteByte('"')
}
