package cartopt

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/cratestream/cratestream/internal/grade"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// ReadInput reads and validates a `cart-input/1` problem. Numbers are taken
// from their JSON text, exactly (never through float64). Errors name the
// field ("listings[12].price: ...").
//
// The reader is a small hand-written JSON parser rather than
// encoding/json: large.json (15 MB, 50k listings) decodes in ~200 ms with
// encoding/json and UseNumber, more than the whole time budget of a solve;
// this parser takes a fraction of that, mostly because every string is a
// substring of the input instead of an allocation.
func ReadInput(r io.Reader) (*Problem, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read cart input: %w", err)
	}
	return parseInput(string(data))
}

// jsonReader is a cursor over JSON text.
type jsonReader struct {
	s   string
	pos int
}

type syntaxError struct {
	offset int
	msg    string
}

func (e *syntaxError) Error() string {
	return fmt.Sprintf("JSON syntax error at offset %d: %s", e.offset, e.msg)
}

func (r *jsonReader) errorf(format string, args ...any) error {
	return &syntaxError{offset: r.pos, msg: fmt.Sprintf(format, args...)}
}

func (r *jsonReader) ws() {
	for r.pos < len(r.s) {
		switch r.s[r.pos] {
		case ' ', '\t', '\n', '\r':
			r.pos++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (r *jsonReader) peek() byte {
	r.ws()
	if r.pos < len(r.s) {
		return r.s[r.pos]
	}
	return 0
}

func (r *jsonReader) expect(c byte) error {
	if r.peek() != c {
		if r.pos >= len(r.s) {
			return r.errorf("unexpected end of input, want %q", c)
		}
		return r.errorf("unexpected %q, want %q", r.s[r.pos], c)
	}
	r.pos++
	return nil
}

// member advances to the next member of an object whose '{' has been
// consumed; first tracks the comma. It returns the key with the ':'
// consumed, or ok=false after the closing '}'.
func (r *jsonReader) member(first *bool) (key string, ok bool, err error) {
	c := r.peek()
	if c == '}' {
		r.pos++
		return "", false, nil
	}
	if !*first {
		if c != ',' {
			return "", false, r.errorf("want ',' or '}' in object")
		}
		r.pos++
	}
	*first = false
	if key, err = r.str(); err != nil {
		return "", false, err
	}
	if err = r.expect(':'); err != nil {
		return "", false, err
	}
	return key, true, nil
}

// element advances to the next element of an array whose '[' has been
// consumed; ok is false after the closing ']'.
func (r *jsonReader) element(first *bool) (bool, error) {
	c := r.peek()
	if c == ']' {
		r.pos++
		return false, nil
	}
	if !*first {
		if c != ',' {
			return false, r.errorf("want ',' or ']' in array")
		}
		r.pos++
	}
	*first = false
	return true, nil
}

// str reads a string literal.
func (r *jsonReader) str() (string, error) {
	if r.peek() != '"' {
		return "", r.errorf("want a string")
	}
	r.pos++
	start := r.pos
	for r.pos < len(r.s) {
		c := r.s[r.pos]
		switch {
		case c == '"':
			out := r.s[start:r.pos]
			r.pos++
			if !utf8.ValidString(out) {
				return strings.ToValidUTF8(out, "\uFFFD"), nil
			}
			return out, nil
		case c == '\\':
			return r.strEscaped(start)
		case c < 0x20:
			return "", r.errorf("control character in string")
		}
		r.pos++
	}
	return "", r.errorf("unterminated string")
}

// strEscaped finishes a string that contains escapes.
func (r *jsonReader) strEscaped(start int) (string, error) {
	var b strings.Builder
	b.WriteString(r.s[start:r.pos])
	for r.pos < len(r.s) {
		c := r.s[r.pos]
		switch {
		case c == '"':
			r.pos++
			return strings.ToValidUTF8(b.String(), "\uFFFD"), nil
		case c < 0x20:
			return "", r.errorf("control character in string")
		case c != '\\':
			b.WriteByte(c)
			r.pos++
			continue
		}
		if r.pos+1 >= len(r.s) {
			break
		}
		e := r.s[r.pos+1]
		r.pos += 2
		switch e {
		case '"', '\\', '/':
			b.WriteByte(e)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			ru, ok := r.hex4()
			if !ok {
				return "", r.errorf("bad \\u escape")
			}
			if utf16.IsSurrogate(ru) {
				ru2 := rune(-1)
				if r.pos+1 < len(r.s) && r.s[r.pos] == '\\' && r.s[r.pos+1] == 'u' {
					save := r.pos
					r.pos += 2
					var ok2 bool
					if ru2, ok2 = r.hex4(); !ok2 {
						return "", r.errorf("bad \\u escape")
					}
					if utf16.DecodeRune(ru, ru2) == utf8.RuneError {
						r.pos = save // not a pair: the second escape stands alone
						ru2 = -1
					}
				}
				if ru2 >= 0 {
					ru = utf16.DecodeRune(ru, ru2)
				} else {
					ru = utf8.RuneError
				}
			}
			b.WriteRune(ru)
		default:
			return "", r.errorf("bad escape \\%c", e)
		}
	}
	return "", r.errorf("unterminated string")
}

func (r *jsonReader) hex4() (rune, bool) {
	if r.pos+4 > len(r.s) {
		return 0, false
	}
	v, err := strconv.ParseUint(r.s[r.pos:r.pos+4], 16, 32)
	if err != nil {
		return 0, false
	}
	r.pos += 4
	return rune(v), true
}

// numText reads the text of a number; parseNumberText validates it.
func (r *jsonReader) numText() (string, error) {
	c := r.peek()
	if c != '-' && (c < '0' || c > '9') {
		return "", r.errorf("want a number")
	}
	start := r.pos
	for r.pos < len(r.s) {
		c := r.s[r.pos]
		if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			r.pos++
			continue
		}
		break
	}
	return r.s[start:r.pos], nil
}

func (r *jsonReader) decimal() (Decimal, error) {
	t, err := r.numText()
	if err != nil {
		return Decimal{}, err
	}
	return parseNumberText(t)
}

func (r *jsonReader) int64() (int64, error) {
	t, err := r.numText()
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not an integer", t)
	}
	return v, nil
}

func (r *jsonReader) boolean() (bool, error) {
	r.ws()
	switch {
	case strings.HasPrefix(r.s[r.pos:], "true"):
		r.pos += 4
		return true, nil
	case strings.HasPrefix(r.s[r.pos:], "false"):
		r.pos += 5
		return false, nil
	}
	return false, r.errorf("want true or false")
}

// null consumes a null literal if one is next.
func (r *jsonReader) null() bool {
	r.ws()
	if strings.HasPrefix(r.s[r.pos:], "null") {
		r.pos += 4
		return true
	}
	return false
}

// skip reads and discards any value.
func (r *jsonReader) skip(depth int) error {
	if depth > 1000 {
		return r.errorf("nesting too deep")
	}
	switch c := r.peek(); {
	case c == '{':
		r.pos++
		first := true
		for {
			_, ok, err := r.member(&first)
			if err != nil || !ok {
				return err
			}
			if err := r.skip(depth + 1); err != nil {
				return err
			}
		}
	case c == '[':
		r.pos++
		first := true
		for {
			ok, err := r.element(&first)
			if err != nil || !ok {
				return err
			}
			if err := r.skip(depth + 1); err != nil {
				return err
			}
		}
	case c == '"':
		_, err := r.str()
		return err
	case c == 't' || c == 'f':
		_, err := r.boolean()
		return err
	case c == 'n':
		if r.null() {
			return nil
		}
	case c == '-' || (c >= '0' && c <= '9'):
		t, err := r.numText()
		if err != nil {
			return err
		}
		if _, err := parseNumberText(t); err != nil {
			return r.errorf("%v", err)
		}
		return nil
	}
	return r.errorf("want a value")
}

// field wraps an error with the field path.
func field(path string, err error) error {
	return fmt.Errorf("%s: %w", path, err)
}

func parseInput(s string) (*Problem, error) {
	r := &jsonReader{s: s}
	p := &Problem{}
	if err := r.expect('{'); err != nil {
		return nil, fmt.Errorf("cart input: %w", err)
	}
	var haveFormat, haveCriteria, haveRates bool
	var budgetSeen, currencySeen bool
	gradeCache := map[string]pb.MediaGrade{}
	first := true
	for {
		key, ok, err := r.member(&first)
		if err != nil {
			return nil, fmt.Errorf("cart input: %w", err)
		}
		if !ok {
			break
		}
		switch key {
		case "format":
			f, err := r.str()
			if err != nil {
				return nil, field("format", err)
			}
			if f != Format {
				return nil, fmt.Errorf("format: %q is not %q", f, Format)
			}
			haveFormat = true
		case "name":
			if r.null() {
				continue
			}
			if p.Name, err = r.str(); err != nil {
				return nil, field("name", err)
			}
		case "criteria":
			if budgetSeen, currencySeen, err = r.criteria(&p.Criteria); err != nil {
				return nil, err
			}
			haveCriteria = true
		case "rates_per_eur":
			if p.Rates, err = r.rates(); err != nil {
				return nil, err
			}
			haveRates = true
		case "candidates":
			if p.Candidates, err = r.candidates(); err != nil {
				return nil, err
			}
		case "listings":
			if p.Listings, err = r.listings(gradeCache); err != nil {
				return nil, err
			}
		default:
			if err := r.skip(0); err != nil {
				return nil, field(key, err)
			}
		}
	}
	if r.peek() != 0 {
		return nil, fmt.Errorf("cart input: %w", r.errorf("data after the top-level object"))
	}
	switch {
	case !haveFormat:
		return nil, fmt.Errorf("format: missing (want %q)", Format)
	case !haveCriteria:
		return nil, fmt.Errorf("criteria: missing")
	case !budgetSeen:
		return nil, fmt.Errorf("criteria.budget: missing")
	case !currencySeen:
		return nil, fmt.Errorf("criteria.currency: missing")
	case !haveRates:
		return nil, fmt.Errorf("rates_per_eur: missing")
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	return p, nil
}

func (r *jsonReader) criteria(c *Criteria) (budgetSeen, currencySeen bool, err error) {
	if err := r.expect('{'); err != nil {
		return false, false, field("criteria", err)
	}
	c.MinQty = 1
	c.TopN = DefaultTopN
	first := true
	for {
		key, ok, err := r.member(&first)
		if err != nil {
			return false, false, field("criteria", err)
		}
		if !ok {
			return budgetSeen, currencySeen, nil
		}
		path := "criteria." + key
		switch key {
		case "budget":
			if c.Budget, err = r.decimal(); err != nil {
				return false, false, field(path, err)
			}
			budgetSeen = true
		case "currency":
			if c.Currency, err = r.str(); err != nil {
				return false, false, field(path, err)
			}
			currencySeen = true
		case "min_media_cond":
			if r.null() {
				continue
			}
			t, err := r.str()
			if err != nil {
				return false, false, field(path, err)
			}
			if c.MinMedia, err = parseMinMedia(t); err != nil {
				return false, false, field(path, err)
			}
		case "seller_rating":
			if r.null() {
				continue
			}
			if c.MinSellerRating, err = r.decimal(); err != nil {
				return false, false, field(path, err)
			}
		case "min_qty", "top_n":
			v, err := r.int64()
			if err != nil {
				return false, false, field(path, err)
			}
			if v < 0 || v > 1<<31 {
				return false, false, fmt.Errorf("%s: %d is out of range", path, v)
			}
			if key == "min_qty" {
				c.MinQty = int(v)
			} else {
				if v == 0 {
					return false, false, fmt.Errorf("%s: must be positive", path)
				}
				c.TopN = int(v)
			}
		case "country":
			if r.null() {
				c.Countries = nil
				continue
			}
			if err := r.expect('['); err != nil {
				return false, false, field(path, err)
			}
			c.Countries = c.Countries[:0]
			afirst := true
			for i := 0; ; i++ {
				ok, err := r.element(&afirst)
				if err != nil {
					return false, false, field(path, err)
				}
				if !ok {
					break
				}
				s, err := r.str()
				if err != nil {
					return false, false, field(fmt.Sprintf("%s[%d]", path, i), err)
				}
				c.Countries = append(c.Countries, s)
			}
		default:
			if err := r.skip(0); err != nil {
				return false, false, field(path, err)
			}
		}
	}
}

// parseMinMedia parses a minimum grade: a Discogs grade text or "Any".
func parseMinMedia(t string) (pb.MediaGrade, error) {
	if strings.EqualFold(strings.TrimSpace(t), "any") || strings.TrimSpace(t) == "" {
		return pb.MediaGrade_MEDIA_GRADE_UNSPECIFIED, nil
	}
	return grade.ParseMedia(t)
}

func (r *jsonReader) rates() (map[string]Decimal, error) {
	if err := r.expect('{'); err != nil {
		return nil, field("rates_per_eur", err)
	}
	rates := map[string]Decimal{}
	first := true
	for {
		cur, ok, err := r.member(&first)
		if err != nil {
			return nil, field("rates_per_eur", err)
		}
		if !ok {
			return rates, nil
		}
		path := "rates_per_eur." + cur
		var rate Decimal
		switch r.peek() {
		case '{': // {"rate": 1.1456, "symbol": "$"}
			r.pos++
			seen := false
			ofirst := true
			for {
				key, ok, err := r.member(&ofirst)
				if err != nil {
					return nil, field(path, err)
				}
				if !ok {
					break
				}
				if key != "rate" {
					if err := r.skip(0); err != nil {
						return nil, field(path+"."+key, err)
					}
					continue
				}
				if rate, err = r.decimal(); err != nil {
					return nil, field(path+".rate", err)
				}
				seen = true
			}
			if !seen {
				return nil, fmt.Errorf("%s.rate: missing", path)
			}
		default: // a bare number
			if rate, err = r.decimal(); err != nil {
				return nil, field(path, err)
			}
		}
		if rate.Sign() <= 0 {
			return nil, fmt.Errorf("%s: rate %s is not positive", path, rate)
		}
		rates[cur] = rate
	}
}

func (r *jsonReader) candidates() ([]Candidate, error) {
	if err := r.expect('['); err != nil {
		return nil, field("candidates", err)
	}
	var out []Candidate
	first := true
	for i := 0; ; i++ {
		ok, err := r.element(&first)
		if err != nil {
			return nil, field("candidates", err)
		}
		if !ok {
			return out, nil
		}
		path := fmt.Sprintf("candidates[%d]", i)
		if err := r.expect('{'); err != nil {
			return nil, field(path, err)
		}
		var c Candidate
		var haveID, haveScore bool
		ofirst := true
		for {
			key, ok, err := r.member(&ofirst)
			if err != nil {
				return nil, field(path, err)
			}
			if !ok {
				break
			}
			switch key {
			case "release_id":
				if c.ReleaseID, err = r.int64(); err != nil {
					return nil, field(path+".release_id", err)
				}
				haveID = true
			case "score":
				if c.Score, err = r.decimal(); err != nil {
					return nil, field(path+".score", err)
				}
				haveScore = true
			default:
				if err := r.skip(0); err != nil {
					return nil, field(path+"."+key, err)
				}
			}
		}
		if !haveID {
			return nil, fmt.Errorf("%s.release_id: missing", path)
		}
		if !haveScore {
			return nil, fmt.Errorf("%s.score: missing", path)
		}
		out = append(out, c)
	}
}

// Required listing fields, as bits.
const (
	lfListingID = 1 << iota
	lfReleaseID
	lfSellerID
	lfRating
	lfPrice
	lfCurrency
	lfMedia
	lfRequired = lfListingID | lfReleaseID | lfSellerID | lfRating | lfPrice | lfCurrency | lfMedia
)

var listingFieldNames = [...]string{"listing_id", "release_id", "seller_id", "seller_rating", "price", "currency", "media_cond"}

func (r *jsonReader) listings(gradeCache map[string]pb.MediaGrade) ([]Listing, error) {
	if err := r.expect('['); err != nil {
		return nil, field("listings", err)
	}
	// A cheap estimate of the count saves the append doublings of a 50k
	// listing slice.
	out := make([]Listing, 0, strings.Count(r.s[r.pos:], `"listing_id"`))
	first := true
	for i := 0; ; i++ {
		ok, err := r.element(&first)
		if err != nil {
			return nil, field("listings", err)
		}
		if !ok {
			return out, nil
		}
		out = append(out, Listing{})
		if err := r.listing(&out[len(out)-1], i, gradeCache); err != nil {
			return nil, err
		}
	}
}

func (r *jsonReader) listing(l *Listing, i int, gradeCache map[string]pb.MediaGrade) error {
	path := func(key string) string { return fmt.Sprintf("listings[%d].%s", i, key) }
	if err := r.expect('{'); err != nil {
		return field(fmt.Sprintf("listings[%d]", i), err)
	}
	have := 0
	first := true
	for {
		key, ok, err := r.member(&first)
		if err != nil {
			return field(fmt.Sprintf("listings[%d]", i), err)
		}
		if !ok {
			break
		}
		switch key {
		case "listing_id":
			l.ListingID, err = r.int64()
			have |= lfListingID
		case "release_id":
			l.ReleaseID, err = r.int64()
			have |= lfReleaseID
		case "seller_id":
			l.SellerID, err = r.int64()
			have |= lfSellerID
		case "seller_name":
			if !r.null() {
				l.SellerName, err = r.str()
			}
		case "seller_rating":
			l.SellerRating, err = r.decimal()
			have |= lfRating
		case "country":
			if !r.null() {
				l.Country, err = r.str()
			}
		case "price":
			l.Price, err = r.decimal()
			if err == nil && l.Price.Sign() < 0 {
				err = fmt.Errorf("%s is negative", l.Price)
			}
			have |= lfPrice
		case "currency":
			l.Currency, err = r.str()
			have |= lfCurrency
		case "shipping":
			if r.null() {
				l.Shipping = Decimal{}
				continue
			}
			l.Shipping, err = r.decimal()
			if err == nil && l.Shipping.Sign() < 0 {
				err = fmt.Errorf("%s is negative", l.Shipping)
			}
		case "shipping_unavailable":
			if !r.null() {
				l.ShippingUnavailable, err = r.boolean()
			}
		case "media_cond":
			if r.null() {
				have |= lfMedia // present but unknown: filtered as unknown_grade
				continue
			}
			l.MediaCond, err = r.str()
			if err == nil {
				g, ok := gradeCache[l.MediaCond]
				if !ok {
					g, _ = grade.ParseMedia(l.MediaCond) // unknown: UNSPECIFIED, filtered later
					gradeCache[l.MediaCond] = g
				}
				l.Media = g
			}
			have |= lfMedia
		case "sleeve_cond":
			if !r.null() {
				l.SleeveCond, err = r.str()
			}
		case "cart_url":
			if !r.null() {
				l.CartURL, err = r.str()
			}
		default:
			err = r.skip(0)
		}
		if err != nil {
			return field(path(key), err)
		}
	}
	if have != lfRequired {
		for b, name := range listingFieldNames {
			if have&(1<<b) == 0 {
				return fmt.Errorf("%s: missing", path(name))
			}
		}
	}
	return nil
}
