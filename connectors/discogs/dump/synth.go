package dump

import (
	"io"
	"strconv"
	"strings"
)

// Synthesize writes a releases dump of n records, ids 1..n ascending, made
// by repeating real sample records with rewritten ids: a stand-in for the
// real multi-gigabyte file in benchmarks. It writes about 4.3 kB per
// release and holds no more than one record in memory. The samples are
// real records; see sampleReleases for their source and licence.
func Synthesize(w io.Writer, n int) error {
	_, err := io.CopyBuffer(w, NewSynthReader(n), make([]byte, 256<<10))
	return err
}

// NewSynthReader returns the stream Synthesize writes, as a reader, so a
// benchmark can decode it without storing it.
func NewSynthReader(n int) io.Reader {
	r := &synthReader{n: n, pending: []byte("<releases>\n")}
	for rec := range strings.SplitAfterSeq(sampleReleases, "</release>\n") {
		if rec == "" {
			continue
		}
		// Split each record around the digits of its id attribute.
		const open = `<release id="`
		i := len(open)
		j := i + strings.IndexByte(rec[i:], '"')
		r.tmpl = append(r.tmpl, [2]string{open, rec[j:]})
	}
	return r
}

type synthReader struct {
	tmpl    [][2]string // record text before and after the id
	n, i    int         // records to write, written
	pending []byte      // generated, not yet read
	off     int
	buf     []byte
	ended   bool
}

func (r *synthReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	total := 0
	for len(p) > 0 {
		if r.off == len(r.pending) {
			if !r.generate() {
				break
			}
		}
		k := copy(p, r.pending[r.off:])
		r.off += k
		p = p[k:]
		total += k
	}
	if total == 0 {
		return 0, io.EOF
	}
	return total, nil
}

// generate renders the next record, or the closing tag, into pending.
func (r *synthReader) generate() bool {
	switch {
	case r.i < r.n:
		t := r.tmpl[r.i%len(r.tmpl)]
		r.i++
		b := append(r.buf[:0], t[0]...)
		b = strconv.AppendInt(b, int64(r.i), 10)
		b = append(b, t[1]...)
		r.buf = b
	case !r.ended:
		r.ended = true
		r.buf = append(r.buf[:0], "</releases>\n"...)
	default:
		return false
	}
	r.pending, r.off = r.buf, 0
	return true
}
