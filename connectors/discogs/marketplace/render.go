package marketplace

import (
	"bufio"
	"errors"
	"fmt"
	"html"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/cratestream/cratestream/internal/grade"
	"github.com/cratestream/cratestream/internal/money"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// RenderPage is what Render draws: one page of a release's listings.
type RenderPage struct {
	ReleaseID int64
	// Title is the item title of every row ("Artist - Title (LP, Album)");
	// "" renders "Release <id>".
	Title    string
	Listings []*pb.Listing
	// Sellers gives the rating of each listing's seller, by username. Their
	// ships_from is not used: a row shows its listing's ships_from.
	Sellers []*pb.Seller
	// Page (1-based) of Limit listings out of Total, drawn as Discogs does
	// ("251 – 500 of 612", items-per-page selector, page links). Page 0
	// draws no pagination, as for an empty table.
	Page, Limit, Total int
	// Country is the visitor's country in "Unavailable in <Country>"; ""
	// means "Germany".
	Country string
}

// Render writes p as a full marketplace page in the markup of the real
// desktop page (table.mpitems), which Parse reads back into the same
// listings and sellers. Discogs prints each currency one way (see
// FormatPrice); rows carry data-currency/data-pricevalue as on the site.
func Render(w io.Writer, p RenderPage) error {
	d, err := renderData(p)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := pageTmpl.Execute(bw, d); err != nil {
		return fmt.Errorf("render release %d: %w", p.ReleaseID, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("render release %d: %w", p.ReleaseID, err)
	}
	return nil
}

// symbols are the prefixes Discogs prints for its marketplace currencies;
// other currencies get their ISO code.
var symbols = map[string]string{
	"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CAD": "CA$", "AUD": "A$", "NZD": "NZ$",
	"BRL": "R$", "MXN": "MX$", "CHF": "CHF", "SEK": "SEK", "ZAR": "ZAR",
}

// FormatPrice prints m as Discogs does on English pages: "$9,000.00",
// "€11.50", "¥19,800", "CA$18.00", "CHF325.59", "SEK250.00".
func FormatPrice(m *pb.Money) string {
	sym, ok := symbols[m.GetCurrency()]
	if !ok {
		sym = m.GetCurrency()
	}
	dec := money.Decimal(m.GetAmountMinor(), m.GetCurrency())
	neg := strings.HasPrefix(dec, "-")
	dec = strings.TrimPrefix(dec, "-")
	intPart, frac, hasFrac := strings.Cut(dec, ".")
	var b strings.Builder
	b.WriteString(sym)
	if neg {
		b.WriteByte('-')
	}
	for i, r := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if hasFrac {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return b.String()
}

// priceValue is the data-pricevalue attribute: always two decimals, even
// for yen ("19800.00"), as on the site.
func priceValue(m *pb.Money) string {
	d := money.Decimal(m.AmountMinor, m.Currency)
	if money.Exponent(m.Currency) == 0 {
		d += ".00"
	}
	return d
}

type tmplPage struct {
	ReleaseID  int64
	Title      string
	Rows       []tmplRow
	Pagination *tmplPagination
}

type tmplRow struct {
	ListingID, SellerID         int64
	Seller, ShipsFrom, Comments string
	Media, Sleeve               string
	Price, PriceValue, Currency string
	Shipping                    string // "" for a bare "+" with a button
	ShippingButton              bool
	HasRating                   bool
	Rating, Ratings, Stars      string
	Available                   bool
	Unavailable                 string
}

type tmplPagination struct {
	First, Last, Total int
	Limits             []tmplLimit
	Prev, Next         string
	Links              []tmplLink
}

type tmplLimit struct {
	Value    int
	Selected bool
}

type tmplLink struct {
	N       int
	Href    string
	Current bool
	Gap     bool
}

func renderData(p RenderPage) (*tmplPage, error) {
	if p.ReleaseID <= 0 {
		return nil, fmt.Errorf("render: release id %d", p.ReleaseID)
	}
	d := &tmplPage{ReleaseID: p.ReleaseID, Title: p.Title}
	if d.Title == "" {
		d.Title = "Release " + strconv.FormatInt(p.ReleaseID, 10)
	}
	country := p.Country
	if country == "" {
		country = "Germany"
	}
	sellers := make(map[string]*pb.Seller, len(p.Sellers))
	for _, s := range p.Sellers {
		if s != nil {
			sellers[s.Username] = s
		}
	}
	for i, l := range p.Listings {
		r, err := renderRow(l, sellers, p.ReleaseID, country)
		if err != nil {
			return nil, fmt.Errorf("render release %d, listing %d (row %d): %w", p.ReleaseID, l.GetListingId(), i+1, err)
		}
		d.Rows = append(d.Rows, r)
	}
	if p.Page > 0 {
		if p.Limit <= 0 || p.Total < (p.Page-1)*p.Limit+len(p.Listings) {
			return nil, fmt.Errorf("render release %d: page %d of %d listings with %d per page holds %d listings", p.ReleaseID, p.Page, p.Total, p.Limit, len(p.Listings))
		}
		d.Pagination = renderPagination(p)
	}
	return d, nil
}

func renderRow(l *pb.Listing, sellers map[string]*pb.Seller, release int64, country string) (tmplRow, error) {
	switch {
	case l == nil:
		return tmplRow{}, errors.New("nil listing")
	case l.ListingId <= 0:
		return tmplRow{}, errors.New("no listing id")
	case l.ReleaseId != 0 && l.ReleaseId != release:
		return tmplRow{}, fmt.Errorf("listing of release %d", l.ReleaseId)
	case l.Price == nil || !money.Known(l.Price.Currency) || l.Price.AmountMinor < 0:
		return tmplRow{}, fmt.Errorf("price %v", l.Price)
	case grade.Media(l.Media) == "":
		return tmplRow{}, fmt.Errorf("media grade %v", l.Media)
	case l.Sleeve != pb.SleeveGrade_SLEEVE_GRADE_UNSPECIFIED && grade.Sleeve(l.Sleeve) == "":
		return tmplRow{}, fmt.Errorf("sleeve grade %v", l.Sleeve)
	case l.ShipsFrom == "":
		return tmplRow{}, errors.New("no ships_from")
	case l.Seller == "":
		return tmplRow{}, errors.New("no seller")
	}
	s, ok := sellers[l.Seller]
	if !ok {
		return tmplRow{}, fmt.Errorf("seller %q not in RenderPage.Sellers", l.Seller)
	}
	r := tmplRow{
		ListingID: l.ListingId, SellerID: l.SellerId,
		Seller: l.Seller, ShipsFrom: l.ShipsFrom, Comments: l.Comments,
		Media: grade.Media(l.Media), Sleeve: grade.Sleeve(l.Sleeve),
		Price: FormatPrice(l.Price), PriceValue: priceValue(l.Price), Currency: l.Price.Currency,
		HasRating: s.HasRating, Available: l.Available,
		Unavailable: "Unavailable in " + country,
	}
	if s.HasRating {
		r.Rating = strconv.FormatFloat(s.RatingPercent, 'f', 1, 64)
		r.Ratings = groupThousands(s.RatingsCount) + " ratings"
		if s.RatingsCount == 1 {
			r.Ratings = "1 rating"
		}
		r.Stars = strconv.FormatFloat(math.Round(s.RatingPercent/10)/2, 'f', 1, 64)
	}
	switch l.ShippingState {
	case pb.ShippingState_SHIPPING_STATE_PRICED:
		if l.Shipping == nil || !money.Known(l.Shipping.Currency) || l.Shipping.AmountMinor < 0 {
			return tmplRow{}, fmt.Errorf("priced shipping %v", l.Shipping)
		}
		r.Shipping, r.ShippingButton = FormatPrice(l.Shipping), true
	case pb.ShippingState_SHIPPING_STATE_FREE:
		r.Shipping = "no extra shipping"
		// The button is the only other place a row without a cart button
		// carries the seller id.
		r.ShippingButton = !l.Available
	default:
		r.ShippingButton = true
	}
	return r, nil
}

func renderPagination(p RenderPage) *tmplPagination {
	pages := (p.Total + p.Limit - 1) / p.Limit
	first := (p.Page-1)*p.Limit + 1
	pg := &tmplPagination{First: first, Last: first + len(p.Listings) - 1, Total: p.Total}
	href := func(n int) string {
		return fmt.Sprintf("/sell/release/%d?page=%d&limit=%d", p.ReleaseID, n, p.Limit)
	}
	for _, v := range []int{25, 50, 100, 250} {
		pg.Limits = append(pg.Limits, tmplLimit{Value: v, Selected: v == p.Limit})
	}
	if p.Limit != 25 && p.Limit != 50 && p.Limit != 100 && p.Limit != 250 {
		pg.Limits = append(pg.Limits, tmplLimit{Value: p.Limit, Selected: true})
	}
	if p.Page > 1 {
		pg.Prev = href(p.Page - 1)
	}
	if p.Page < pages {
		pg.Next = href(p.Page + 1)
	}
	// Like Discogs: the first and last pages, a window around the current
	// one, and gaps in between.
	gap := false
	for n := 1; n <= pages; n++ {
		if n == 1 || n == pages || (n >= p.Page-2 && n <= p.Page+2) {
			pg.Links = append(pg.Links, tmplLink{N: n, Href: href(n), Current: n == p.Page})
			gap = false
		} else if !gap {
			pg.Links = append(pg.Links, tmplLink{Gap: true})
			gap = true
		}
	}
	return pg
}

func groupThousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

type tmplPager struct {
	ReleaseID int64
	P         *tmplPagination
	Where     string // "top" or "bottom": Discogs draws the navigation twice
}

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"pager": func(release int64, p *tmplPagination, where string) tmplPager {
		return tmplPager{ReleaseID: release, P: p, Where: where}
	},
	// text escapes element content the way Discogs does: html/template
	// would also turn the "+" of "VG+" into "&#43;", correct but unlike the
	// real pages.
	"text": func(s string) template.HTML { return template.HTML(html.EscapeString(s)) },
}).Parse(`<!DOCTYPE html>
<html lang="en" class="no-js">
    <head>
        <meta charset="utf-8">
        <title>{{text .Title}} For Sale at Discogs Marketplace</title>
        <link rel="canonical" href="https://www.discogs.com/sell/release/{{.ReleaseID}}">
    </head>
    <body class="marketplace">
<div id="page_content">
    <h2 class="aside-menu-title hide-desktop">Items for sale</h2>
            <div id="pjax_container">
<div class="hide-desktop">
{{- with .Pagination}}{{template "pagination" (pager $.ReleaseID . "top")}}{{end}}
</div>
        <table class="table_block mpitems push_down table_responsive">
        <thead>
            <tr>
                <th class="marketplace_available_sorts" colspan="2">Sort By:    <a href="/sell/release/{{.ReleaseID}}?ev=rb&amp;sort=listed,desc" class="sortable-link "><span class="link-text">Listed</span></a>,    <a href="/sell/release/{{.ReleaseID}}?ev=rb&amp;sort=condition,desc" class="sortable-link "><span class="link-text">Condition</span></a>, Artist, Title, Label</th>
                <th class="seller_info_header">    <a href="/sell/release/{{.ReleaseID}}?ev=rb&amp;sort=seller,asc" class="sortable-link "><span class="link-text">Seller</span></a></th>
                <th class="price_header">    <a href="/sell/release/{{.ReleaseID}}?ev=rb&amp;sort=price,desc" class="sortable-link  sortable_link_selected" title="sorted ascending"><span class="link-text">Price</span>&nbsp;<i class="icon icon-chevron-up" role="img" aria-hidden="true"></i></a></th>
                <th><span class="sr-only">Actions</span></th>
            </tr>
        </thead>
        <tbody>
{{- range .Rows}}
                            <tr class="shortcut_navigable " data-release-id="{{$.ReleaseID}}">
        <td class="item_picture as_float">
            <div class="hide-desktop">
{{template "price" .}}
            </div>
        </td>
        <td class="item_description">
                <strong>
        <a href="/sell/item/{{.ListingID}}" class="item_description_title" data-followable="true">{{text $.Title}}</a>
    </strong>
    <br />
    <p class="item_condition">
        <span class="mplabel condition-label-desktop">
            Media Condition:
        </span>
        <span class="mplabel condition-label-mobile">Media:</span>
    <span>
        {{text .Media}}
            <span class="has-tooltip" role="note" tabindex="0">
                <i class="icon icon-info-circle muted" role="img" aria-hidden="true"></i>
                <span class="tooltip multi-line-tooltip sr-only" role="tooltip"><span class="tooltip-inner">{{text .Media}}</span></span>
            </span>
    </span>
        <br />
{{- if .Sleeve}}
            <span class="mplabel condition-label-desktop">Sleeve Condition:</span>
            <span class="mplabel condition-label-mobile">Sleeve:</span>
            <span class="item_sleeve_condition">{{text .Sleeve}}</span>
            <br />
{{- end}}
    </p>
    <p class="hide_mobile">
                {{text .Comments}}<br>
    </p>
    <a href="/release/{{$.ReleaseID}}" class="item_release_link hide_mobile">View Release Page</a>
        </td>
        <td class="seller_info">
                <ul>
        <li>
            <div class="seller_block">
                <span class="mplabel seller_label">Seller:</span>
                <strong><a href="/seller/{{.Seller}}/profile">{{text .Seller}}</a></strong>
            </div>
        </li>
        <li>
{{- if .HasRating}}
            <span class="star_rating" role="img" aria-label="{{.Seller}} rating {{.Stars}} out of 5"></span>
    <strong>{{.Rating}}%</strong><span>,</span>    <a href="/sell/seller_feedback/{{.Seller}}" target="_top" class="section_link">
        {{.Ratings}}    </a>
{{- else}}
            <span>New seller</span>
{{- end}}
            </li>
        <li><span class="mplabel">Ships From:</span>{{text .ShipsFrom}}</li>
    </ul>
        </td>
        <td class="hide-desktop mobile-description">
                    </td>
        <td class="item_price hide_mobile">
{{template "price" .}}
        </td>
{{- if .Available}}
                    <td class="item_add_to_cart item_add_to_cart_desktop">
                <div class="hide_mobile">
                                    <a class="button button-green cart-button " data-item-id="{{.ListingID}}"{{if .SellerID}} data-seller-id="{{.SellerID}}"{{end}} href="/sell/cart/?add={{.ListingID}}&amp;ev=">Add&nbsp;to&nbsp;Cart</a>
        <p>
        <a href="/sell/item/{{.ListingID}}?ev=bp_det"><strong>Details</strong></a>
    </p>
                </div>
            </td>
{{- else}}
                    <td class="item_add_to_cart hide_mobile cart_button_substitute_text muted">
                                    {{text .Unavailable}}                            </td>
{{- end}}
                    </tr>
{{- end}}
        </tbody>
    </table>
{{- with .Pagination}}{{template "pagination" (pager $.ReleaseID . "bottom")}}{{end}}
            </div>
</div>
    </body>
</html>
{{define "price"}}    <div>
            <span class="price" data-currency="{{.Currency}}" data-pricevalue="{{.PriceValue}}">{{text .Price}}</span>
        <br />
        <span class="item_shipping">
        +{{text .Shipping}}
{{- if .ShippingButton}}
                <button class="show-shipping-methods" data-seller-username="{{.Seller}}"{{if .SellerID}} data-seller-id="{{.SellerID}}"{{end}}>shipping</button>
{{- end}}</span>
    </div>{{end}}
{{define "pagination"}}
                    <nav aria-label="Pagination" class="pagination {{.Where}} ">
        <form action="/sell/release/{{.ReleaseID}}" method="get" data-section="general">
                            <strong class="pagination_total">
        {{.P.First}} &ndash; {{.P.Last}} of {{.P.Total}}    </strong>
                                    <div class="pagination_controls multiple_filters">
                                                            <label class="hide_mobile" for="limit_{{.Where}}">Show<span class="sr-only"> items per page</span></label>
    <select class="hide_mobile" name="limit" id="limit_{{.Where}}">
            {{range .P.Limits}}<option value="{{.Value}}"{{if .Selected}} selected="selected"{{end}}>{{.Value}}</option>{{end}}
    </select>
            </div>
            <ul class="pagination_page_links">
{{- with .P.Prev}}
                <li class="hide_mobile"><a class="pagination_previous" href="{{.}}" rel="prev">&lsaquo; Previous</a></li>
{{- end}}
{{- range .P.Links}}
{{- if .Gap}}
                <li class="hide_mobile"><span class="pagination_gap">&hellip;</span></li>
{{- else if .Current}}
                <li class="hide_mobile"><span class="pagination_current" aria-current="page">{{.N}}</span></li>
{{- else}}
                <li class="hide_mobile"><a class="pagination_page" href="{{.Href}}">{{.N}}</a></li>
{{- end}}
{{- end}}
{{- with .P.Next}}
                <li><a class="pagination_next" href="{{.}}" rel="next">Next &rsaquo;</a></li>
{{- end}}
            </ul>
        </form>
    </nav>
{{end}}`))
