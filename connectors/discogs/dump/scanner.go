package dump

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// The scanner is a minimal XML tokenizer over its own byte buffer. It is
// not a general XML parser: it knows start and end tags, character data,
// CDATA, comments, processing instructions and a DOCTYPE, which is all the
// Discogs dumps use. Tokens are only returned once complete, and their byte
// slices alias the buffer, so they are valid until the next call of next.
//
// Memory stays bounded because the buffer only keeps what the decoder asks
// for: the current token, plus, while a record is being decoded, the record
// from its start tag (keep). That is what lets a bad record be returned
// whole, and bounds memory by the largest record rather than the file.

type tokKind uint8

const (
	tokEOF tokKind = iota
	tokStart
	tokEnd
	tokText  // raw character data, entities not yet decoded
	tokCDATA // literal character data
)

// errUnexpectedEOF is the scanner's "input ended inside a token"; the
// decoder turns it into the fatal ErrTruncated with an offset.
var errUnexpectedEOF = errors.New("unexpected end of input")

// errTooLarge reports that keeping the current record (or token) would need
// a buffer larger than the configured maximum.
var errTooLarge = errors.New("record larger than the maximum record size")

// syntaxError is a well-formedness error at an input offset. Inside a record
// it is recoverable: the record is reported and the decoder resynchronises.
type syntaxError struct {
	off int64
	msg string
}

func (e *syntaxError) Error() string { return fmt.Sprintf("offset %d: %s", e.off, e.msg) }

type scanner struct {
	r    io.Reader
	buf  []byte
	pos  int   // next unread byte in buf
	end  int   // end of valid data in buf
	base int64 // input offset of buf[0]
	keep int64 // input offset to retain from on refill; -1: none
	max  int   // largest buffer allowed
	rerr error // sticky error of r

	// Current token.
	kind      tokKind
	tokOff    int64 // input offset of the token's first byte
	name      []byte
	attrs     []byte // raw attribute text of a start tag
	selfClose bool
	text      []byte
}

func newScanner(r io.Reader, size, max int) scanner {
	if size > max {
		size = max
	}
	return scanner{r: r, buf: make([]byte, size), keep: -1, max: max}
}

// offset is the input offset of the next unread byte.
func (s *scanner) offset() int64 { return s.base + int64(s.pos) }

// fill reads more input, first dropping what is neither the unread data
// (from pos) nor retained (from keep), and growing the buffer when full.
// It returns nil when it read something, io.EOF at the end of input,
// errTooLarge, or the reader's error.
func (s *scanner) fill() error {
	if s.rerr != nil {
		return s.rerr
	}
	k := s.pos
	if s.keep >= 0 {
		if ki := s.keep - s.base; ki >= 0 && ki < int64(k) {
			k = int(ki)
		}
	}
	if k > 0 {
		n := copy(s.buf, s.buf[k:s.end])
		s.base += int64(k)
		s.pos -= k
		s.end = n
	}
	if s.end == len(s.buf) {
		if len(s.buf) >= s.max {
			return errTooLarge
		}
		nb := make([]byte, min(2*len(s.buf), s.max))
		copy(nb, s.buf[:s.end])
		s.buf = nb
	}
	for tries := 0; ; tries++ {
		n, err := s.r.Read(s.buf[s.end:])
		s.end += n
		if err != nil {
			s.rerr = err
			if n > 0 {
				return nil
			}
			return err
		}
		if n > 0 {
			return nil
		}
		if tries >= 100 {
			s.rerr = io.ErrNoProgress
			return s.rerr
		}
	}
}

// eofErr maps io.EOF met inside a token to errUnexpectedEOF.
func eofErr(err error) error {
	if err == io.EOF {
		return errUnexpectedEOF
	}
	return err
}

// ensure makes n unread bytes available.
func (s *scanner) ensure(n int) error {
	for s.end-s.pos < n {
		if err := s.fill(); err != nil {
			return eofErr(err)
		}
	}
	return nil
}

// find returns the index, relative to pos, of the first occurrence of seq
// at or after from, reading more input as needed.
func (s *scanner) find(from int, seq string) (int, error) {
	for {
		b := s.buf[s.pos:s.end]
		for from+len(seq) <= len(b) {
			j := bytes.IndexByte(b[from:len(b)-len(seq)+1], seq[0])
			if j < 0 {
				break
			}
			if string(b[from+j:from+j+len(seq)]) == seq {
				return from + j, nil
			}
			from += j + 1
		}
		from = max(from, len(b)-len(seq)+1)
		if err := s.fill(); err != nil {
			return 0, eofErr(err)
		}
	}
}

func (s *scanner) syntax(format string, args ...any) error {
	return &syntaxError{off: s.tokOff, msg: fmt.Sprintf(format, args...)}
}

// unread moves back to the start of the current token, which is still in
// the buffer because refills never drop the token being scanned.
func (s *scanner) unread() { s.pos = int(s.tokOff - s.base) }

// discard skips n bytes without looking at them.
func (s *scanner) discard(n int64) error {
	for n > 0 {
		if s.pos == s.end {
			if err := s.fill(); err != nil {
				return eofErr(err)
			}
		}
		k := min(int64(s.end-s.pos), n)
		s.pos += int(k)
		n -= k
	}
	return nil
}

// next reads the next token. It skips comments, processing instructions
// and DOCTYPE declarations. At the end of input it returns a tokEOF token.
func (s *scanner) next() error {
	for {
		if s.pos >= s.end {
			if err := s.fill(); err != nil {
				if err == io.EOF {
					s.kind, s.tokOff = tokEOF, s.offset()
					return nil
				}
				return err
			}
			continue
		}
		s.tokOff = s.offset()
		if s.buf[s.pos] != '<' {
			return s.scanText()
		}
		if s.end-s.pos < 2 {
			if err := s.ensure(2); err != nil {
				return err
			}
		}
		switch s.buf[s.pos+1] {
		case '/':
			return s.scanEnd()
		case '?':
			i, err := s.find(2, "?>")
			if err != nil {
				return err
			}
			s.pos += i + 2
		case '!':
			cdata, err := s.scanBang()
			if err != nil || cdata {
				return err
			}
		default:
			return s.scanStart()
		}
	}
}

func (s *scanner) scanText() error {
	from := 0
	for {
		b := s.buf[s.pos:s.end]
		if i := bytes.IndexByte(b[from:], '<'); i >= 0 {
			s.kind, s.text = tokText, b[:from+i]
			s.pos += from + i
			return nil
		}
		from = len(b)
		if err := s.fill(); err != nil {
			if err != io.EOF {
				return err
			}
			// Character data may end the input (whitespace after the root).
			s.kind, s.text = tokText, s.buf[s.pos:s.end]
			s.pos = s.end
			return nil
		}
	}
}

func (s *scanner) scanEnd() error {
	i, err := s.find(2, ">")
	if err != nil {
		return err
	}
	name := trimSpace(s.buf[s.pos+2 : s.pos+i])
	if !validName(name) {
		return s.syntax("malformed end tag %q", s.buf[s.pos:s.pos+i+1])
	}
	s.kind, s.name = tokEnd, name
	s.pos += i + 1
	return nil
}

// scanBang skips a comment or DOCTYPE, or returns a CDATA section as a
// token (cdata true).
func (s *scanner) scanBang() (cdata bool, err error) {
	if err := s.ensure(4); err != nil {
		return false, err
	}
	b := s.buf[s.pos:s.end]
	if b[2] == '-' && b[3] == '-' {
		i, err := s.find(4, "-->")
		if err != nil {
			return false, err
		}
		s.pos += i + 3
		return false, nil
	}
	if b[2] == '[' {
		if err := s.ensure(9); err != nil {
			return false, err
		}
		if string(s.buf[s.pos:s.pos+9]) != "<![CDATA[" {
			return false, s.syntax("malformed <![ section")
		}
		i, err := s.find(9, "]]>")
		if err != nil {
			return false, err
		}
		s.kind, s.text = tokCDATA, s.buf[s.pos+9:s.pos+i]
		s.pos += i + 3
		return true, nil
	}
	// <!DOCTYPE ...>, possibly with an internal subset in brackets.
	depth, i := 0, 2
	for {
		b = s.buf[s.pos:s.end]
		for ; i < len(b); i++ {
			switch b[i] {
			case '[':
				depth++
			case ']':
				depth--
			case '>':
				if depth <= 0 {
					s.pos += i + 1
					return false, nil
				}
			}
		}
		if err := s.fill(); err != nil {
			return false, eofErr(err)
		}
	}
}

func (s *scanner) scanStart() error {
	// Find the closing '>' outside quoted attribute values; q is the open
	// quote, kept across refills so a long tag is scanned once.
	var q byte
	i := 1
	for {
		b := s.buf[s.pos:s.end]
		for i < len(b) {
			if q != 0 {
				j := bytes.IndexByte(b[i:], q)
				if j < 0 {
					i = len(b)
					break
				}
				i += j + 1
				q = 0
				continue
			}
			switch c := b[i]; c {
			case '>':
				return s.startTag(b[:i])
			case '"', '\'':
				q = c
			case '<':
				return s.syntax("'<' inside tag %q", b[:i])
			}
			i++
		}
		if err := s.fill(); err != nil {
			return eofErr(err)
		}
	}
}

// startTag splits a complete start tag, without its '>', into name and
// attributes.
func (s *scanner) startTag(b []byte) error {
	s.pos += len(b) + 1
	s.selfClose = false
	if b[len(b)-1] == '/' {
		s.selfClose = true
		b = b[:len(b)-1]
	}
	n := 1
	for n < len(b) && !isSpace(b[n]) {
		n++
	}
	if !validName(b[1:n]) {
		return s.syntax("malformed start tag %q", b)
	}
	s.kind, s.name, s.attrs = tokStart, b[1:n], b[n:]
	return nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\t' || c == '\r' }

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// validName is a cheap plausibility check of a tag name: enough to reject
// garbage such as "</ a b>" or "<=x>" without the full XML name grammar.
func validName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	switch b[0] {
	case '-', '.', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return false
	}
	for _, c := range b {
		if c >= 'a' && c <= 'z' || c == '_' {
			continue // what the dumps' names are made of
		}
		switch c {
		case ' ', '\t', '\n', '\r', '/', '<', '>', '=', '"', '\'', '&', '!', '?':
			return false
		}
	}
	return true
}

// nextAttr returns the first attribute of attrs and the rest. At the end it
// returns a nil name.
func nextAttr(attrs []byte) (name, val, rest []byte, err error) {
	attrs = trimSpace(attrs)
	if len(attrs) == 0 {
		return nil, nil, nil, nil
	}
	eq := bytes.IndexByte(attrs, '=')
	if eq <= 0 {
		return nil, nil, nil, fmt.Errorf("malformed attributes %q", attrs)
	}
	name = trimSpace(attrs[:eq])
	if !validName(name) {
		return nil, nil, nil, fmt.Errorf("malformed attribute name %q", name)
	}
	v := trimSpace(attrs[eq+1:])
	if len(v) == 0 || (v[0] != '"' && v[0] != '\'') {
		return nil, nil, nil, fmt.Errorf("unquoted value of attribute %q", name)
	}
	end := bytes.IndexByte(v[1:], v[0])
	if end < 0 {
		return nil, nil, nil, fmt.Errorf("unterminated value of attribute %q", name)
	}
	rest = v[end+2:]
	if len(rest) > 0 && !isSpace(rest[0]) {
		return nil, nil, nil, fmt.Errorf("no space after attribute %q", name)
	}
	return name, v[1 : end+1], rest, nil
}

// unescape appends the decoded character data of raw to dst: entity and
// character references, and the XML line-end normalisation (CR LF and lone
// CR become LF). In attribute values (attr) whitespace characters become
// spaces, as XML's attribute-value normalisation requires.
func unescape(dst, raw []byte, attr bool) ([]byte, error) {
	for len(raw) > 0 {
		i := 0
		for i < len(raw) && raw[i] != '&' && raw[i] != '\r' && !(attr && (raw[i] == '\n' || raw[i] == '\t' || raw[i] == '<')) {
			i++
		}
		dst = append(dst, raw[:i]...)
		raw = raw[i:]
		if len(raw) == 0 {
			break
		}
		switch raw[0] {
		case '\r':
			raw = raw[1:]
			if len(raw) > 0 && raw[0] == '\n' {
				raw = raw[1:]
			}
			if attr {
				dst = append(dst, ' ')
			} else {
				dst = append(dst, '\n')
			}
			continue
		case '\n', '\t':
			dst = append(dst, ' ')
			raw = raw[1:]
			continue
		case '<':
			return dst, errors.New("'<' in attribute value")
		}
		semi := bytes.IndexByte(raw, ';')
		if semi < 0 || semi > 12 {
			return dst, fmt.Errorf("unterminated entity reference %.12q", raw)
		}
		ent := raw[1:semi]
		raw = raw[semi+1:]
		switch string(ent) {
		case "amp":
			dst = append(dst, '&')
		case "lt":
			dst = append(dst, '<')
		case "gt":
			dst = append(dst, '>')
		case "quot":
			dst = append(dst, '"')
		case "apos":
			dst = append(dst, '\'')
		default:
			r, ok := charRef(ent)
			if !ok {
				return dst, fmt.Errorf("invalid entity reference &%s;", ent)
			}
			dst = utf8.AppendRune(dst, r)
		}
	}
	return dst, nil
}

// charRef decodes the body of a character reference, "#228" or "#xE4",
// accepting only characters XML allows.
func charRef(ent []byte) (rune, bool) {
	if len(ent) < 2 || ent[0] != '#' {
		return 0, false
	}
	ent = ent[1:]
	base := rune(10)
	if ent[0] == 'x' {
		base, ent = 16, ent[1:]
		if len(ent) == 0 {
			return 0, false
		}
	}
	var r rune
	for _, c := range ent {
		var d rune
		switch {
		case c >= '0' && c <= '9':
			d = rune(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			d = rune(c-'a') + 10
		case base == 16 && c >= 'A' && c <= 'F':
			d = rune(c-'A') + 10
		default:
			return 0, false
		}
		r = r*base + d
		if r > utf8.MaxRune {
			return 0, false
		}
	}
	switch {
	case r == 0x9 || r == 0xA || r == 0xD,
		r >= 0x20 && r <= 0xD7FF,
		r >= 0xE000 && r <= 0xFFFD,
		r >= 0x10000 && r <= utf8.MaxRune:
		return r, true
	}
	return 0, false
}
