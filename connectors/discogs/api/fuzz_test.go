package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// seedFiles are real API answers cut from brotherlogic/godiscogs (MIT, see
// testdata/seeds/NOTICE), so that the targets run without ../shared.
func seedFiles(f *testing.F) [][]byte {
	f.Helper()
	files, err := filepath.Glob("testdata/seeds/*.json")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in testdata/seeds: %v", err)
	}
	var out [][]byte
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

const fuzzUser = "fuzz_user"

// FuzzListPage decodes arbitrary wantlist and collection pages and
// delivers them as the fetch does. The wire page survives decode, encode,
// decode unchanged; every item yields a PageResult item; every event is
// the user's, for a positive release at a positive time, of the list's
// kinds (a RATE only in a collection, rated 1..5), with an id that
// depends on its fields only, and marshals; items without events are
// counted as unmapped; the summary's release ids are the items' positive
// ids, sorted and distinct.
func FuzzListPage(f *testing.F) {
	for _, b := range seedFiles(f) {
		f.Add(b)
	}
	f.Add([]byte(`{"pagination":{"page":1,"pages":1,"items":2},"wants":[{"id":5,"date_added":"2020-01-02T03:04:05+09:00"},{"basic_information":{"id":-1},"date_added":"1969-12-31T23:59:59Z"}],
		"releases":[{"id":7,"instance_id":9,"rating":5,"date_added":"2020-01-02T03:04:05Z"},{"id":7,"instance_id":9,"rating":6,"date_added":"2020-01-02T03:04:05Z"}]}`))

	f.Fuzz(func(t *testing.T, body []byte) {
		var w wirePage
		if json.Unmarshal(body, &w) != nil {
			return
		}
		enc, err := json.Marshal(w)
		if err != nil {
			t.Fatalf("a decoded page does not encode: %v", err)
		}
		var again wirePage
		if err := json.Unmarshal(enc, &again); err != nil || !reflect.DeepEqual(w, again) {
			t.Fatalf("decode, encode, decode changed the page (%v):\n%+v\n%+v", err, w, again)
		}

		for _, l := range []list{listWants, listCollection} {
			wire := w.Wants
			if l == listCollection {
				wire = w.Releases
			}
			var got []PageResult
			acc := &accumulator{l: l, username: fuzzUser, declared: w.Pagination, pages: max(w.Pagination.Pages, 1),
				ids: map[int64]struct{}{}, onPage: func(p PageResult) error { got = append(got, p); return nil }}
			if err := acc.deliver(1, w); err != nil {
				t.Fatal(err)
			}
			sum, _ := acc.summary() // ErrListChanged is the page's business
			if len(got) != 1 || len(got[0].Items) != len(wire) || sum.Fetched != len(wire) {
				t.Fatalf("%s: %d results, %d of %d items", l, len(got), sum.Fetched, len(wire))
			}
			unmapped := 0
			var ids []int64
			for _, it := range got[0].Items {
				evs := interactions(fuzzUser, l, it)
				if len(evs) == 0 {
					unmapped++
				}
				if it.ReleaseID > 0 {
					ids = append(ids, it.ReleaseID)
				}
				for _, ev := range evs {
					checkEvent(t, l, it, ev)
				}
			}
			if sum.Unmapped != unmapped {
				t.Fatalf("%s: %d unmapped, counted %d", l, sum.Unmapped, unmapped)
			}
			slices.Sort(ids)
			if ids = slices.Compact(ids); !slices.Equal(ids, sum.ReleaseIDs) && len(ids)+len(sum.ReleaseIDs) > 0 {
				t.Fatalf("%s: release ids %v, want %v", l, sum.ReleaseIDs, ids)
			}
		}
	})
}

func checkEvent(t *testing.T, l list, it Item, ev *pb.Interaction) {
	t.Helper()
	if ev.UserId != fuzzUser || ev.ReleaseId != it.ReleaseID || ev.ReleaseId <= 0 || ev.EventTimeMs <= 0 ||
		ev.EventTimeMs != it.DateAdded.UnixMilli() || ev.Source != pb.InteractionSource_INTERACTION_SOURCE_DISCOGS_API {
		t.Fatalf("%s: event %v of item %+v", l, ev, it)
	}
	switch ev.Kind {
	case pb.InteractionKind_INTERACTION_KIND_WANT_ADD:
		if l != listWants || ev.Rating != 0 {
			t.Fatalf("%s: %v", l, ev)
		}
	case pb.InteractionKind_INTERACTION_KIND_COLLECT_ADD:
		if l != listCollection || ev.Rating != 0 {
			t.Fatalf("%s: %v", l, ev)
		}
	case pb.InteractionKind_INTERACTION_KIND_RATE:
		if l != listCollection || ev.Rating < 1 || ev.Rating > 5 || int(ev.Rating) != it.Rating {
			t.Fatalf("%s: %v", l, ev)
		}
	default:
		t.Fatalf("%s: kind %v", l, ev.Kind)
	}
	if ev.EventId != eventID(fuzzUser, ev.Kind, ev.ReleaseId, it.InstanceID, ev.EventTimeMs, ev.Rating) {
		t.Fatalf("%s: event id %s is not a function of the event", l, ev.EventId)
	}
	if _, err := proto.Marshal(ev); err != nil {
		t.Fatalf("%s: %v", l, err)
	}
}

// maxFuzzRequests stops a runaway fetch of one FuzzFetch input.
const maxFuzzRequests = 200

// pageBound is how many pages the items declared by body fill: what a
// fetch may request.
func pageBound(body []byte) int64 {
	var w wirePage
	if json.Unmarshal(body, &w) != nil || w.Pagination.Items <= 0 {
		return 1
	}
	perPage := w.Pagination.PerPage
	if perPage < 1 || perPage > maxPerPage {
		perPage = maxPerPage
	}
	return int64((w.Pagination.Items-1)/perPage + 1)
}

// FuzzFetch serves an arbitrary answer, with an arbitrary status, to every
// page request of a wantlist and a collection fetch: the fetch must end,
// within maxFuzzRequests requests, with a summary or an error, and the
// pages it delivers are the pages it was told of, each once. It requests
// no more pages than the declared items fill.
func FuzzFetch(f *testing.F) {
	for _, b := range seedFiles(f) {
		f.Add(b, uint16(200))
	}
	f.Add([]byte(`{"message": "Page 4 is outside of valid range [1, 1]."}`), uint16(404))
	f.Add([]byte(`{"message": "You are making requests too quickly."}`), uint16(429))
	f.Add([]byte(`{"pagination":{"page":1,"pages":2,"items":1,"per_page":100},"wants":[{"id":5,"date_added":"2020-01-02T03:04:05Z"}]}`), uint16(200))

	f.Fuzz(func(t *testing.T, body []byte, status uint16) {
		if status < 200 || status > 599 {
			status = 200
		}
		var requests atomic.Int64
		hc := &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
			if requests.Add(1) > maxFuzzRequests {
				return nil, errors.New("too many requests")
			}
			return &http.Response{StatusCode: int(status), Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(body)), Request: r}, nil
		})}
		c, err := New(Config{BaseURL: "https://api.discogs.test", UserAgent: "fuzz/1.0", HTTPClient: hc, MaxRetries: -1,
			Now:   func() time.Time { return time.Unix(1_700_000_000, 0) },
			Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }})
		if err != nil {
			t.Fatal(err)
		}
		for _, fetch := range []func(context.Context, string, func(PageResult) error) (Summary, error){c.Wantlist, c.Collection} {
			requests.Store(0)
			seen := map[int]bool{}
			declared := 0
			sum, err := fetch(context.Background(), fuzzUser, func(p PageResult) error {
				if seen[p.Page] || p.Page < 1 || (declared > 0 && p.Page > declared) {
					t.Fatalf("page %d delivered again or beyond %d", p.Page, declared)
				}
				seen[p.Page] = true
				declared = p.Pages
				return nil
			})
			if n := requests.Load(); n > pageBound(body) && n <= maxFuzzRequests {
				t.Fatalf("%d requests for %d pages of items (summary %+v, err %v)", n, pageBound(body), sum, err)
			}
			if err == nil && (status >= 300 || len(seen) != max(sum.Pages, 1)) {
				t.Fatalf("status %d, %d pages delivered: summary %+v without an error", status, len(seen), sum)
			}
		}
	})
}
