package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"

	"github.com/cratestream/cratestream/internal/grade"
	"github.com/cratestream/cratestream/internal/money"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// CartCriteriaJSON is the body of POST /api/v1/carts.
type CartCriteriaJSON struct {
	// Budget is {"amount_minor": 5000, "currency": "EUR"},
	// {"amount": "50.00", "currency": "EUR"} or a string ("50.00 EUR",
	// "€50", "EUR 50").
	Budget json.RawMessage `json:"budget"`
	// MinMediaCond is a Discogs media grade ("VG+", "Near Mint (NM or
	// M-)"); empty = any.
	MinMediaCond string `json:"min_media_cond"`
	// MinSellerRating is a percentage, 0..100.
	MinSellerRating *float64 `json:"min_seller_rating"`
	MinQty          *int64   `json:"min_qty"`
	// Countries are allowed ships-from countries as Discogs prints them;
	// empty = any.
	Countries []string `json:"countries"`
	// WantlistRatio is the share of wantlist candidates, 0..1 (0 =
	// recommendations only). Default 0.5.
	WantlistRatio *float64 `json:"wantlist_ratio"`
	// TopN is how many carts, 1..100. Default 20.
	TopN      *int64 `json:"top_n"`
	Objective string `json:"objective"`
	// MultiSeller lets a cart combine several sellers.
	MultiSeller bool `json:"multi_seller"`
}

type budgetObject struct {
	AmountMinor *int64  `json:"amount_minor"`
	Amount      *string `json:"amount"`
	Currency    string  `json:"currency"`
}

const (
	maxBudgetMinor  = 1_000_000_000_00 // a billion in a two-decimal currency
	maxCountries    = 100
	maxCountryBytes = 64
	defaultRatio    = 0.5
	defaultTopN     = 20
	maxTopN         = 100
	maxMinQty       = 100
)

// Criteria validates the body and returns the criteria of a CartRequest;
// the error is a *fieldError naming the offending field.
func (c *CartCriteriaJSON) Criteria() (*pb.CartCriteria, error) {
	out := &pb.CartCriteria{Objective: c.Objective, MultiSeller: c.MultiSeller}
	b, err := parseBudget(c.Budget)
	if err != nil {
		return nil, err
	}
	out.Budget = b
	if s := strings.TrimSpace(c.MinMediaCond); s != "" && !strings.EqualFold(s, "any") {
		g, err := grade.ParseMedia(s)
		if err != nil {
			return nil, fieldErr("min_media_cond", "unknown grade %q (want M, NM, VG+, VG, G+, G, F or P)", s)
		}
		out.MinMedia = g
	}
	if v := c.MinSellerRating; v != nil {
		if math.IsNaN(*v) || *v < 0 || *v > 100 {
			return nil, fieldErr("min_seller_rating", "%v is outside 0..100 (percent)", *v)
		}
		out.MinSellerRating = *v
	}
	if v := c.MinQty; v != nil {
		if *v < 0 || *v > maxMinQty {
			return nil, fieldErr("min_qty", "%d is outside 0..%d", *v, maxMinQty)
		}
		out.MinQty = int32(*v)
	}
	if len(c.Countries) > maxCountries {
		return nil, fieldErr("countries", "%d countries, at most %d", len(c.Countries), maxCountries)
	}
	seen := make(map[string]bool)
	for i, cn := range c.Countries {
		cn = strings.Join(strings.Fields(cn), " ")
		switch {
		case cn == "":
			return nil, fieldErr("countries["+strconv.Itoa(i)+"]", "empty country")
		case len(cn) > maxCountryBytes:
			return nil, fieldErr("countries["+strconv.Itoa(i)+"]", "longer than %d bytes", maxCountryBytes)
		}
		if !seen[cn] {
			seen[cn] = true
			out.ShipsFrom = append(out.ShipsFrom, cn)
		}
	}
	out.WantlistRatio = defaultRatio
	if v := c.WantlistRatio; v != nil {
		if math.IsNaN(*v) || *v < 0 || *v > 1 {
			return nil, fieldErr("wantlist_ratio", "%v is outside 0..1", *v)
		}
		out.WantlistRatio = *v
	}
	out.TopN = defaultTopN
	if v := c.TopN; v != nil {
		if *v < 1 || *v > maxTopN {
			return nil, fieldErr("top_n", "%d is outside 1..%d", *v, maxTopN)
		}
		out.TopN = int32(*v)
	}
	switch c.Objective {
	case "", "seed", "sum":
	default:
		return nil, fieldErr("objective", "%q: want seed or sum", c.Objective)
	}
	return out, nil
}

func parseBudget(raw json.RawMessage) (*pb.Money, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, fieldErr("budget", "required: {\"amount_minor\": 5000, \"currency\": \"EUR\"} or \"50.00 EUR\"")
	}
	var m *pb.Money
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fieldErr("budget", "malformed string")
		}
		p, err := money.ParsePrice(s)
		if err != nil {
			return nil, fieldErr("budget", "%q: want an amount and a currency (\"50.00 EUR\", \"€50\")", s)
		}
		m = p
	case '{':
		var o budgetObject
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&o); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) && te.Field != "" {
				return nil, fieldErr("budget."+te.Field, "wrong type (JSON %s)", te.Value)
			}
			if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
				return nil, fieldErr("budget."+strings.Trim(name, `"`), "unknown field (want amount_minor or amount, and currency)")
			}
			return nil, fieldErr("budget", "malformed: %v", err)
		}
		cur := strings.ToUpper(strings.TrimSpace(o.Currency))
		if cur == "" {
			return nil, fieldErr("budget.currency", "required (ISO 4217, e.g. EUR)")
		}
		if !money.Known(cur) {
			return nil, fieldErr("budget.currency", "unknown currency %q", o.Currency)
		}
		switch {
		case o.AmountMinor != nil && o.Amount != nil:
			return nil, fieldErr("budget", "give amount_minor or amount, not both")
		case o.AmountMinor != nil:
			m = &pb.Money{AmountMinor: *o.AmountMinor, Currency: cur}
		case o.Amount != nil:
			v, err := money.ParseAmount(*o.Amount, cur)
			if err != nil {
				return nil, fieldErr("budget.amount", "%v", err)
			}
			m = &pb.Money{AmountMinor: v, Currency: cur}
		default:
			return nil, fieldErr("budget.amount_minor", "required (or budget.amount as a decimal string)")
		}
	default:
		return nil, fieldErr("budget", "want an object or a string, got %s", raw)
	}
	if m.AmountMinor <= 0 {
		return nil, fieldErr("budget", "must be positive, got %s", money.String(m))
	}
	if m.AmountMinor > maxBudgetMinor {
		return nil, fieldErr("budget", "%s is more than we can shop for", money.String(m))
	}
	return m, nil
}
