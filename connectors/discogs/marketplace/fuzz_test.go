package marketplace

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
)

// seedDir holds the seed pages of FuzzParse: real pages and fragments cut
// from MIT-licensed projects (see testdata/seeds/NOTICE), so that the
// target runs without ../shared. Inputs the fuzzer found go to
// testdata/fuzz/FuzzParse, as usual.
const seedDir = "testdata/seeds"

func seedPages(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(seedDir, "*.html"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no seed pages in %s: %v", seedDir, err)
	}
	out := make(map[string][]byte, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

// The seeds are worth something only while they parse: a seed the parser
// rejects explores the error paths alone.
func TestFuzzSeedsParse(t *testing.T) {
	for name, b := range seedPages(t) {
		o := Options{Now: testNow}
		if strings.Contains(name, "synthetic") {
			o.ReleaseID = syntheticRelease
		}
		p, err := Parse(bytes.NewReader(b), o)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if len(p.Listings) == 0 && !strings.Contains(name, "empty") {
			t.Errorf("%s: no listings", name)
		}
	}
}

// FuzzParse feeds arbitrary pages to Parse. Either the parse fails with a
// markup error (a scraper dead-letters the page) or every listing is
// publishable: a positive price in a known currency, a known media grade,
// a seller with a ships-from, and records that marshal. A parsed page also
// renders back (Render) into a page that parses to the same listings and
// sellers, which catches fields read differently from how they are
// written.
func FuzzParse(f *testing.F) {
	for _, b := range seedPages(f) {
		f.Add(b, int64(0))
	}
	f.Add([]byte(row(`<span class="price">$10.00</span>`, "+$2.00", "")), int64(7))
	f.Add([]byte(`<table class="mpitems"><tbody><tr data-release-id="5"><td><a href="/sell/item/1">x</a></td><td></td></tr></tbody></table>`), int64(5))

	f.Fuzz(func(t *testing.T, page []byte, release int64) {
		p, err := Parse(bytes.NewReader(page), Options{Now: testNow, ReleaseID: release})
		if release < 0 {
			if err == nil {
				t.Fatalf("Options.ReleaseID %d accepted", release)
			}
			return
		}
		if err != nil {
			if !errors.Is(err, ErrMarkup) && !errors.Is(err, ErrReleaseMismatch) {
				t.Fatalf("error %v is neither ErrMarkup nor ErrReleaseMismatch", err)
			}
			if p != nil {
				t.Fatalf("a page and an error")
			}
			return
		}
		if p.ReleaseID <= 0 || (release != 0 && p.ReleaseID != release) {
			t.Fatalf("release %d (asked %d)", p.ReleaseID, release)
		}
		checkInvariants(t, p)
		for _, l := range p.Listings {
			if _, err := proto.Marshal(l); err != nil {
				t.Fatalf("listing %d does not marshal: %v", l.ListingId, err)
			}
		}
		for _, s := range p.Sellers {
			if _, err := proto.Marshal(s); err != nil {
				t.Fatalf("seller %q does not marshal: %v", s.Username, err)
			}
		}
		if t.Failed() {
			return
		}

		rp := RenderPage{ReleaseID: p.ReleaseID, Listings: p.Listings, Sellers: p.Sellers}
		var buf bytes.Buffer
		if err := Render(&buf, rp); err != nil {
			t.Fatalf("a parsed page does not render: %v", err)
		}
		again, err := Parse(&buf, Options{Now: testNow})
		if err != nil {
			t.Fatalf("the rendered page does not parse: %v", err)
		}
		diffPage(t, again, p.Listings, p.Sellers)
	})
}
