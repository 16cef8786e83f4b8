package api

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cratestream/cratestream/internal/testutil"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

func fixtureDir(t *testing.T) string {
	t.Helper()
	return testutil.SharedDir(t, "fixtures", "api_json", "godiscogs")
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixtureItems decodes a real page and returns its items by release id
// and instance id (0 for wants).
func fixtureItems(t *testing.T, name string, l list) map[[2]int64]Item {
	t.Helper()
	var w wirePage
	if err := json.Unmarshal(readFixture(t, name), &w); err != nil {
		t.Fatal(err)
	}
	wire := w.Wants
	if l == listCollection {
		wire = w.Releases
	}
	out := map[[2]int64]Item{}
	for i := range wire {
		it := wire[i].item()
		out[[2]int64{it.ReleaseID, it.InstanceID}] = it
	}
	return out
}

type wantEvent struct {
	kind   pb.InteractionKind
	timeMs int64
	rating int32
}

// Items checked by hand against the fixture JSON; times converted from
// date_added with its offset (e.g. 08:08:30-07:00 = 15:08:30Z).
func TestInteractionsOfRealItems(t *testing.T) {
	const (
		want    = pb.InteractionKind_INTERACTION_KIND_WANT_ADD
		collect = pb.InteractionKind_INTERACTION_KIND_COLLECT_ADD
		rate    = pb.InteractionKind_INTERACTION_KIND_RATE
	)
	tests := []struct {
		name, file        string
		l                 list
		release, instance int64
		title             string
		want              []wantEvent
	}{
		{"first want", "users_brotherlogic_wants_page1.json", listWants, 9997880, 0,
			"The New York Rock & Roll Ensemble", []wantEvent{{want, 1600355310000, 0}}},
		{"rated want gets no RATE", "users_brotherlogic_wants_page3_last.json", listWants, 1003652, 0,
			"Pubs, Drunks And Hip-Hop", []wantEvent{{want, 1600354428000, 0}}},
		{"rated copy", "users_brotherlogic_collection_folder0_releases_page1.json", listCollection, 2749755, 130899776,
			"A Siren Blares In An Indifferent Ocean", []wantEvent{{collect, 1432773731000, 0}, {rate, 1432773731000, 4}}},
		{"unrated copy, winter offset -08:00", "users_brotherlogic_collection_folder0_releases_page1.json", listCollection, 627532, 214261644,
			"69 Love Songs", []wantEvent{{collect, 1487310774000, 0}}},
		{"last page copy", "users_brotherlogic_collection_folder0_releases_page32_last.json", listCollection, 241035, 126593342,
			"Spaz The World", []wantEvent{{collect, 1428859241000, 0}, {rate, 1428859241000, 4}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			it, ok := fixtureItems(t, tc.file, tc.l)[[2]int64{tc.release, tc.instance}]
			if !ok {
				t.Fatalf("release %d instance %d not in %s", tc.release, tc.instance, tc.file)
			}
			if it.Title != tc.title {
				t.Errorf("title %q, want %q", it.Title, tc.title)
			}
			evs := interactions("brotherlogic", tc.l, it)
			if len(evs) != len(tc.want) {
				t.Fatalf("got %d events, want %d: %v", len(evs), len(tc.want), evs)
			}
			for i, ev := range evs {
				w := tc.want[i]
				if ev.Kind != w.kind || ev.EventTimeMs != w.timeMs || ev.Rating != w.rating ||
					ev.ReleaseId != tc.release || ev.UserId != "brotherlogic" ||
					ev.Source != pb.InteractionSource_INTERACTION_SOURCE_DISCOGS_API || ev.EventId == "" {
					t.Errorf("event %d = %v, want kind %v time %d rating %d release %d", i, ev, w.kind, w.timeMs, w.rating, tc.release)
				}
			}
		})
	}
}

// brotherlogic owns two copies of release 2331612: each is its own event.
func TestTwoCopiesOfOneRelease(t *testing.T) {
	items := fixtureItems(t, "users_brotherlogic_collection_folder0_releases_page1.json", listCollection)
	a, okA := items[[2]int64{2331612, 152789889}]
	b, okB := items[[2]int64{2331612, 184970684}]
	if !okA || !okB {
		t.Fatal("the two copies of 2331612 are not in the fixture")
	}
	ea, eb := interactions("brotherlogic", listCollection, a), interactions("brotherlogic", listCollection, b)
	if ea[0].EventId == eb[0].EventId {
		t.Fatalf("two copies share event id %s", ea[0].EventId)
	}
}

func TestEventIDDeterminism(t *testing.T) {
	base := Item{ReleaseID: 2749755, InstanceID: 130899776, Rating: 4,
		DateAdded: time.Date(2015, 5, 27, 17, 42, 11, 0, time.FixedZone("", -7*3600))}
	ids := func(user string, l list, it Item) []string {
		var out []string
		for _, ev := range interactions(user, l, it) {
			out = append(out, ev.EventId)
		}
		return out
	}
	ref := ids("brotherlogic", listCollection, base)
	if len(ref) != 2 || ref[0] == ref[1] {
		t.Fatalf("COLLECT_ADD and RATE ids %v", ref)
	}
	sameInstantUTC := base
	sameInstantUTC.DateAdded = base.DateAdded.UTC()
	rerated := base
	rerated.Rating = 5
	tests := []struct {
		name      string
		user      string
		it        Item
		sameAdd   bool
		sameRate  bool
		wantCount int
	}{
		{"re-sync of the same item", "brotherlogic", base, true, true, 2},
		{"same instant, other offset", "brotherlogic", sameInstantUTC, true, true, 2},
		{"other user", "someoneelse", base, false, false, 2},
		{"rating changed", "brotherlogic", rerated, true, false, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ids(tc.user, listCollection, tc.it)
			if len(got) != tc.wantCount {
				t.Fatalf("ids %v", got)
			}
			if (got[0] == ref[0]) != tc.sameAdd || (got[1] == ref[1]) != tc.sameRate {
				t.Errorf("ids %v vs reference %v: want same add %v, same rate %v", got, ref, tc.sameAdd, tc.sameRate)
			}
		})
	}
	// A want of the same release at the same time is a different event.
	if w := ids("brotherlogic", listWants, Item{ReleaseID: base.ReleaseID, DateAdded: base.DateAdded}); w[0] == ref[0] {
		t.Error("WANT_ADD and COLLECT_ADD share an id")
	}
}

func TestUnmappableItems(t *testing.T) {
	ok := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		it   Item
	}{
		{"no release id", Item{DateAdded: ok}},
		{"no date", Item{ReleaseID: 1}},
		{"before 1970", Item{ReleaseID: 1, DateAdded: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)}},
	}
	for _, tc := range tests {
		if evs := interactions("u", listCollection, tc.it); evs != nil {
			t.Errorf("%s: got %v, want none", tc.name, evs)
		}
	}
	// Out-of-range ratings are not sent as RATE (the processor would
	// reject them), but the copy is still collected.
	if evs := interactions("u", listCollection, Item{ReleaseID: 1, DateAdded: ok, Rating: 9}); len(evs) != 1 {
		t.Errorf("rating 9: got %v, want COLLECT_ADD only", evs)
	}
}

func TestDecodeToleratesBadDate(t *testing.T) {
	var w wireItem
	if err := json.Unmarshal([]byte(`{"id": 5, "date_added": "yesterday", "basic_information": {"id": 0}}`), &w); err != nil {
		t.Fatal(err)
	}
	it := w.item()
	if it.ReleaseID != 5 || !it.DateAdded.IsZero() {
		t.Fatalf("item %+v: want release 5 from top-level id and a zero date", it)
	}
}
