package cartopt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"math/bits"
	"slices"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/cratestream/cratestream/internal/grade"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// The reader is a small hand-written streaming JSON parser rather than
// encoding/json, for two measured reasons:
//   - speed: large.json (15 MB, 50k listings) decodes in ~200 ms with
//     encoding/json and UseNumber, more than the whole time budget of a
//     solve;
//   - memory: on the machines this runs on, first-touching fresh memory
//     costs ~3.5 ms per MB (page faults), so holding the 15 MB input, or
//     materialising 50k listings only to drop half of them, costs more
//     than parsing. The reader works through a small window over the
//     input, and SolveJSON filters listings as it parses them.
//
// Numbers are taken from their JSON text, exactly (never through float64).

// ReadInput reads and validates a `cart-input/1` problem. Errors name the
// field ("listings[12].price: ...").
func ReadInput(r io.Reader) (*Problem, error) {
	d := newDecoder(r, false)
	p, _, err := d.decode()
	return p, err
}

// SolveJSON is ReadInput followed by Solve, streaming: listings are
// filtered as they are parsed and never held, which is what a command
// solving one file should call (same results as Solve, a fraction of the
// memory). It falls back to holding the listings when the file puts them
// before the criteria, rates or candidates.
func SolveJSON(r io.Reader, o Options) (*Result, error) {
	d := newDecoder(r, true)
	p, pr, err := d.decode()
	if err != nil {
		return nil, err
	}
	return solvePrepared(pr, p.Criteria, o, d.start, nil)
}

// jsonReader is a cursor over JSON text read through a window buffer.
// Byte slices it returns (strings, numbers, keys) are views into the window,
// valid until the next read.
type jsonReader struct {
	r       io.Reader
	buf     []byte
	pos     int   // next byte in buf
	end     int   // end of valid data in buf
	base    int64 // input offset of buf[0]
	eof     bool
	readErr error
	scratch []byte // decoded escaped strings
}

const windowSize = 64 << 10

type syntaxError struct {
	offset int64
	msg    string
}

func (e *syntaxError) Error() string {
	return fmt.Sprintf("JSON syntax error at offset %d: %s", e.offset, e.msg)
}

func (r *jsonReader) errorf(format string, args ...any) error {
	if r.readErr != nil {
		return fmt.Errorf("read cart input: %w", r.readErr)
	}
	return &syntaxError{offset: r.base + int64(r.pos), msg: fmt.Sprintf(format, args...)}
}

// more makes at least one byte past buf[pos:end] available, keeping
// buf[keep:] (keep ≤ pos); it returns the shift applied to positions, or
// ok=false at the end of the input.
func (r *jsonReader) more(keep int) (shift int, ok bool) {
	if r.eof {
		return 0, false
	}
	if keep > 0 {
		copy(r.buf, r.buf[keep:r.end])
		r.base += int64(keep)
		r.pos -= keep
		r.end -= keep
		shift = keep
	}
	if r.end == len(r.buf) {
		// A token longer than the window: grow it.
		r.buf = append(r.buf, make([]byte, len(r.buf))...)
	}
	for {
		n, err := r.r.Read(r.buf[r.end:])
		r.end += n
		if err != nil {
			r.eof = true
			if !errors.Is(err, io.EOF) {
				r.readErr = err
			}
			return shift, n > 0
		}
		if n > 0 {
			return shift, true
		}
	}
}

// offset returns the input offset of the next byte.
func (r *jsonReader) offset() int64 { return r.base + int64(r.pos) }

func (r *jsonReader) ws() {
	for {
		for r.pos < r.end {
			switch r.buf[r.pos] {
			case ' ', '\t', '\n', '\r':
				r.pos++
			default:
				return
			}
		}
		if _, ok := r.more(r.pos); !ok {
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (r *jsonReader) peek() byte {
	r.ws()
	if r.pos < r.end {
		return r.buf[r.pos]
	}
	return 0
}

func (r *jsonReader) expect(c byte) error {
	if got := r.peek(); got != c {
		if r.pos >= r.end {
			return r.errorf("unexpected end of input, want %q", c)
		}
		return r.errorf("unexpected %q, want %q", got, c)
	}
	r.pos++
	return nil
}

// member advances to the next member of an object whose '{' has been
// consumed; first tracks the comma. It returns the key (a view) with the
// ':' consumed, or ok=false after the closing '}'.
func (r *jsonReader) member(first *bool) (key []byte, ok bool, err error) {
	c := r.peek()
	if c == '}' {
		r.pos++
		return nil, false, nil
	}
	if !*first {
		if c != ',' {
			return nil, false, r.errorf("want ',' or '}' in object")
		}
		r.pos++
	}
	*first = false
	if key, err = r.strBytes(); err != nil {
		return nil, false, err
	}
	// expect may refill the window: keep the key valid by copying it when
	// the colon is not already there.
	if r.pos < r.end && r.buf[r.pos] == ':' {
		r.pos++
		return key, true, nil
	}
	key = append([]byte(nil), key...)
	if err = r.expect(':'); err != nil {
		return nil, false, err
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

// strBytes reads a string literal and returns its value as a view.
func (r *jsonReader) strBytes() ([]byte, error) {
	if r.peek() != '"' {
		return nil, r.errorf("want a string")
	}
	r.pos++
	start, i := r.pos, r.pos
	ascii := true
	for {
		for i < r.end {
			c := r.buf[i]
			switch {
			case c == '"':
				out := r.buf[start:i]
				r.pos = i + 1
				// Validate UTF-8 only when a byte is not ASCII: the common
				// case costs one comparison per byte.
				if !ascii && !utf8.Valid(out) {
					return []byte(strings.ToValidUTF8(string(out), "\uFFFD")), nil
				}
				return out, nil
			case c == '\\':
				r.pos = i
				return r.strEscaped(start)
			case c < 0x20:
				r.pos = i
				return nil, r.errorf("control character in string")
			case c >= utf8.RuneSelf:
				ascii = false
			}
			i++
		}
		r.pos = i
		shift, ok := r.more(start)
		if !ok {
			return nil, r.errorf("unterminated string")
		}
		start -= shift
		i -= shift
	}
}

// strEscaped finishes a string that contains escapes, decoding into
// r.scratch; pos is at the first backslash.
func (r *jsonReader) strEscaped(start int) ([]byte, error) {
	b := append(r.scratch[:0], r.buf[start:r.pos]...)
	defer func() { r.scratch = b[:0] }()
	for {
		if r.pos >= r.end {
			if _, ok := r.more(r.pos); !ok {
				return nil, r.errorf("unterminated string")
			}
		}
		c := r.buf[r.pos]
		switch {
		case c == '"':
			r.pos++
			if !utf8.Valid(b) {
				return []byte(strings.ToValidUTF8(string(b), "\uFFFD")), nil
			}
			return b, nil
		case c < 0x20:
			return nil, r.errorf("control character in string")
		case c != '\\':
			b = append(b, c)
			r.pos++
			continue
		}
		// An escape: make sure the whole of it (up to a surrogate pair,
		// 12 bytes) is in the window.
		for r.end-r.pos < 12 {
			if _, ok := r.more(r.pos); !ok {
				break
			}
		}
		if r.pos+1 >= r.end {
			return nil, r.errorf("unterminated string")
		}
		e := r.buf[r.pos+1]
		r.pos += 2
		switch e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			ru, ok := r.hex4()
			if !ok {
				return nil, r.errorf("bad \\u escape")
			}
			if utf16.IsSurrogate(ru) {
				ru2 := rune(-1)
				if r.pos+1 < r.end && r.buf[r.pos] == '\\' && r.buf[r.pos+1] == 'u' {
					save := r.pos
					r.pos += 2
					var ok2 bool
					if ru2, ok2 = r.hex4(); !ok2 {
						return nil, r.errorf("bad \\u escape")
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
			b = utf8.AppendRune(b, ru)
		default:
			return nil, r.errorf("bad escape \\%c", e)
		}
	}
}

func (r *jsonReader) hex4() (rune, bool) {
	if r.pos+4 > r.end {
		return 0, false
	}
	var v rune
	for _, c := range r.buf[r.pos : r.pos+4] {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			v = v<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	r.pos += 4
	return v, true
}

// str reads a string and copies it.
func (r *jsonReader) str() (string, error) {
	b, err := r.strBytes()
	return string(b), err
}

// interned reads a string and returns its canonical copy from t.
func (r *jsonReader) interned(t *internTable) (string, error) {
	b, err := r.strBytes()
	if err != nil {
		return "", err
	}
	return t.strs[t.index(b)], nil
}

// numBytes reads the text of a number (a view); parseNumber validates it.
func (r *jsonReader) numBytes() ([]byte, error) {
	c := r.peek()
	if c != '-' && (c < '0' || c > '9') {
		return nil, r.errorf("want a number")
	}
	start, i := r.pos, r.pos
	for {
		for i < r.end {
			c := r.buf[i]
			if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
				i++
				continue
			}
			r.pos = i
			return r.buf[start:i], nil
		}
		r.pos = i
		shift, ok := r.more(start)
		if !ok {
			return r.buf[start-shift : r.end], nil
		}
		start -= shift
		i -= shift
	}
}

func (r *jsonReader) decimal() (Decimal, error) {
	t, err := r.numBytes()
	if err != nil {
		return Decimal{}, err
	}
	return parseNumber(t)
}

func (r *jsonReader) int64() (int64, error) {
	t, err := r.numBytes()
	if err != nil {
		return 0, err
	}
	neg := len(t) > 0 && t[0] == '-'
	digits := t
	if neg {
		digits = t[1:]
	}
	if len(digits) == 0 || len(digits) > 19 || (digits[0] == '0' && len(digits) > 1) {
		return 0, fmt.Errorf("%q is not an integer", t)
	}
	var v uint64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not an integer", t)
		}
		v = v*10 + uint64(c-'0')
	}
	if v > 1<<63-1 || (len(digits) == 19 && digits[0] > '9') {
		return 0, fmt.Errorf("%q is out of range", t)
	}
	if neg {
		return -int64(v), nil
	}
	return int64(v), nil
}

// literal consumes word (true, false, null) if it is next.
func (r *jsonReader) literal(word string) bool {
	r.ws()
	for r.end-r.pos < len(word) {
		if _, ok := r.more(r.pos); !ok {
			break
		}
	}
	if r.end-r.pos >= len(word) && string(r.buf[r.pos:r.pos+len(word)]) == word {
		r.pos += len(word)
		return true
	}
	return false
}

func (r *jsonReader) boolean() (bool, error) {
	switch {
	case r.literal("true"):
		return true, nil
	case r.literal("false"):
		return false, nil
	}
	return false, r.errorf("want true or false")
}

// null consumes a null literal if one is next.
func (r *jsonReader) null() bool { return r.literal("null") }

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
		_, err := r.strBytes()
		return err
	case c == 't' || c == 'f':
		_, err := r.boolean()
		return err
	case c == 'n':
		if r.null() {
			return nil
		}
	case c == '-' || (c >= '0' && c <= '9'):
		t, err := r.numBytes()
		if err != nil {
			return err
		}
		if _, err := parseNumber(t); err != nil {
			return r.errorf("%v", err)
		}
		return nil
	}
	return r.errorf("want a value")
}

// internTable canonicalises strings with few distinct values (currencies,
// countries, grades, seller names): a hit costs a few comparisons while
// the table is small, then a hash and usually one comparison, and no
// allocation.
type internTable struct {
	strs  []string // by index
	keys  []uint64 // internKey of strs, while linear
	slots []int32  // open addressing, index+1 (0: empty); nil while linear
	seed  maphash.Seed
}

// internLinear is the size up to which a table is searched linearly.
const internLinear = 16

func (t *internTable) index(b []byte) int {
	if t.slots == nil {
		k := internKey(b)
		for i, x := range t.keys {
			if x == k && (len(b) < 8 || t.strs[i] == string(b)) {
				return i
			}
		}
		t.strs = append(t.strs, string(b))
		t.keys = append(t.keys, k)
		if len(t.strs) > internLinear {
			t.seed = maphash.MakeSeed()
			t.rehash(64)
			t.keys = nil
		}
		return len(t.strs) - 1
	}
	mask := uint64(len(t.slots) - 1)
	j := maphash.Bytes(t.seed, b) & mask
	for ; t.slots[j] != 0; j = (j + 1) & mask {
		if k := int(t.slots[j] - 1); t.strs[k] == string(b) {
			return k
		}
	}
	t.strs = append(t.strs, string(b))
	t.slots[j] = int32(len(t.strs))
	if 2*len(t.strs) > len(t.slots) {
		t.rehash(2 * len(t.slots))
	}
	return len(t.strs) - 1
}

// internKey packs the length and the first bytes of b into an integer,
// which is b itself when b is shorter than 8 bytes.
func internKey(b []byte) uint64 {
	if len(b) >= 8 {
		return binary.LittleEndian.Uint64(b)<<8 | uint64(len(b)&0xff)
	}
	var k uint64
	for i := len(b) - 1; i >= 0; i-- {
		k = k<<8 | uint64(b[i])
	}
	return k<<8 | uint64(len(b))
}

// rehash rebuilds the slots with n (a power of two) of them.
func (t *internTable) rehash(n int) {
	t.slots = make([]int32, n)
	mask := uint64(n - 1)
	for k, s := range t.strs {
		j := maphash.String(t.seed, s) & mask
		for t.slots[j] != 0 {
			j = (j + 1) & mask
		}
		t.slots[j] = int32(k + 1)
	}
}

// field wraps an error with the field path.
func field(path string, err error) error {
	return fmt.Errorf("%s: %w", path, err)
}

// decoder reads a whole problem.
type decoder struct {
	jsonReader
	stream bool // filter listings while parsing (SolveJSON)
	start  time.Time

	currencies, countries, sleeves, names internTable
	grades                                internTable
	gradeOf                               []pb.MediaGrade // by grades index

	budgetSeen, currencySeen, haveCriteria, haveRates, haveCandidates bool

	sizeHint int64    // the input's size if known, else 0
	urls     strArena // cart URLs
	// nextField[f] is the listing field that followed field f last time
	// (nextField[nFields]: the first field).
	nextField [nFields + 1]int8

	slowOnly     bool // tests: no fast path
	slowListings int  // listings the fast path left to listing()
}

// inputSize returns the size of r's input when r tells it cheaply (a
// bytes.Reader, a regular file), else 0; it only sizes allocations.
func inputSize(r io.Reader) int64 {
	switch r := r.(type) {
	case interface{ Len() int }:
		return int64(r.Len())
	case interface{ Stat() (fs.FileInfo, error) }:
		if fi, err := r.Stat(); err == nil && fi.Mode().IsRegular() {
			return fi.Size()
		}
	}
	return 0
}

// strArena copies short strings into shared blocks: one allocation per
// block rather than one per string. Bytes written to a strings.Builder
// are never modified, so the strings handed out stay valid and immutable.
type strArena struct {
	b strings.Builder
}

func (a *strArena) str(p []byte) string {
	const block = 16 << 10
	if len(p) > block/16 {
		return string(p)
	}
	if a.b.Cap()-a.b.Len() < len(p) {
		a.b = strings.Builder{}
		a.b.Grow(block)
	}
	n := a.b.Len()
	a.b.Write(p)
	return a.b.String()[n:]
}

func newDecoder(r io.Reader, stream bool) *decoder {
	return newDecoderSize(r, stream, windowSize)
}

// newDecoderSize lets tests use tiny windows, so that every token
// straddles a refill somewhere.
func newDecoderSize(r io.Reader, stream bool, window int) *decoder {
	d := &decoder{stream: stream, start: time.Now(), sizeHint: inputSize(r)}
	for f := range nFields - 1 {
		d.nextField[f] = int8(f + 1) // the order of the format
	}
	d.nextField[nFields] = fListingID
	d.r = r
	d.buf = make([]byte, window)
	return d
}

// decode reads the problem; when streaming, it also returns the prepared
// listings (and the Problem has none).
func (d *decoder) decode() (*Problem, *prepared, error) {
	p := &Problem{}
	if err := d.expect('{'); err != nil {
		return nil, nil, fmt.Errorf("cart input: %w", err)
	}
	var pp *preparer
	haveFormat := false
	first := true
	for {
		key, ok, err := d.member(&first)
		if err != nil {
			return nil, nil, fmt.Errorf("cart input: %w", err)
		}
		if !ok {
			break
		}
		switch string(key) {
		case "format":
			f, err := d.str()
			if err != nil {
				return nil, nil, field("format", err)
			}
			if f != Format {
				return nil, nil, fmt.Errorf("format: %q is not %q", f, Format)
			}
			haveFormat = true
		case "name":
			if d.null() {
				continue
			}
			if p.Name, err = d.str(); err != nil {
				return nil, nil, field("name", err)
			}
		case "criteria":
			if err = d.criteria(&p.Criteria); err != nil {
				return nil, nil, err
			}
			d.haveCriteria = true
		case "rates_per_eur":
			if p.Rates, err = d.rates(); err != nil {
				return nil, nil, err
			}
			d.haveRates = true
		case "candidates":
			if p.Candidates, err = d.candidates(); err != nil {
				return nil, nil, err
			}
			d.haveCandidates = true
		case "listings":
			if d.stream && pp == nil && d.haveCriteria && d.haveRates && d.haveCandidates {
				if err := d.checkFields(); err != nil {
					return nil, nil, err
				}
				if pp, err = newPreparer(p, 0); err != nil {
					return nil, nil, err
				}
			}
			if err = d.listings(p, pp); err != nil {
				return nil, nil, err
			}
		default:
			name := string(key)
			if err := d.skip(0); err != nil {
				return nil, nil, field(name, err)
			}
		}
	}
	if d.peek() != 0 {
		return nil, nil, fmt.Errorf("cart input: %w", d.errorf("data after the top-level object"))
	}
	if d.readErr != nil {
		return nil, nil, fmt.Errorf("read cart input: %w", d.readErr)
	}
	if err := d.checkHeader(p, haveFormat); err != nil {
		return nil, nil, err
	}
	if !d.stream {
		if err := p.validateHeader(); err != nil {
			return nil, nil, err
		}
		return p, nil, nil
	}
	if pp == nil { // the listings came first, or there were none
		var err error
		if pp, err = newPreparer(p, len(p.Listings)); err != nil {
			return nil, nil, err
		}
		for i := range p.Listings {
			if err := pp.add(i, &p.Listings[i]); err != nil {
				return nil, nil, err
			}
		}
		p.Listings = nil
	}
	return p, pp.finish(), nil
}

// checkHeader reports missing top-level fields.
func (d *decoder) checkHeader(p *Problem, haveFormat bool) error {
	if !haveFormat {
		return fmt.Errorf("format: missing (want %q)", Format)
	}
	return d.checkFields()
}

// checkFields reports missing criteria or rates.
func (d *decoder) checkFields() error {
	switch {
	case !d.haveCriteria:
		return fmt.Errorf("criteria: missing")
	case !d.budgetSeen:
		return fmt.Errorf("criteria.budget: missing")
	case !d.currencySeen:
		return fmt.Errorf("criteria.currency: missing")
	case !d.haveRates:
		return fmt.Errorf("rates_per_eur: missing")
	}
	return nil
}

func (d *decoder) criteria(c *Criteria) error {
	if err := d.expect('{'); err != nil {
		return field("criteria", err)
	}
	c.MinQty = 1
	c.TopN = DefaultTopN
	first := true
	for {
		key, ok, err := d.member(&first)
		if err != nil {
			return field("criteria", err)
		}
		if !ok {
			return nil
		}
		path := "criteria." + string(key)
		switch string(key) {
		case "budget":
			if c.Budget, err = d.decimal(); err != nil {
				return field(path, err)
			}
			d.budgetSeen = true
		case "currency":
			if c.Currency, err = d.str(); err != nil {
				return field(path, err)
			}
			d.currencySeen = true
		case "min_media_cond":
			if d.null() {
				continue
			}
			t, err := d.str()
			if err != nil {
				return field(path, err)
			}
			if c.MinMedia, err = parseMinMedia(t); err != nil {
				return field(path, err)
			}
		case "seller_rating":
			if d.null() {
				continue
			}
			if c.MinSellerRating, err = d.decimal(); err != nil {
				return field(path, err)
			}
		case "min_qty", "top_n":
			v, err := d.int64()
			if err != nil {
				return field(path, err)
			}
			if v < 0 || v > 1<<31 {
				return fmt.Errorf("%s: %d is out of range", path, v)
			}
			if string(key) == "min_qty" {
				c.MinQty = int(v)
			} else {
				if v == 0 {
					return fmt.Errorf("%s: must be positive", path)
				}
				c.TopN = int(v)
			}
		case "country":
			if d.null() {
				c.Countries = nil
				continue
			}
			if err := d.expect('['); err != nil {
				return field(path, err)
			}
			c.Countries = c.Countries[:0]
			afirst := true
			for i := 0; ; i++ {
				ok, err := d.element(&afirst)
				if err != nil {
					return field(path, err)
				}
				if !ok {
					break
				}
				s, err := d.interned(&d.countries)
				if err != nil {
					return field(fmt.Sprintf("%s[%d]", path, i), err)
				}
				c.Countries = append(c.Countries, s)
			}
		default:
			if err := d.skip(0); err != nil {
				return field(path, err)
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

func (d *decoder) rates() (map[string]Decimal, error) {
	if err := d.expect('{'); err != nil {
		return nil, field("rates_per_eur", err)
	}
	rates := map[string]Decimal{}
	first := true
	for {
		key, ok, err := d.member(&first)
		if err != nil {
			return nil, field("rates_per_eur", err)
		}
		if !ok {
			return rates, nil
		}
		cur := d.currencies.strs[d.currencies.index(key)]
		path := "rates_per_eur." + cur
		var rate Decimal
		switch d.peek() {
		case '{': // {"rate": 1.1456, "symbol": "$"}
			d.pos++
			seen := false
			ofirst := true
			for {
				k, ok, err := d.member(&ofirst)
				if err != nil {
					return nil, field(path, err)
				}
				if !ok {
					break
				}
				if string(k) != "rate" {
					name := string(k)
					if err := d.skip(0); err != nil {
						return nil, field(path+"."+name, err)
					}
					continue
				}
				if rate, err = d.decimal(); err != nil {
					return nil, field(path+".rate", err)
				}
				seen = true
			}
			if !seen {
				return nil, fmt.Errorf("%s.rate: missing", path)
			}
		default: // a bare number
			if rate, err = d.decimal(); err != nil {
				return nil, field(path, err)
			}
		}
		if rate.Sign() <= 0 {
			return nil, fmt.Errorf("%s: rate %s is not positive", path, rate)
		}
		rates[cur] = rate
	}
}

func (d *decoder) candidates() ([]Candidate, error) {
	if err := d.expect('['); err != nil {
		return nil, field("candidates", err)
	}
	var out []Candidate
	first := true
	for i := 0; ; i++ {
		ok, err := d.element(&first)
		if err != nil {
			return nil, field("candidates", err)
		}
		if !ok {
			return out, nil
		}
		if err := d.expect('{'); err != nil {
			return nil, field(fmt.Sprintf("candidates[%d]", i), err)
		}
		var c Candidate
		var haveID, haveScore bool
		ofirst := true
		for {
			key, ok, err := d.member(&ofirst)
			if err != nil {
				return nil, field(fmt.Sprintf("candidates[%d]", i), err)
			}
			if !ok {
				break
			}
			switch string(key) {
			case "release_id":
				if c.ReleaseID, err = d.int64(); err != nil {
					return nil, field(fmt.Sprintf("candidates[%d].release_id", i), err)
				}
				haveID = true
			case "score":
				if c.Score, err = d.decimal(); err != nil {
					return nil, field(fmt.Sprintf("candidates[%d].score", i), err)
				}
				haveScore = true
			default:
				name := string(key)
				if err := d.skip(0); err != nil {
					return nil, field(fmt.Sprintf("candidates[%d].%s", i, name), err)
				}
			}
		}
		if !haveID {
			return nil, fmt.Errorf("candidates[%d].release_id: missing", i)
		}
		if !haveScore {
			return nil, fmt.Errorf("candidates[%d].score: missing", i)
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

// Listing fields, in the order of the format.
const (
	fListingID = iota
	fReleaseID
	fSellerID
	fSellerName
	fRating
	fCountry
	fPrice
	fCurrency
	fShipping
	fShippingUnavailable
	fMedia
	fSleeve
	fCartURL
	nFields
)

var listingKeys = [nFields]string{"listing_id", "release_id", "seller_id", "seller_name", "seller_rating", "country",
	"price", "currency", "shipping", "shipping_unavailable", "media_cond", "sleeve_cond", "cart_url"}

// quotedKeys are listingKeys as they appear in compact JSON: `"price":`.
var quotedKeys = func() (q [nFields]string) {
	for i, k := range listingKeys {
		q[i] = `"` + k + `":`
	}
	return q
}()

// listingField returns the field a key names, or -1.
func listingField(key []byte) int {
	for f, k := range listingKeys {
		if string(key) == k {
			return f
		}
	}
	return -1
}

// listingKey returns key as a string, without allocating for the keys
// listings have.
func listingKey(key []byte) string {
	if f := listingField(key); f >= 0 {
		return listingKeys[f]
	}
	return string(key)
}

func listingFieldName(bit int) string {
	switch bit {
	case lfListingID:
		return "listing_id"
	case lfReleaseID:
		return "release_id"
	case lfSellerID:
		return "seller_id"
	case lfRating:
		return "seller_rating"
	case lfPrice:
		return "price"
	case lfCurrency:
		return "currency"
	}
	return "media_cond"
}

// listings reads the listings array: into p.Listings, or, with a preparer,
// one at a time through it.
func (d *decoder) listings(p *Problem, pp *preparer) error {
	if err := d.expect('['); err != nil {
		return field("listings", err)
	}
	var one Listing
	first := true
	start, startLen := d.offset(), len(p.Listings)
	for i := len(p.Listings); ; i++ {
		ok, err := d.element(&first)
		if err != nil {
			return field("listings", err)
		}
		if !ok {
			return nil
		}
		if pp == nil && len(p.Listings) == cap(p.Listings) {
			p.Listings = slices.Grow(p.Listings, d.moreListings(start, len(p.Listings)-startLen, len(p.Listings)))
		}
		// Most listings take the fast path; anything it does not handle
		// is parsed again by the general one, which also reports errors.
		if d.end-d.pos < fastWindow && len(d.buf) >= 4*fastWindow {
			d.more(d.pos) // a whole listing in the window
		}
		l := &one
		if pp == nil {
			p.Listings = append(p.Listings, Listing{})
			l = &p.Listings[len(p.Listings)-1]
		} else {
			one = Listing{}
		}
		if d.slowOnly || !d.fastListing(l, pp == nil) {
			*l = Listing{}
			d.slowListings++
			if err := d.listing(l, i, pp == nil); err != nil {
				return err
			}
		}
		if pp != nil {
			if err := pp.add(i, l); err != nil {
				return err
			}
		}
	}
}

// fastWindow is how much input the fast path wants in the window ahead of
// a listing (a listing is a few hundred bytes).
const fastWindow = 4 << 10

// fastListing parses a plain listing straight from the window: all of it
// in the window, known keys, strings without escapes or non-ASCII bytes,
// numbers without exponents and of at most 18 digits, no nulls. On
// anything else it returns false, having consumed nothing (*l may be
// partly set), and the listing is parsed again by listing(), which
// handles every case and reports errors. Both give the same Listing.
func (d *decoder) fastListing(l *Listing, full bool) bool {
	b := d.buf[:d.end]
	i := skipWS(b, d.pos)
	if byteAt(b, i) != '{' {
		return false
	}
	i++
	have := 0
	prev := nFields
	for {
		i = skipWS(b, i)
		c := byteAt(b, i)
		if c == '}' {
			i++
			break
		}
		if prev != nFields {
			if c != ',' {
				return false
			}
			i = skipWS(b, i+1)
		}
		// Listings repeat their keys in the same order: try the key that
		// followed the previous one last time before scanning.
		f := int(d.nextField[prev])
		if q := quotedKeys[f]; len(b)-i >= len(q) && string(b[i:i+len(q)]) == q {
			i += len(q)
		} else {
			if byteAt(b, i) != '"' {
				return false
			}
			ke, ok := scanPlain(b, i+1)
			if !ok {
				return false
			}
			if f = listingField(b[i+1 : ke]); f < 0 {
				return false
			}
			d.nextField[prev] = int8(f)
			i = skipWS(b, ke+1)
			if byteAt(b, i) != ':' {
				return false
			}
			i++
		}
		prev = f
		i = skipWS(b, i)
		var v []byte
		ok := false
		switch f {
		case fListingID:
			l.ListingID, i, ok = fastInt(b, i)
			have |= lfListingID
		case fReleaseID:
			l.ReleaseID, i, ok = fastInt(b, i)
			have |= lfReleaseID
		case fSellerID:
			l.SellerID, i, ok = fastInt(b, i)
			have |= lfSellerID
		case fSellerName:
			if v, i, ok = fastStr(b, i); ok {
				l.SellerName = d.names.strs[d.names.index(v)]
			}
		case fRating:
			l.SellerRating, i, ok = fastDec(b, i)
			have |= lfRating
		case fCountry:
			if v, i, ok = fastStr(b, i); ok {
				l.Country = d.countries.strs[d.countries.index(v)]
			}
		case fPrice:
			l.Price, i, ok = fastDec(b, i)
			ok = ok && l.Price.Sign() >= 0
			have |= lfPrice
		case fCurrency:
			if v, i, ok = fastStr(b, i); ok {
				l.Currency = d.currencies.strs[d.currencies.index(v)]
			}
			have |= lfCurrency
		case fShipping:
			l.Shipping, i, ok = fastDec(b, i)
			ok = ok && l.Shipping.Sign() >= 0
		case fShippingUnavailable:
			l.ShippingUnavailable, i, ok = fastBool(b, i)
		case fMedia:
			if v, i, ok = fastStr(b, i); ok {
				l.MediaCond, l.Media = d.media(v)
			}
			have |= lfMedia
		case fSleeve:
			if v, i, ok = fastStr(b, i); ok && full {
				l.SleeveCond = d.sleeves.strs[d.sleeves.index(v)]
			}
		case fCartURL:
			if v, i, ok = fastStr(b, i); ok && full {
				l.CartURL = d.urls.str(v)
			}
		}
		if !ok {
			return false
		}
	}
	if have != lfRequired {
		return false
	}
	d.pos = i
	return true
}

// byteAt returns b[i], or 0 (never valid where the fast path looks) past
// the end.
func byteAt(b []byte, i int) byte {
	if i < len(b) {
		return b[i]
	}
	return 0
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

// scanPlain finds the closing quote of a string whose contents start at
// b[i]; ok is false if a backslash, control character or non-ASCII byte
// comes first, or the end of b. Eight bytes at a time: in t, the high bit
// of a byte is set where the byte is below 0x20, a quote, a backslash or
// 0x80 and above; bytes above that first one may be set spuriously (by
// borrows), which does not matter, as only the first is used.
func scanPlain(b []byte, i int) (end int, ok bool) {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		t := (x - 0x20*lo) | ((x ^ '"'*lo) - lo) | ((x ^ '\\'*lo) - lo) | x
		if m := t & hi; m != 0 {
			i += bits.TrailingZeros64(m) / 8
			return i, b[i] == '"'
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c == '"' || c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			return i, c == '"'
		}
	}
	return i, false
}

// fastStr reads a plain string (see scanPlain) starting at its quote.
func fastStr(b []byte, i int) ([]byte, int, bool) {
	if byteAt(b, i) != '"' {
		return nil, i, false
	}
	end, ok := scanPlain(b, i+1)
	if !ok {
		return nil, i, false
	}
	return b[i+1 : end], end + 1, true
}

// fastBool reads true or false.
func fastBool(b []byte, i int) (bool, int, bool) {
	switch {
	case i+4 <= len(b) && string(b[i:i+4]) == "true":
		return true, i + 4, true
	case i+5 <= len(b) && string(b[i:i+5]) == "false":
		return false, i + 5, true
	}
	return false, i, false
}

// isNumByte reports whether c may continue a number token (numBytes).
func isNumByte(c byte) bool {
	return c-'0' <= 9 || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

// fastInt reads an integer of at most 18 digits, the way int64() does.
func fastInt(b []byte, i int) (int64, int, bool) {
	neg := byteAt(b, i) == '-'
	if neg {
		i++
	}
	start := i
	var v int64
	for ; i < len(b) && b[i]-'0' <= 9; i++ {
		v = v*10 + int64(b[i]-'0')
	}
	if n := i - start; n == 0 || n > 18 || (b[start] == '0' && n > 1) || isNumByte(byteAt(b, i)) {
		return 0, i, false
	}
	if neg {
		v = -v
	}
	return v, i, true
}

// fastDec reads a number without exponent, of at most 18 significant
// digits, the way parseNumber does.
func fastDec(b []byte, i int) (Decimal, int, bool) {
	neg := byteAt(b, i) == '-'
	if neg {
		i++
	}
	var coef int64
	digits := 0
	switch c := byteAt(b, i); {
	case c == '0':
		i++
	case c-'1' <= 8:
		for ; i < len(b) && b[i]-'0' <= 9; i++ {
			coef = coef*10 + int64(b[i]-'0')
			digits++
		}
	default:
		return Decimal{}, i, false
	}
	frac := 0
	if byteAt(b, i) == '.' {
		i++
		start := i
		for ; i < len(b) && b[i]-'0' <= 9; i++ {
			coef = coef*10 + int64(b[i]-'0')
			if coef != 0 {
				digits++
			}
		}
		if frac = i - start; frac == 0 {
			return Decimal{}, i, false
		}
	}
	if digits > 18 || frac > 100 || isNumByte(byteAt(b, i)) {
		return Decimal{}, i, false
	}
	if neg {
		coef = -coef
	}
	return normalize(coef, int32(-frac)), i, true
}

// media returns the canonical text and the grade of a media condition.
func (d *decoder) media(b []byte) (string, pb.MediaGrade) {
	g := d.grades.index(b)
	if g == len(d.gradeOf) { // new text
		parsed, _ := grade.ParseMedia(d.grades.strs[g]) // unknown: UNSPECIFIED, filtered later
		d.gradeOf = append(d.gradeOf, parsed)
	}
	return d.grades.strs[g], d.gradeOf[g]
}

// moreListings returns how many listings to make room for when the slice
// of n listings is full, k of them read since offset start. Growing a
// slice of 50k 200-byte listings by append's 1.25 factor allocates and
// copies five times the final size, and fresh memory is what costs most
// here (see the top of the file): so, when the input size is known,
// extrapolate the listings still to come from the bytes they have taken so
// far, and otherwise double.
func (d *decoder) moreListings(start int64, k, n int) int {
	const sample = 32
	if d.sizeHint <= 0 || k < sample {
		return max(n, sample)
	}
	per := max((d.offset()-start)/int64(k), 64)
	rest := (d.sizeHint - d.offset()) / per
	// At most doubling past a million listings, lest a wrong size
	// allocate too much at once.
	return int(min(max(rest+rest/32+8, sample), int64(max(n, 1<<20))))
}

// listing reads one listing. Without full, fields the solver does not use
// (sleeve, cart URL) are skipped.
func (d *decoder) listing(l *Listing, i int, full bool) error {
	path := func(key string) string { return fmt.Sprintf("listings[%d].%s", i, key) }
	if err := d.expect('{'); err != nil {
		return field(fmt.Sprintf("listings[%d]", i), err)
	}
	have := 0
	first := true
	for {
		key, ok, err := d.member(&first)
		if err != nil {
			return field(fmt.Sprintf("listings[%d]", i), err)
		}
		if !ok {
			break
		}
		// The key is a view into the window that reading the value may
		// move: name it first (constant strings for known keys).
		name := listingKey(key)
		switch name {
		case "listing_id":
			l.ListingID, err = d.int64()
			have |= lfListingID
		case "release_id":
			l.ReleaseID, err = d.int64()
			have |= lfReleaseID
		case "seller_id":
			l.SellerID, err = d.int64()
			have |= lfSellerID
		case "seller_name":
			if !d.null() {
				l.SellerName, err = d.interned(&d.names)
			}
		case "seller_rating":
			l.SellerRating, err = d.decimal()
			have |= lfRating
		case "country":
			if !d.null() {
				l.Country, err = d.interned(&d.countries)
			}
		case "price":
			l.Price, err = d.decimal()
			if err == nil && l.Price.Sign() < 0 {
				err = fmt.Errorf("%s is negative", l.Price)
			}
			have |= lfPrice
		case "currency":
			l.Currency, err = d.interned(&d.currencies)
			have |= lfCurrency
		case "shipping":
			if d.null() {
				l.Shipping = Decimal{}
				continue
			}
			l.Shipping, err = d.decimal()
			if err == nil && l.Shipping.Sign() < 0 {
				err = fmt.Errorf("%s is negative", l.Shipping)
			}
		case "shipping_unavailable":
			if !d.null() {
				l.ShippingUnavailable, err = d.boolean()
			}
		case "media_cond":
			have |= lfMedia
			if d.null() {
				continue // present but unknown: filtered as unknown_grade
			}
			var b []byte
			if b, err = d.strBytes(); err == nil {
				l.MediaCond, l.Media = d.media(b)
			}
		case "sleeve_cond":
			if full && !d.null() {
				l.SleeveCond, err = d.interned(&d.sleeves)
			} else if !full {
				err = d.skip(0)
			}
		case "cart_url":
			if full && !d.null() {
				var b []byte
				if b, err = d.strBytes(); err == nil {
					l.CartURL = d.urls.str(b)
				}
			} else if !full {
				err = d.skip(0)
			}
		default:
			err = d.skip(0)
		}
		if err != nil {
			return field(path(name), err)
		}
	}
	if have != lfRequired {
		for bit := 1; bit < lfRequired; bit <<= 1 {
			if have&bit == 0 {
				return fmt.Errorf("%s: missing", path(listingFieldName(bit)))
			}
		}
	}
	return nil
}
