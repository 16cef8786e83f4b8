package marketplace

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/PuerkitoBio/goquery"

	"github.com/cratestream/cratestream/internal/grade"
	"github.com/cratestream/cratestream/internal/money"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// ErrMarkup is wrapped by every error about a page whose markup Parse does
// not recognise: no listings table, or a row missing a required field.
// Scrapers should treat it as "the parser needs updating", not as a
// transient failure worth retrying.
var ErrMarkup = errors.New("discogs marketplace markup not recognised")

// ErrReleaseMismatch is returned when the page is for another release than
// Options.ReleaseID, e.g. after Discogs redirected a merged release.
var ErrReleaseMismatch = errors.New("page is for another release")

// RowError reports a listing row whose markup did not match: which row
// (1-based, in page order), its listing id when it was found, and the
// field that was missing or unreadable.
type RowError struct {
	Row       int
	ListingID int64 // 0 when the id itself could not be read
	Field     string
	Err       error
}

func (e *RowError) Error() string {
	if e.ListingID != 0 {
		return fmt.Sprintf("row %d (listing %d): %s: %v", e.Row, e.ListingID, e.Field, e.Err)
	}
	return fmt.Sprintf("row %d: %s: %v", e.Row, e.Field, e.Err)
}

// Unwrap makes errors.Is(err, ErrMarkup) true for every row error, besides
// exposing the underlying parse error.
func (e *RowError) Unwrap() []error { return []error{ErrMarkup, e.Err} }

// Page is one parsed marketplace page.
type Page struct {
	ReleaseID int64
	Listings  []*pb.Listing
	// Sellers holds one record per seller on the page, in order of first
	// appearance.
	Sellers []*pb.Seller
	// Pagination as the page shows it ("251 – 500 of 612"): the current
	// page, the number of pages and the number of listings of the release.
	// All 0 when the page has no pagination (table fragments, empty pages).
	Page, Pages, Total int
}

// Options tell Parse what it cannot read from the page.
type Options struct {
	// ReleaseID the page was requested for; 0 detects it from the markup.
	// When set and the rows say otherwise, Parse fails with
	// ErrReleaseMismatch.
	ReleaseID int64
	// Now is when the page was fetched: it becomes seen_at_ms and
	// event_time_ms, and goes into the event ids. Zero means time.Now().
	Now time.Time
	// Source is the source field of the listings; "" means "scraper".
	Source string
}

// ListingEventID is the event id Parse gives the listing of a release seen
// at now. It is a function of its arguments only, so parsing the same page
// fetched at the same time twice gives the same events, which lets
// downstream deduplicate replays.
func ListingEventID(releaseID, listingID int64, now time.Time) string {
	return "listing/" + strconv.FormatInt(releaseID, 10) + "/" + strconv.FormatInt(listingID, 10) + "/" + strconv.FormatInt(now.UnixMilli(), 10)
}

// SellerEventID is the event id Parse gives a seller seen on a release's
// page at now.
func SellerEventID(releaseID int64, username string, now time.Time) string {
	return "seller/" + strconv.FormatInt(releaseID, 10) + "/" + username + "/" + strconv.FormatInt(now.UnixMilli(), 10)
}

var (
	releaseHrefRe = regexp.MustCompile(`/sell/release/(\d+)`)
	itemHrefRe    = regexp.MustCompile(`/sell/item/(\d+)`)
	ratingRe      = regexp.MustCompile(`^(\d{1,3}(?:\.\d+)?)\s*%$`)
	ratingsRe     = regexp.MustCompile(`^([\d,]+)\s+ratings?$`)
	unavailableRe = regexp.MustCompile(`^Unavailable in \S.*$`)
	totalRe       = regexp.MustCompile(`([\d,]+)\s*[–—-]\s*([\d,]+)\s+of\s+([\d,]+)`)
	pageParamRe   = regexp.MustCompile(`[?&;]page=(\d+)`)
)

// Parse reads a marketplace release page, or only its table.mpitems
// fragment. The input is decoded as UTF-8 whatever it declares: Discogs
// serves UTF-8 and the saved fragments carry no charset at all.
func Parse(r io.Reader, o Options) (*Page, error) {
	if o.ReleaseID < 0 {
		// It would be stamped on every listing of the page.
		return nil, fmt.Errorf("marketplace: Options.ReleaseID %d is not a release id", o.ReleaseID)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read marketplace page: %w", err)
	}
	// The HTML tokenizer passes invalid bytes through, and a proto3 string
	// holding them fails to marshal: one bad byte in a comment would make
	// the whole page unpublishable.
	if !utf8.Valid(b) {
		b = bytes.ToValidUTF8(b, []byte("\uFFFD"))
	}
	doc, err := goquery.NewDocumentFromReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("parse marketplace page: %w", err)
	}
	return parseDocument(doc, o)
}

func parseDocument(doc *goquery.Document, o Options) (*Page, error) {
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	source := o.Source
	if source == "" {
		source = "scraper"
	}
	table := doc.Find("table.mpitems")
	if table.Length() == 0 {
		return nil, fmt.Errorf("no table.mpitems: %w", ErrMarkup)
	}
	// Rows of nested tables (none today) must not count as listings; a
	// single-cell row without an item link is a message ("no items"), not a
	// listing. Anything else is a listing, and must parse as one.
	var rows []*goquery.Selection
	table.ChildrenFiltered("tbody").ChildrenFiltered("tr").Each(func(_ int, tr *goquery.Selection) {
		if tr.ChildrenFiltered("td").Length() >= 2 || tr.Find(`a[href*="/sell/item/"]`).Length() > 0 {
			rows = append(rows, tr)
		}
	})

	page := &Page{}
	var err error
	page.ReleaseID, err = releaseID(doc, rows, o.ReleaseID)
	if err != nil {
		return nil, err
	}
	page.Page, page.Pages, page.Total = pagination(doc)

	nowMs := now.UnixMilli()
	seen := make(map[int64]int, len(rows))
	sellers := make(map[string]*pb.Seller)
	for i, tr := range rows {
		l, s, err := parseRow(tr, i+1)
		if err != nil {
			return nil, err
		}
		if prev, dup := seen[l.ListingId]; dup {
			return nil, &RowError{Row: i + 1, ListingID: l.ListingId, Field: "listing id", Err: fmt.Errorf("repeats row %d", prev)}
		}
		seen[l.ListingId] = i + 1
		l.ReleaseId = page.ReleaseID
		l.EventId = ListingEventID(page.ReleaseID, l.ListingId, now)
		l.EventTimeMs, l.SeenAtMs, l.Source = nowMs, nowMs, source
		page.Listings = append(page.Listings, l)
		switch prev := sellers[s.Username]; {
		case prev == nil:
			sellers[s.Username] = s
			s.EventId = SellerEventID(page.ReleaseID, s.Username, now)
			s.EventTimeMs = nowMs
			page.Sellers = append(page.Sellers, s)
		case prev.SellerId == 0:
			// Rows without a cart button may lack the id another row has.
			prev.SellerId = s.SellerId
		}
	}
	return page, nil
}

// releaseID finds the release of the page: the rows' data-release-id, the
// canonical URL, then the sort and pagination links. Rows that disagree
// with the page are an error: a listing filed under the wrong release
// would be worse than a failed scrape.
func releaseID(doc *goquery.Document, rows []*goquery.Selection, want int64) (int64, error) {
	var fromRows int64
	for i, tr := range rows {
		v, ok := tr.Attr("data-release-id")
		if !ok || strings.TrimSpace(v) == "" {
			continue
		}
		id, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || id <= 0 {
			return 0, &RowError{Row: i + 1, Field: "data-release-id", Err: fmt.Errorf("%q is not a release id", v)}
		}
		switch {
		case fromRows == 0:
			fromRows = id
		case id != fromRows:
			return 0, &RowError{Row: i + 1, Field: "data-release-id", Err: fmt.Errorf("release %d on a page of release %d", id, fromRows)}
		}
	}
	if want != 0 {
		if fromRows != 0 && fromRows != want {
			return 0, fmt.Errorf("rows are for release %d, requested %d: %w", fromRows, want, ErrReleaseMismatch)
		}
		return want, nil
	}
	if fromRows != 0 {
		return fromRows, nil
	}
	for _, c := range []struct{ sel, attr string }{
		{`link[rel="canonical"]`, "href"},
		{`table.mpitems thead a[href]`, "href"},
		{`nav.pagination form[action]`, "action"},
		{`nav.pagination a[href]`, "href"},
	} {
		var id int64
		doc.Find(c.sel).EachWithBreak(func(_ int, s *goquery.Selection) bool {
			if m := releaseHrefRe.FindStringSubmatch(s.AttrOr(c.attr, "")); m != nil {
				id, _ = strconv.ParseInt(m[1], 10, 64)
			}
			return id == 0
		})
		if id > 0 {
			return id, nil
		}
	}
	if len(rows) == 0 {
		// An empty fragment with nothing to tie it to a release: no listing
		// can be misfiled, but the caller has to say which release it asked.
		return 0, fmt.Errorf("release id not found on an empty page; set Options.ReleaseID: %w", ErrMarkup)
	}
	return 0, fmt.Errorf("release id not found (no data-release-id, canonical URL or /sell/release/ link); set Options.ReleaseID: %w", ErrMarkup)
}

// pagination reads "251 – 500 of 612" and the items-per-page selector. The
// per-page limit is what turns the range into page numbers; without it the
// page links are the fallback.
func pagination(doc *goquery.Document) (page, pages, total int) {
	nav := doc.Find("nav.pagination")
	m := totalRe.FindStringSubmatch(collapse(nav.Find(".pagination_total").First().Text()))
	if m == nil {
		return 0, 0, 0
	}
	first, last := atoi(m[1]), atoi(m[2])
	total = atoi(m[3])
	limit := atoi(nav.Find(`select[name="limit"] option[selected]`).First().AttrOr("value", ""))
	maxLink := 0
	nav.Find("a[href]").Each(func(_ int, a *goquery.Selection) {
		if pm := pageParamRe.FindStringSubmatch(a.AttrOr("href", "")); pm != nil {
			maxLink = max(maxLink, atoi(pm[1]))
		}
	})
	switch {
	case limit > 0:
		page = (max(first, 1)-1)/limit + 1
		pages = (total + limit - 1) / limit
	default:
		page = atoi(collapse(nav.Find(".pagination_current").First().Text()))
		if page == 0 && first <= 1 {
			page = 1
		}
		if last >= total {
			pages = page
		}
	}
	pages = max(pages, maxLink, page)
	return page, pages, total
}

func parseRow(tr *goquery.Selection, row int) (*pb.Listing, *pb.Seller, error) {
	fail := func(id int64, field string, err error) (*pb.Listing, *pb.Seller, error) {
		return nil, nil, &RowError{Row: row, ListingID: id, Field: field, Err: err}
	}
	notFound := errors.New("not found")

	desc := tr.ChildrenFiltered("td.item_description").First()
	id := listingID(tr, desc)
	if id == 0 {
		return fail(0, "listing id (/sell/item/ link)", notFound)
	}
	l := &pb.Listing{ListingId: id, Available: true}

	media, sleeve, err := conditions(desc)
	if err != nil {
		return fail(id, "condition", err)
	}
	l.Media, l.Sleeve = media, sleeve
	if p := desc.Find("p.item_condition").First().NextAllFiltered("p").First(); p.Length() > 0 {
		l.Comments = collapse(p.Text())
	}

	info := tr.ChildrenFiltered("td.seller_info").First()
	if info.Length() == 0 {
		return fail(id, "seller (td.seller_info)", notFound)
	}
	s, err := seller(info)
	if err != nil {
		return fail(id, "seller", err)
	}
	if v := tr.Find("[data-seller-id]").FilterFunction(func(_ int, e *goquery.Selection) bool {
		return strings.TrimSpace(e.AttrOr("data-seller-id", "")) != ""
	}).First(); v.Length() > 0 {
		sid, err := strconv.ParseInt(strings.TrimSpace(v.AttrOr("data-seller-id", "")), 10, 64)
		if err != nil {
			return fail(id, "data-seller-id", err)
		}
		s.SellerId = sid
	}
	l.Seller, l.SellerId, l.ShipsFrom = s.Username, s.SellerId, s.ShipsFrom

	// The desktop cell; the mobile copy in td.item_picture is the fallback
	// only, so a row is never read twice.
	cell := tr.ChildrenFiltered("td.item_price").First()
	if cell.Length() == 0 {
		cell = tr
	}
	priceSpan := cell.Find("span.price").First()
	if priceSpan.Length() == 0 {
		return fail(id, "price (span.price)", notFound)
	}
	if l.Price, err = price(priceSpan); err != nil {
		return fail(id, "price", err)
	}
	// Discogs sells nothing for free or less: a price that is not
	// positive is a misread, and would rank first in every cart.
	if l.Price.AmountMinor <= 0 {
		return fail(id, "price", fmt.Errorf("%s is not positive", money.String(l.Price)))
	}
	if l.Shipping, l.ShippingState, err = shipping(cell.Find(".item_shipping").First(), l.Price.Currency); err != nil {
		return fail(id, "shipping", err)
	}
	l.Available = !unavailable(tr, desc)
	return l, s, nil
}

// listingID reads the item link of the description, else any item link of
// the row, else the cart button.
func listingID(tr, desc *goquery.Selection) int64 {
	var id int64
	desc.Find("a[href]").AddSelection(tr.Find("a[href]")).EachWithBreak(func(_ int, a *goquery.Selection) bool {
		if m := itemHrefRe.FindStringSubmatch(a.AttrOr("href", "")); m != nil {
			id, _ = strconv.ParseInt(m[1], 10, 64)
		}
		return id == 0
	})
	if id == 0 {
		id, _ = strconv.ParseInt(strings.TrimSpace(tr.Find("[data-item-id]").First().AttrOr("data-item-id", "")), 10, 64)
	}
	return id
}

// conditions reads the grades. Discogs nests the media grade's tooltip
// inside the grade's span, hence the span's own text only; the labels
// ("Media Condition:") are spans too, marked mplabel on the real site and
// bare text in older markup.
func conditions(desc *goquery.Selection) (pb.MediaGrade, pb.SleeveGrade, error) {
	p := desc.Find("p.item_condition").First()
	if p.Length() == 0 {
		return 0, 0, errors.New("p.item_condition not found")
	}
	var grades []*goquery.Selection
	p.ChildrenFiltered("span").Each(func(_ int, s *goquery.Selection) {
		if !s.HasClass("mplabel") && !s.HasClass("item_sleeve_condition") {
			grades = append(grades, s)
		}
	})
	if len(grades) == 0 {
		return 0, 0, errors.New("media grade not found")
	}
	media, err := grade.ParseMedia(collapse(ownText(grades[0])))
	if err != nil {
		return 0, 0, err
	}
	sleeveText := ""
	// Find, not ChildrenFiltered: Discogs writes icons as <i .../>, which
	// HTML does not close, so what follows the media tooltip can end up
	// nested inside it.
	if s := p.Find("span.item_sleeve_condition").First(); s.Length() > 0 {
		sleeveText = collapse(ownText(s))
	} else if len(grades) > 1 {
		sleeveText = collapse(ownText(grades[1]))
	} else {
		// Sellers may leave the sleeve ungraded.
		return media, pb.SleeveGrade_SLEEVE_GRADE_UNSPECIFIED, nil
	}
	sleeve, err := grade.ParseSleeve(sleeveText)
	if err != nil {
		return 0, 0, err
	}
	return media, sleeve, nil
}

func seller(info *goquery.Selection) (*pb.Seller, error) {
	link := info.Find(".seller_block a[href]").First()
	if link.Length() == 0 {
		link = info.Find(`a[href*="/seller/"]`).FilterFunction(func(_ int, a *goquery.Selection) bool {
			return !strings.HasSuffix(strings.TrimRight(a.AttrOr("href", ""), "/"), "/feedback")
		}).First()
	}
	name := collapse(link.Text())
	if name == "" {
		return nil, errors.New("seller link (/seller/<name>) not found")
	}
	s := &pb.Seller{Username: name}

	var rating, count string
	info.Find("strong").EachWithBreak(func(_ int, e *goquery.Selection) bool {
		if m := ratingRe.FindStringSubmatch(collapse(e.Text())); m != nil {
			rating = m[1]
		}
		return rating == ""
	})
	info.Find("a").EachWithBreak(func(_ int, e *goquery.Selection) bool {
		if m := ratingsRe.FindStringSubmatch(collapse(e.Text())); m != nil {
			count = m[1]
		}
		return count == ""
	})
	switch {
	case rating != "":
		if count == "" {
			return nil, errors.New(`rating without "N ratings"`)
		}
		pct, err := strconv.ParseFloat(rating, 64)
		if err != nil || pct > 100 {
			return nil, fmt.Errorf("rating %q", rating)
		}
		n, err := strconv.ParseInt(strings.ReplaceAll(count, ",", ""), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("ratings count %q: %w", count, err)
		}
		s.RatingPercent, s.RatingsCount, s.HasRating = pct, n, true
	case strings.Contains(strings.ToLower(info.Text()), "new seller"):
		// No rating yet: has_rating stays false.
	default:
		return nil, errors.New(`rating ("99.5%") or "New seller" not found`)
	}

	info.Find("li").EachWithBreak(func(_ int, li *goquery.Selection) bool {
		t := collapse(li.Text())
		if rest, ok := strings.CutPrefix(t, "Ships From:"); ok {
			s.ShipsFrom = strings.TrimSpace(rest)
			return false
		}
		return true
	})
	if s.ShipsFrom == "" {
		return nil, errors.New(`"Ships From:" not found`)
	}
	return s, nil
}

func price(span *goquery.Selection) (*pb.Money, error) {
	cur, okc := span.Attr("data-currency")
	val, okv := span.Attr("data-pricevalue")
	if okc && okv && strings.TrimSpace(cur) != "" && strings.TrimSpace(val) != "" {
		m, err := money.New(strings.TrimSpace(val), strings.ToUpper(strings.TrimSpace(cur)))
		if err != nil {
			return nil, fmt.Errorf("data-pricevalue %q data-currency %q: %w", val, cur, err)
		}
		return m, nil
	}
	return money.ParsePrice(collapse(span.Text()))
}

// shipping reads "+€14.00", "+no extra shipping" or a bare "+" followed by
// a "shipping" button, which is how Discogs shows a seller that does not
// ship to the visitor's country.
func shipping(span *goquery.Selection, itemCurrency string) (*pb.Money, pb.ShippingState, error) {
	if span.Length() == 0 {
		return nil, pb.ShippingState_SHIPPING_STATE_UNAVAILABLE, nil
	}
	t := strings.TrimSpace(strings.TrimPrefix(collapse(ownText(span)), "+"))
	lt := strings.ToLower(t)
	switch {
	case t == "":
		return nil, pb.ShippingState_SHIPPING_STATE_UNAVAILABLE, nil
	case strings.Contains(lt, "no extra shipping"), strings.Contains(lt, "free shipping"):
		return &pb.Money{Currency: itemCurrency}, pb.ShippingState_SHIPPING_STATE_FREE, nil
	}
	m, err := money.ParsePrice(t)
	if err != nil {
		return nil, 0, err
	}
	return m, pb.ShippingState_SHIPPING_STATE_PRICED, nil
}

// unavailable looks for "Unavailable in <country>" where Discogs puts it:
// in place of the cart button, or (older markup) as a paragraph above the
// conditions. The seller's comments come after the conditions, so a comment
// that says "Unavailable in stores!" does not count.
func unavailable(tr, desc *goquery.Selection) bool {
	found := false
	tr.ChildrenFiltered("td.item_add_to_cart").AddSelection(desc.ChildrenFiltered("p.item_condition").First().PrevAllFiltered("p")).EachWithBreak(func(_ int, e *goquery.Selection) bool {
		found = unavailableRe.MatchString(collapse(e.Text()))
		return !found
	})
	return found
}

// ownText is the text of s without that of its child elements.
func ownText(s *goquery.Selection) string {
	var b strings.Builder
	s.Contents().Each(func(_ int, c *goquery.Selection) {
		if goquery.NodeName(c) == "#text" {
			b.WriteString(c.Text())
		}
	})
	return b.String()
}

// collapse trims s and folds its runs of white space (including the
// no-break spaces of "Add&nbsp;to&nbsp;Cart") into single spaces.
func collapse(s string) string { return strings.Join(strings.Fields(s), " ") }

func atoi(s string) int {
	n, err := strconv.Atoi(strings.ReplaceAll(strings.TrimSpace(s), ",", ""))
	if err != nil {
		return 0
	}
	return n
}
