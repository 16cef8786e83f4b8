package gateway

import (
	"net/url"
	"strings"
	"time"

	"github.com/cratestream/cratestream/internal/grade"
	"github.com/cratestream/cratestream/internal/money"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// The JSON shapes of the API (see schemas/openapi.yaml). Money is integer
// minor units plus the decimal text, never a float.

// MoneyView is an amount.
type MoneyView struct {
	AmountMinor int64  `json:"amount_minor"`
	Currency    string `json:"currency"`
	// Amount is the decimal text ("12.50").
	Amount string `json:"amount"`
}

func moneyView(m *pb.Money) *MoneyView {
	if m == nil {
		return nil
	}
	return &MoneyView{AmountMinor: m.AmountMinor, Currency: m.Currency, Amount: money.Decimal(m.AmountMinor, m.Currency)}
}

// StatusView is a request's status.
type StatusView struct {
	RequestID string `json:"request_id"`
	Kind      string `json:"kind"`
	User      string `json:"user"`
	Stage     string `json:"stage"`
	Done      int32  `json:"done"`
	Total     int32  `json:"total"`
	Message   string `json:"message,omitempty"`
	Error     string `json:"error,omitempty"`
	Finished  bool   `json:"finished"`
	Time      string `json:"time,omitempty"`
}

func kindName(k pb.RequestKind) string {
	switch k {
	case pb.RequestKind_REQUEST_KIND_SYNC:
		return "sync"
	case pb.RequestKind_REQUEST_KIND_CART:
		return "cart"
	}
	return "unknown"
}

func statusView(st *pb.RequestStatus) *StatusView {
	if st == nil {
		return nil
	}
	v := &StatusView{RequestID: st.RequestId, Kind: kindName(st.Kind), User: st.UserId, Stage: st.Stage,
		Done: st.Done, Total: st.Total, Message: st.Message, Error: st.Error, Finished: st.Finished}
	if st.EventTimeMs > 0 {
		v.Time = time.UnixMilli(st.EventTimeMs).UTC().Format(time.RFC3339Nano)
	}
	return v
}

// CriteriaView echoes a request's criteria.
type CriteriaView struct {
	Budget          *MoneyView `json:"budget"`
	MinMediaCond    string     `json:"min_media_cond,omitempty"`
	MinSellerRating float64    `json:"min_seller_rating"`
	MinQty          int32      `json:"min_qty"`
	Countries       []string   `json:"countries"`
	WantlistRatio   float64    `json:"wantlist_ratio"`
	TopN            int32      `json:"top_n"`
	Objective       string     `json:"objective"`
	MultiSeller     bool       `json:"multi_seller"`
}

func criteriaView(c *pb.CartCriteria) *CriteriaView {
	if c == nil {
		return nil
	}
	obj := c.Objective
	if obj == "" {
		obj = "seed"
	}
	return &CriteriaView{Budget: moneyView(c.Budget), MinMediaCond: grade.Short(c.MinMedia), MinSellerRating: c.MinSellerRating,
		MinQty: c.MinQty, Countries: nonNil(c.ShipsFrom), WantlistRatio: c.WantlistRatio, TopN: c.TopN, Objective: obj, MultiSeller: c.MultiSeller}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// ItemView is one record of a cart.
type ItemView struct {
	ListingID int64 `json:"listing_id"`
	ReleaseID int64 `json:"release_id"`
	ReleaseMeta
	Seller       string     `json:"seller"`
	Price        *MoneyView `json:"price"`
	Shipping     *MoneyView `json:"shipping,omitempty"`
	ListedPrice  *MoneyView `json:"listed_price,omitempty"`
	Media        string     `json:"media,omitempty"`
	Sleeve       string     `json:"sleeve,omitempty"`
	Score        float64    `json:"score"`
	Source       string     `json:"source"`
	URL          string     `json:"url,omitempty"`
	CartURL      string     `json:"cart_url,omitempty"`
	ShipsFrom    string     `json:"ships_from,omitempty"`
	SellerRating float64    `json:"seller_rating"`
}

// CartView is one proposed purchase.
type CartView struct {
	Rank     int32      `json:"rank"`
	Sellers  []string   `json:"sellers"`
	Items    []ItemView `json:"items"`
	Subtotal *MoneyView `json:"subtotal"`
	Shipping *MoneyView `json:"shipping"`
	Total    *MoneyView `json:"total"`
	Score    float64    `json:"score"`
	Quantity int32      `json:"quantity"`
}

// ResultView is a cart request's answer.
type ResultView struct {
	RequestID          string        `json:"request_id"`
	User               string        `json:"user"`
	Carts              []CartView    `json:"carts"`
	Criteria           *CriteriaView `json:"criteria,omitempty"`
	StaleReleases      []int64       `json:"stale_releases"`
	Error              string        `json:"error,omitempty"`
	Candidates         int32         `json:"candidates"`
	ListingsConsidered int32         `json:"listings_considered"`
	WaitMs             int64         `json:"wait_ms"`
	SolveMs            int64         `json:"solve_ms"`
	TotalMs            int64         `json:"total_ms"`
	Time               string        `json:"time,omitempty"`
}

// resultView renders a cart result; releases (may be nil) adds the items'
// titles.
func resultView(r *pb.CartResult, releases ReleaseLookup) *ResultView {
	v := &ResultView{RequestID: r.RequestId, User: r.UserId, Carts: []CartView{}, Criteria: criteriaView(r.Criteria),
		StaleReleases: nonNil(r.StaleReleases), Error: r.Error, Candidates: r.Candidates, ListingsConsidered: r.ListingsConsidered,
		WaitMs: r.GetTimings().GetWaitMs(), SolveMs: r.GetTimings().GetSolveMs(), TotalMs: r.GetTimings().GetTotalMs()}
	if r.EventTimeMs > 0 {
		v.Time = time.UnixMilli(r.EventTimeMs).UTC().Format(time.RFC3339Nano)
	}
	for _, c := range r.Carts {
		cv := CartView{Rank: c.Rank, Sellers: nonNil(c.Sellers), Items: make([]ItemView, 0, len(c.Items)), Subtotal: moneyView(c.Subtotal),
			Shipping: moneyView(c.Shipping), Total: moneyView(c.Total), Score: c.Score, Quantity: c.Quantity}
		for _, it := range c.Items {
			iv := ItemView{ListingID: it.ListingId, ReleaseID: it.ReleaseId, ReleaseMeta: releaseMeta(releases, it.ReleaseId), Seller: it.Seller, Price: moneyView(it.Price),
				Shipping: moneyView(it.Shipping), ListedPrice: moneyView(it.ListedPrice), Media: grade.Short(it.Media),
				Score: it.Score, Source: it.Source, URL: webURL(it.Url), CartURL: webURL(it.CartUrl), ShipsFrom: it.ShipsFrom, SellerRating: it.SellerRating}
			if it.Sleeve != pb.SleeveGrade_SLEEVE_GRADE_UNSPECIFIED {
				iv.Sleeve = grade.Sleeve(it.Sleeve)
			}
			cv.Items = append(cv.Items, iv)
		}
		v.Carts = append(v.Carts, cv)
	}
	return v
}

// webURL keeps absolute http(s) links only: the UI puts them in hrefs, and
// listing links come from outside (a "javascript:" one must not reach it).
func webURL(s string) string {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	return u.String()
}
