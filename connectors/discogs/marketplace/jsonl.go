package marketplace

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"

	"github.com/cratestream/cratestream/internal/grade"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

type jsonMoney struct {
	AmountMinor int64  `json:"amount_minor"`
	Currency    string `json:"currency"`
}

// jsonListing is one line of WriteJSONLines; the field order is the key
// order of the output, documented in the package doc.
type jsonListing struct {
	ListingID          int64      `json:"listing_id"`
	ReleaseID          int64      `json:"release_id"`
	Seller             string     `json:"seller"`
	SellerRating       *float64   `json:"seller_rating"`
	SellerRatingsCount int64      `json:"seller_ratings_count"`
	MediaCondition     string     `json:"media_condition"`
	SleeveCondition    *string    `json:"sleeve_condition"`
	Price              *jsonMoney `json:"price"`
	Shipping           *jsonMoney `json:"shipping"`
	ShipsFrom          string     `json:"ships_from"`
	Available          bool       `json:"available"`
}

// WriteJSONLines writes one JSON object per listing of p, one per line, in
// the format of the package documentation. A listing whose seller is not in
// p.Sellers is an error: its rating would be made up.
func WriteJSONLines(w io.Writer, p *Page) error {
	sellers := make(map[string]*pb.Seller, len(p.Sellers))
	for _, s := range p.Sellers {
		sellers[s.GetUsername()] = s
	}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	// Comments and names are data, not markup: keep "&" and "<" readable.
	enc.SetEscapeHTML(false)
	for _, l := range p.Listings {
		s, ok := sellers[l.GetSeller()]
		if !ok {
			return fmt.Errorf("listing %d: seller %q not in the page's sellers", l.GetListingId(), l.GetSeller())
		}
		j := jsonListing{
			ListingID:          l.GetListingId(),
			ReleaseID:          l.GetReleaseId(),
			Seller:             l.GetSeller(),
			SellerRatingsCount: s.GetRatingsCount(),
			MediaCondition:     grade.Media(l.GetMedia()),
			ShipsFrom:          l.GetShipsFrom(),
			Available:          l.GetAvailable(),
		}
		if s.GetHasRating() {
			r := s.GetRatingPercent()
			j.SellerRating = &r
		}
		if l.GetSleeve() != pb.SleeveGrade_SLEEVE_GRADE_UNSPECIFIED {
			sl := grade.Sleeve(l.GetSleeve())
			j.SleeveCondition = &sl
		}
		if l.GetPrice() != nil {
			j.Price = &jsonMoney{AmountMinor: l.GetPrice().GetAmountMinor(), Currency: l.GetPrice().GetCurrency()}
		}
		if l.GetShippingState() != pb.ShippingState_SHIPPING_STATE_UNAVAILABLE && l.GetShipping() != nil {
			j.Shipping = &jsonMoney{AmountMinor: l.GetShipping().GetAmountMinor(), Currency: l.GetShipping().GetCurrency()}
		}
		if err := enc.Encode(&j); err != nil {
			return fmt.Errorf("listing %d: %w", l.GetListingId(), err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write json lines: %w", err)
	}
	return nil
}
