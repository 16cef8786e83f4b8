package dump

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Fatal errors. NextRelease and NextMaster return them wrapped, with the
// offset or cause, and keep returning the same error afterwards.
var (
	// ErrTruncated: the input ended inside the document (a cut download).
	ErrTruncated = errors.New("dump: truncated document")
	// ErrMalformed: the document itself, outside any record, is not a
	// dump of the expected kind.
	ErrMalformed = errors.New("dump: malformed document")
	// ErrResume: the resume position does not match the input.
	ErrResume = errors.New("dump: cannot resume")
)

// RecordError is one bad record: the stream goes on with the next record
// on the following call. Send it to a dead-letter topic with its reason.
type RecordError struct {
	Offset int64  // uncompressed input offset of the record's start tag
	ID     string // the id attribute as written; "" when missing
	Reason string
	Raw    []byte // the record's bytes, cut at MaxRawBytes
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("dump: bad record id=%q at offset %d: %s", e.ID, e.Offset, e.Reason)
}

// Position identifies the last record returned (good or bad) and is the
// resume token: persist it after the record's effects are durable.
type Position struct {
	ID     int64 // the record's id; 0 when it had no valid id
	Offset int64 // uncompressed input offset of the record's start tag
}

// Stats are the decoder's progress counters. Stats may be called from any
// goroutine while another one decodes.
type Stats struct {
	Records int64 // records returned successfully
	Bad     int64 // records returned as *RecordError
	Skipped int64 // records skipped to resume
	// Bytes is the uncompressed input consumed, through the last record.
	Bytes int64
	// InputBytes is what was read from the caller's reader: compressed
	// bytes for gzip input (read ahead of decoding, by up to about 1 MiB).
	InputBytes int64
	Gzip       bool
}

// Option configures a Decoder.
type Option func(*config)

type config struct {
	eventMs int64
	resume  Position
	maxRec  int
	maxRaw  int
}

// EventTime sets event_time_ms of every record (default: the dump date
// given by FileName, else 0).
func EventTime(t time.Time) Option { return func(c *config) { c.eventMs = t.UnixMilli() } }

// FileName passes the dump's file name ("discogs_20200806_releases.xml.gz")
// so that event_time_ms is the dump date (midnight UTC). Without a date in
// the name it does nothing. An EventTime option takes precedence.
func FileName(name string) Option {
	return func(c *config) {
		if c.eventMs != 0 {
			return
		}
		if t, ok := DumpDate(name); ok {
			c.eventMs = t.UnixMilli()
		}
	}
}

// ResumeAfter starts decoding after the record at p, a Position saved
// from an earlier run over the same file. With p.Offset the decoder skips
// the bytes before it without parsing them and checks that a record with
// id p.ID starts there; with only p.ID it skips records, unparsed, through
// the one with that id (ErrResume when there is none).
func ResumeAfter(p Position) Option { return func(c *config) { c.resume = p } }

// MaxRecordSize bounds the bytes of one record (default 64 MiB), and so
// the decoder's memory: a larger record is returned as a *RecordError.
func MaxRecordSize(n int) Option { return func(c *config) { c.maxRec = max(n, 4096) } }

// MaxRawBytes bounds RecordError.Raw (default 256 KiB), to fit a
// dead-letter message.
func MaxRawBytes(n int) Option { return func(c *config) { c.maxRaw = max(n, 0) } }

// DumpDate parses the date of a dump from its file name, as Discogs names
// them: discogs_YYYYMMDD_<kind>.xml[.gz].
func DumpDate(name string) (time.Time, bool) {
	base := filepath.Base(name)
	i := strings.Index(base, "discogs_")
	if i < 0 || len(base) < i+16 {
		return time.Time{}, false
	}
	t, err := time.Parse("20060102", base[i+8:i+16])
	return t, err == nil
}

type kind struct {
	root, rec string
	idPrefix  string // event_id prefix
}

type state uint8

const (
	stPrologue state = iota // before the first element
	stRoot                  // inside <releases>
	stBare                  // records at the top level, no root (single-record files)
	stAfter                 // after the root element
	stDone
)

// Decoder streams the records of one dump. It is not safe for concurrent
// use, except Stats.
type Decoder struct {
	s      scanner
	k      kind
	cfg    config
	state  state
	fatal  error
	resume bool

	recOff int64  // offset of the current record's start tag
	recID  []byte // its raw id attribute
	last   Position

	in *countReader
	ra *readAhead // nil unless gzip

	records atomic.Int64
	bad     atomic.Int64
	skipped atomic.Int64
	bytes   atomic.Int64

	scratch []byte
	stack   []byte // names of the elements skip is inside, concatenated
	lens    []int
}

// NewReleases returns a decoder of a releases dump. Gzip input is detected
// by its magic bytes and decompressed in a read-ahead goroutine: call Close
// when done.
func NewReleases(r io.Reader, opts ...Option) (*Decoder, error) {
	return newDecoder(r, kind{root: "releases", rec: "release", idPrefix: "dump:releases:"}, opts)
}

// NewMasters returns a decoder of a masters dump; see NewReleases.
func NewMasters(r io.Reader, opts ...Option) (*Decoder, error) {
	return newDecoder(r, kind{root: "masters", rec: "master", idPrefix: "dump:masters:"}, opts)
}

func newDecoder(r io.Reader, k kind, opts []Option) (*Decoder, error) {
	cfg := config{maxRec: 64 << 20, maxRaw: 256 << 10}
	for _, o := range opts {
		o(&cfg)
	}
	d := &Decoder{k: k, cfg: cfg, in: &countReader{r: r}}
	br := bufio.NewReaderSize(d.in, 64<<10)
	var src io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("dump: gzip header: %w", err)
		}
		d.ra = newReadAhead(zr, 256<<10, 4)
		src = d.ra
		// Stop the goroutine of a decoder dropped without Close.
		runtime.AddCleanup(d, func(ra *readAhead) { ra.close() }, d.ra)
	}
	d.s = newScanner(src, 256<<10, cfg.maxRec)
	d.resume = cfg.resume != (Position{})
	return d, nil
}

// Close stops the gzip read-ahead goroutine (a decoder dropped without
// Close stops it when garbage collected). It does not close the reader
// given to NewReleases. The decoder must not be used afterwards.
func (d *Decoder) Close() error {
	if d.ra != nil {
		d.ra.close()
	}
	return nil
}

// Stats returns the progress counters.
func (d *Decoder) Stats() Stats {
	return Stats{
		Records:    d.records.Load(),
		Bad:        d.bad.Load(),
		Skipped:    d.skipped.Load(),
		Bytes:      d.bytes.Load(),
		InputBytes: d.in.n.Load(),
		Gzip:       d.ra != nil,
	}
}

// Position returns the resume token of the last record returned.
func (d *Decoder) Position() Position { return d.last }

// startRecord positions the scanner on the start tag of the next record
// (after resuming, if asked). It returns io.EOF after the document, a
// *RecordError for an unreadable element between records, or a fatal
// error.
func (d *Decoder) startRecord() error {
	if d.fatal != nil {
		return d.fatal
	}
	if d.resume {
		d.resume = false
		if err := d.doResume(); err != nil {
			return d.fail(err)
		}
	}
	err := d.seekRecord()
	if msg, ok := d.brokenTag(err); ok {
		return d.badRecord(msg, true)
	}
	if err != nil {
		return d.fail(err)
	}
	return nil
}

// seekRecord reads up to the next record start tag.
func (d *Decoder) seekRecord() error {
	for {
		if d.state == stDone {
			return io.EOF
		}
		s := &d.s
		if err := s.next(); err != nil {
			return err
		}
		switch s.kind {
		case tokText, tokCDATA:
			if d.state == stPrologue || d.state == stAfter {
				text := s.text
				if s.tokOff == 0 {
					text = bytes.TrimPrefix(text, []byte("\xef\xbb\xbf")) // UTF-8 BOM
				}
				if len(trimSpace(text)) > 0 {
					return fmt.Errorf("%w: text outside the root element at offset %d", ErrMalformed, s.tokOff)
				}
			}
		case tokEOF:
			switch d.state {
			case stBare, stAfter:
				d.state = stDone
				return io.EOF
			case stPrologue:
				return fmt.Errorf("%w: no <%s> element", ErrMalformed, d.k.root)
			}
			return fmt.Errorf("%w: input ends at offset %d before </%s>", ErrTruncated, s.tokOff, d.k.root)
		case tokEnd:
			if d.state == stRoot && string(s.name) == d.k.root {
				d.state = stAfter
				continue
			}
			return fmt.Errorf("%w: unexpected </%s> at offset %d", ErrMalformed, s.name, s.tokOff)
		case tokStart:
			switch {
			case string(s.name) == d.k.rec && d.state != stAfter:
				if d.state == stPrologue {
					d.state = stBare
				}
				d.recOff = s.tokOff
				s.keep = d.recOff
				return nil
			case d.state == stPrologue && string(s.name) == d.k.root:
				d.state = stRoot
				if s.selfClose {
					d.state = stAfter
				}
			case d.state == stRoot:
				// An element we do not know between records: skip it.
				if err := d.skip(); err != nil {
					return err
				}
			default:
				return fmt.Errorf("%w: unexpected <%s> at offset %d, want <%s>", ErrMalformed, s.name, s.tokOff, d.k.root)
			}
		}
	}
}

// doResume skips what an earlier run already processed.
func (d *Decoder) doResume() error {
	p := d.cfg.resume
	if p.Offset <= 0 {
		return d.resumeByID(p.ID)
	}
	// Read the prologue and root start tag, so that the state is right,
	// then jump.
	if err := d.seekRecord(); err != nil {
		if err == io.EOF {
			return fmt.Errorf("%w: offset %d is past the end", ErrResume, p.Offset)
		}
		return err
	}
	d.s.unread()
	d.s.keep = -1
	if p.Offset < d.s.offset() {
		return fmt.Errorf("%w: offset %d is before the first record", ErrResume, p.Offset)
	}
	if err := d.s.discard(p.Offset - d.s.offset()); err != nil {
		return fmt.Errorf("%w: offset %d: %w", ErrResume, p.Offset, err)
	}
	err := d.s.next()
	if _, ok := d.brokenTag(err); ok && d.recOff == p.Offset && p.ID == 0 {
		// The record was returned as a RecordError for its broken start
		// tag: skip it the way reading did.
		return d.skipRecord(true)
	}
	if err != nil {
		return fmt.Errorf("%w: offset %d: %w", ErrResume, p.Offset, err)
	}
	if d.s.kind != tokStart || string(d.s.name) != d.k.rec || d.s.tokOff != p.Offset {
		return fmt.Errorf("%w: no <%s> at offset %d", ErrResume, d.k.rec, p.Offset)
	}
	d.recOff = d.s.tokOff
	d.s.keep = d.recOff
	id, _ := d.parseID()
	if p.ID != 0 && id != p.ID {
		return fmt.Errorf("%w: record at offset %d has id %q, want %d", ErrResume, p.Offset, d.recID, p.ID)
	}
	return d.skipRecord(false)
}

func (d *Decoder) resumeByID(target int64) error {
	for {
		err := d.seekRecord()
		if _, ok := d.brokenTag(err); ok {
			if err := d.skipRecord(true); err != nil {
				return err
			}
			continue
		}
		if err == io.EOF {
			return fmt.Errorf("%w: no record with id %d", ErrResume, target)
		}
		if err != nil {
			return err
		}
		id, _ := d.parseID()
		if err := d.skipRecord(false); err != nil {
			return err
		}
		if id == target {
			return nil
		}
	}
}

// brokenTag reports whether err is a syntax error in a tag between
// records, which is a bad record; it makes that tag the current record.
func (d *Decoder) brokenTag(err error) (msg string, ok bool) {
	var se *syntaxError
	if !errors.As(err, &se) || (d.state != stRoot && d.state != stBare) {
		return "", false
	}
	d.recOff, d.recID = d.s.tokOff, d.recID[:0]
	d.s.keep = d.recOff
	return se.msg, true
}

// skipRecord consumes the current record unparsed, as resuming does;
// broken is a record whose start tag could not be read.
func (d *Decoder) skipRecord(broken bool) error {
	var id int64
	var err error
	if !broken {
		id, _ = d.parseID()
		err = d.skip()
	}
	var se *syntaxError
	if broken || errors.As(err, &se) || err == errTooLarge {
		err = d.resync()
	}
	d.s.keep = -1
	if err != nil {
		return err
	}
	d.skipped.Add(1)
	d.last = Position{ID: id, Offset: d.recOff}
	d.bytes.Store(d.s.offset())
	return nil
}

// parseID reads the id attribute of the record's start tag, the current
// token, keeping its raw text in recID.
func (d *Decoder) parseID() (int64, string) {
	d.recID = d.recID[:0]
	found := false
	for a := d.s.attrs; ; {
		name, val, rest, err := nextAttr(a)
		if err != nil {
			return 0, err.Error()
		}
		if name == nil {
			break
		}
		if string(name) == "id" {
			d.recID, found = append(d.recID, val...), true
		}
		a = rest
	}
	if !found {
		return 0, "missing id attribute"
	}
	id, ok := parseUint(d.recID)
	if !ok || id == 0 {
		return 0, "invalid id attribute"
	}
	return id, ""
}

// finish accounts for a record decoded without a syntax error; reason is
// set when it is nevertheless invalid.
func (d *Decoder) finish(id int64, reason string) error {
	if reason != "" {
		return d.badRecord(reason, false)
	}
	d.s.keep = -1
	d.records.Add(1)
	d.last = Position{ID: id, Offset: d.recOff}
	d.bytes.Store(d.s.offset())
	return nil
}

// recordErr classifies an error met inside a record: syntax errors and
// oversized records are bad records; anything else is fatal.
func (d *Decoder) recordErr(err error) error {
	var se *syntaxError
	switch {
	case errors.As(err, &se):
		return d.badRecord(se.msg, true)
	case err == errTooLarge:
		return d.badRecord(fmt.Sprintf("record larger than %d bytes", d.cfg.maxRec), true)
	}
	return d.fail(err)
}

// badRecord builds the RecordError of the current record. With resync the
// record was not read to its end: look for the next record first.
func (d *Decoder) badRecord(reason string, resync bool) error {
	s := &d.s
	raw := d.raw(s.pos)
	var fatal error
	if resync {
		// What we have, in case the record is too large to keep to its
		// end.
		raw = d.raw(s.end)
		fatal = d.resync()
		if s.keep >= 0 {
			raw = d.raw(s.pos)
		}
	}
	s.keep = -1
	id, _ := parseUint(d.recID)
	d.last = Position{ID: id, Offset: d.recOff}
	d.bytes.Store(s.offset())
	d.bad.Add(1)
	switch {
	case fatal == io.EOF:
		d.fatal = fatal
	case fatal != nil:
		// Through fail, like every fatal error: a gzip stream cut inside
		// the bad record came back as a bare io.ErrUnexpectedEOF.
		d.fail(fatal)
	}
	return &RecordError{Offset: d.recOff, ID: string(d.recID), Reason: reason, Raw: raw}
}

// raw copies the record's bytes up to buffer index end, if still kept.
func (d *Decoder) raw(end int) []byte {
	s := &d.s
	start := d.recOff - s.base
	if s.keep < 0 || start < 0 || start > int64(end) {
		return nil
	}
	b := bytes.TrimRight(s.buf[start:end], " \t\r\n")
	if len(b) > d.cfg.maxRaw {
		b = b[:d.cfg.maxRaw]
	}
	return bytes.Clone(b)
}

// resync moves to the next record start tag or the root's end tag, looking
// from just after the bad record's start; tags cannot appear inside
// character data, so the first match is the next element at record level.
// A document that ends first is truncated (or done, without a root).
func (d *Decoder) resync() error {
	s := &d.s
	if start := d.recOff - s.base; s.keep >= 0 && start >= 0 && start < int64(s.end) {
		s.pos = int(start) + 1
	}
	rec, root := "<"+d.k.rec, "</"+d.k.root
	for {
		i := bytes.IndexByte(s.buf[s.pos:s.end], '<')
		var err error
		if i < 0 {
			s.pos = s.end
			err = s.fill()
		} else {
			s.pos += i
			err = s.ensure(len(root) + 1)
		}
		switch {
		case err == errTooLarge:
			// Give up keeping the record for Raw; keep looking.
			s.keep = -1
			continue
		case err == io.EOF || errors.Is(err, errUnexpectedEOF):
			if d.state == stBare {
				d.state = stDone
				s.pos = s.end
				return nil
			}
			return fmt.Errorf("%w: input ends at offset %d inside a bad record", ErrTruncated, s.base+int64(s.end))
		case err != nil:
			return err
		case i < 0:
			continue
		}
		b := s.buf[s.pos:s.end]
		if (bytes.HasPrefix(b, []byte(rec)) && isDelim(b[len(rec)])) ||
			(bytes.HasPrefix(b, []byte(root)) && isDelim(b[len(root)])) {
			return nil
		}
		s.pos++
	}
}

func isDelim(c byte) bool { return isSpace(c) || c == '>' || c == '/' }

// fail makes err the decoder's sticky fatal error.
func (d *Decoder) fail(err error) error {
	if err == io.EOF {
		return err
	}
	switch {
	case errors.Is(err, errUnexpectedEOF):
		err = fmt.Errorf("%w: input ends at offset %d", ErrTruncated, d.s.base+int64(d.s.end))
	case errors.Is(err, io.ErrUnexpectedEOF):
		// gzip's report of a cut stream
		err = fmt.Errorf("%w: %w", ErrTruncated, err)
	case err == errTooLarge:
		err = fmt.Errorf("%w: element at offset %d larger than %d bytes", ErrMalformed, d.s.tokOff, d.cfg.maxRec)
	default:
		var se *syntaxError
		if errors.As(err, &se) {
			err = fmt.Errorf("%w: %s", ErrMalformed, se)
		} else if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrResume) {
			err = fmt.Errorf("dump: read: %w", err)
		}
	}
	d.fatal = err
	return err
}

// skip consumes the element whose start tag is the current token, checking
// that tags nest.
func (d *Decoder) skip() error {
	s := &d.s
	if s.selfClose {
		return nil
	}
	st, lens := append(d.stack[:0], s.name...), append(d.lens[:0], len(s.name))
	defer func() { d.stack, d.lens = st[:0], lens[:0] }()
	for len(lens) > 0 {
		if err := s.next(); err != nil {
			return err
		}
		switch s.kind {
		case tokStart:
			if string(s.name) == d.k.rec {
				return s.syntax("<%s> inside a record", s.name)
			}
			if !s.selfClose {
				st, lens = append(st, s.name...), append(lens, len(s.name))
			}
		case tokEnd:
			n := lens[len(lens)-1]
			if !bytes.Equal(st[len(st)-n:], s.name) {
				return s.syntax("</%s> closes <%s>", s.name, st[len(st)-n:])
			}
			st, lens = st[:len(st)-n], lens[:len(lens)-1]
		case tokEOF:
			return errUnexpectedEOF
		}
	}
	return nil
}

// textBytes reads the character data of the element whose start tag is the
// current token through its end tag, which must be </name>. The result is
// in the decoder's scratch buffer, valid until the next call.
func (d *Decoder) textBytes(name string) ([]byte, error) {
	s := &d.s
	d.scratch = d.scratch[:0]
	if s.selfClose {
		return d.scratch, nil
	}
	for {
		if err := s.next(); err != nil {
			return nil, err
		}
		var err error
		switch s.kind {
		case tokText:
			if d.scratch, err = unescape(d.scratch, s.text, false); err != nil {
				return nil, &syntaxError{off: s.tokOff, msg: fmt.Sprintf("<%s>: %v", name, err)}
			}
		case tokCDATA:
			d.scratch = append(d.scratch, s.text...)
		case tokStart:
			// Mixed content is not expected but well-formed: ignore it.
			if string(s.name) == d.k.rec {
				return nil, s.syntax("<%s> inside a record", s.name)
			}
			n := len(d.scratch)
			if err := d.skip(); err != nil {
				return nil, err
			}
			d.scratch = d.scratch[:n]
		case tokEnd:
			if string(s.name) != name {
				return nil, s.syntax("</%s> closes <%s>", s.name, name)
			}
			return d.scratch, nil
		case tokEOF:
			return nil, errUnexpectedEOF
		}
	}
}

// text is textBytes as a string, which must be valid UTF-8 (protobuf
// strings have to be).
func (d *Decoder) text(name string) (string, error) {
	b, err := d.textBytes(name)
	if err != nil {
		return "", err
	}
	if !validUTF8(b) {
		return "", d.s.syntax("<%s>: invalid UTF-8", name)
	}
	return string(b), nil
}

// int reads an element holding an integer; empty or non-numeric text is 0,
// as Discogs writes no value for unknown.
func (d *Decoder) int(name string) (int64, error) {
	b, err := d.textBytes(name)
	if err != nil {
		return 0, err
	}
	n, _ := parseUint(trimSpace(b))
	return n, nil
}

// attrString decodes an attribute value.
func (d *Decoder) attrString(name, raw []byte) (string, error) {
	var err error
	d.scratch, err = unescape(d.scratch[:0], raw, true)
	if err != nil {
		return "", d.s.syntax("attribute %s: %v", name, err)
	}
	if !validUTF8(d.scratch) {
		return "", d.s.syntax("attribute %s: invalid UTF-8", name)
	}
	return string(d.scratch), nil
}

// parseUint parses a decimal id; ok is false for anything else.
func parseUint(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func eventID(prefix string, id int64) string {
	var b [48]byte
	return string(strconv.AppendInt(append(b[:0], prefix...), id, 10))
}

func validUTF8(b []byte) bool { return utf8.Valid(b) }
