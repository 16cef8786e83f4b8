package bench

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cratestream/cratestream/connectors/discogs/dump"
	"github.com/cratestream/cratestream/connectors/discogs/fakemarket"
	"github.com/cratestream/cratestream/connectors/discogs/marketplace"
)

// ParseResult is the marketplace page parsing rate.
type ParseResult struct {
	Pages, Listings          int
	PagesPerSec, ListingsSec float64
}

// Parse renders full marketplace pages (250 listings each, the fake
// market's markup, which is the real pages') and measures how fast they
// parse, for at least minDur.
func Parse(minDur time.Duration) (ParseResult, error) {
	m, err := fakemarket.New(fakemarket.Config{NumReleases: 2000, Seed: 3})
	if err != nil {
		return ParseResult{}, err
	}
	at := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	var pages [][]byte
	for _, rel := range m.Releases() {
		ls := m.Listings(rel, at)
		if len(ls) < 250 {
			continue
		}
		var buf bytes.Buffer
		rp := marketplace.RenderPage{ReleaseID: rel, Listings: ls[:250], Sellers: m.Sellers(rel, at), Page: 1, Limit: 250, Total: len(ls)}
		if err := marketplace.Render(&buf, rp); err != nil {
			return ParseResult{}, err
		}
		pages = append(pages, buf.Bytes())
	}
	if len(pages) == 0 {
		return ParseResult{}, errors.New("no release with a full page in the generated market")
	}
	var r ParseResult
	start := time.Now()
	for time.Since(start) < minDur {
		for _, p := range pages {
			pg, err := marketplace.Parse(bytes.NewReader(p), marketplace.Options{Now: at})
			if err != nil {
				return r, err
			}
			r.Pages++
			r.Listings += len(pg.Listings)
		}
	}
	el := time.Since(start).Seconds()
	r.PagesPerSec, r.ListingsSec = float64(r.Pages)/el, float64(r.Listings)/el
	return r, nil
}

// DumpResult is the dump decoding rate and peak memory.
type DumpResult struct {
	Format        string
	Releases      int64
	ReleasesPerS  float64
	MBPerS        float64
	PeakRSSMB     float64
	InputMB       float64
	ElapsedSecond float64
}

// Dump synthesises a releases dump of n records in a temporary file (plain
// or gzip) and decodes it, reporting releases/s, MB/s of uncompressed XML
// and the process's peak resident memory, which stays flat however large
// the file: the decoder streams.
func Dump(n int, gz bool) (DumpResult, error) {
	f, err := os.CreateTemp("", "cratestream-dump-*.xml")
	if err != nil {
		return DumpResult{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	var w io.Writer = f
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(f)
		w = zw
	}
	if err := dump.Synthesize(w, n); err != nil {
		return DumpResult{}, err
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return DumpResult{}, err
		}
	}
	size, _ := f.Seek(0, io.SeekCurrent)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return DumpResult{}, err
	}
	dec, err := dump.NewReleases(f)
	if err != nil {
		return DumpResult{}, err
	}
	defer dec.Close()
	start := time.Now()
	for {
		if _, err := dec.NextRelease(); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			var re *dump.RecordError
			if errors.As(err, &re) {
				continue
			}
			return DumpResult{}, err
		}
	}
	el := time.Since(start).Seconds()
	st := dec.Stats()
	format := "plain"
	if gz {
		format = "gzip"
	}
	return DumpResult{Format: format, Releases: st.Records, ReleasesPerS: float64(st.Records) / el,
		MBPerS: float64(st.Bytes) / 1e6 / el, PeakRSSMB: peakRSSMB(), InputMB: float64(size) / 1e6, ElapsedSecond: el}, nil
}

// peakRSSMB reads the process's peak resident set (VmHWM) from /proc.
func peakRSSMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseFloat(f[0], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

// String of a DumpResult for progress output.
func (d DumpResult) String() string {
	return fmt.Sprintf("%s: %d releases in %.2fs from %.0f MB", d.Format, d.Releases, d.ElapsedSecond, d.InputMB)
}
