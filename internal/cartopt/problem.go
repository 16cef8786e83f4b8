package cartopt

import (
	"fmt"

	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// Format is the value of the "format" field of a problem file.
const Format = "cart-input/1"

// DefaultTopN is the number of carts returned when the criteria say
// nothing.
const DefaultTopN = 20

// Problem is a cart problem: what a `cart-input/1` file holds, or what a
// processor assembles in Go. Solve does not modify it.
type Problem struct {
	Name     string
	Criteria Criteria
	// Rates are units of each currency per 1 EUR (the ECB convention),
	// exact: money.ParseRate text goes through ParseDecimal.
	Rates      map[string]Decimal
	Candidates []Candidate
	Listings   []Listing
}

// Criteria are what a collector filled in.
type Criteria struct {
	// Budget for the whole cart, items plus shipping, in Currency units.
	Budget Decimal
	// Currency is the collector's currency, a key of Problem.Rates.
	Currency string
	// MinMedia is the minimum media grade; MEDIA_GRADE_UNSPECIFIED ("Any")
	// means no minimum.
	MinMedia pb.MediaGrade
	// MinSellerRating is the minimum seller rating, percent (0: none).
	MinSellerRating Decimal
	// MinQty is the minimum number of records in a cart. A cart always
	// holds at least one record, so 0 behaves like 1.
	MinQty int
	// Countries are the allowed ships-from countries; empty means any.
	Countries []string
	// TopN is how many carts to return (0: DefaultTopN).
	TopN int
}

// Candidate is a release the collector may buy, with its recommendation
// score. Scores are exact decimals (see the package comment for why);
// DecimalFromFloat turns a float64 score into the decimal it prints as.
type Candidate struct {
	ReleaseID int64
	Score     Decimal
}

// Listing is a marketplace listing. Amounts are in the listing's currency;
// a pb.Money converts with DecimalFromInt(m.AmountMinor,
// money.Exponent(m.Currency)).
type Listing struct {
	ListingID    int64
	ReleaseID    int64
	SellerID     int64
	SellerName   string
	SellerRating Decimal // percent
	Country      string  // ships-from, as Discogs prints it
	Price        Decimal
	Currency     string
	// Shipping to the collector; zero when the listing has none.
	Shipping Decimal
	// ShippingUnavailable: the seller does not ship to the collector.
	ShippingUnavailable bool
	// Media is the parsed media grade; MEDIA_GRADE_UNSPECIFIED means the
	// grade text was not recognised (the listing is dropped as
	// "unknown_grade").
	Media      pb.MediaGrade
	MediaCond  string // Discogs text, for display
	SleeveCond string
	CartURL    string
}

// Limits of the exact integer arithmetic. Budgets and prices are integer
// cents; 2^50 cents is eleven trillion units of any currency. Scores are
// integers after scaling by a power of ten; the sum of their magnitudes over
// all candidates stays under 2^58, so that every sum of scores and every
// bound of the search fits in an int64 with room to spare.
const (
	maxCents    = int64(1) << 50
	maxScoreSum = int64(1) << 58
	// maxScoreDigits caps the decimal resolution of scores: finer scores
	// are rounded half up to 10^-12.
	maxScoreDigits = 12
)

// validateHeader checks the criteria, rates and candidates (listings are
// checked as they are filtered). Errors name the offending field.
func (p *Problem) validateHeader() error {
	c := &p.Criteria
	if c.Budget.Sign() < 0 {
		return fmt.Errorf("criteria.budget: %s is negative", c.Budget)
	}
	if _, ok := p.Rates[c.Currency]; !ok {
		return fmt.Errorf("criteria.currency: %q has no rate in rates_per_eur: %w", c.Currency, ErrUnknownCurrency)
	}
	for cur, r := range p.Rates {
		if r.Sign() <= 0 {
			return fmt.Errorf("rates_per_eur.%s: rate %s is not positive", cur, r)
		}
	}
	if c.MinQty < 0 {
		return fmt.Errorf("criteria.min_qty: %d is negative", c.MinQty)
	}
	if c.TopN < 0 {
		return fmt.Errorf("criteria.top_n: %d is negative", c.TopN)
	}
	if c.MinMedia < pb.MediaGrade_MEDIA_GRADE_UNSPECIFIED || c.MinMedia > pb.MediaGrade_MEDIA_GRADE_POOR {
		return fmt.Errorf("criteria.min_media_cond: %v is not a media grade", c.MinMedia)
	}
	seen := make(map[int64]int, len(p.Candidates))
	for i, cd := range p.Candidates {
		if j, dup := seen[cd.ReleaseID]; dup {
			return fmt.Errorf("candidates[%d].release_id: %d repeats candidates[%d]", i, cd.ReleaseID, j)
		}
		seen[cd.ReleaseID] = i
	}
	return nil
}
