package gateway

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

type fakeReleases map[int64]ReleaseInfo

func (f fakeReleases) Get(id int64) (ReleaseInfo, bool) {
	ri, ok := f[id]
	return ri, ok
}

func TestArtistsDisplay(t *testing.T) {
	ac := func(name, anv, join string) *pb.ArtistCredit {
		return &pb.ArtistCredit{Name: name, Anv: anv, Join: join}
	}
	tests := []struct {
		credits []*pb.ArtistCredit
		want    string
	}{
		{nil, ""},
		{[]*pb.ArtistCredit{ac("Miles Davis", "", "")}, "Miles Davis"},
		{[]*pb.ArtistCredit{ac("John Stewart (5)", "", "")}, "John Stewart"},
		{[]*pb.ArtistCredit{ac("Simon & Garfunkel (2)", "Simon And Garfunkel", "")}, "Simon And Garfunkel"},
		{[]*pb.ArtistCredit{ac("Paul Simon", "", "&"), ac("Art Garfunkel", "", "")}, "Paul Simon & Art Garfunkel"},
		{[]*pb.ArtistCredit{ac("A", "", ","), ac("B", "", "Feat."), ac("C", "", "")}, "A, B Feat. C"},
		{[]*pb.ArtistCredit{ac("A", "", "/"), ac("", "", "&"), ac("B", "", "")}, "A / B"},
		{[]*pb.ArtistCredit{ac("A", "", ""), ac("B", "", "")}, "A, B"},
	}
	for _, tt := range tests {
		if got := ArtistsDisplay(tt.credits); got != tt.want {
			t.Errorf("ArtistsDisplay(%v) = %q, want %q", tt.credits, got, tt.want)
		}
	}
}

func TestReleaseTopicDecodes(t *testing.T) {
	r := &pb.Release{ReleaseId: 60, Title: " Bookends ", Year: 1968, Genres: []string{"Rock"},
		Artists: []*pb.ArtistCredit{{Name: "Simon & Garfunkel"}}}
	b, err := topics.Releases().Value.Append(nil, r)
	if err != nil {
		t.Fatal(err)
	}
	rt := ReleaseTopic()
	if rt.Name != "releases.v1" {
		t.Fatalf("topic %s", rt.Name)
	}
	got, err := rt.Value.Decode(b)
	if err != nil || got != (ReleaseInfo{Title: "Bookends", Artists: "Simon & Garfunkel", Year: 1968}) {
		t.Fatalf("decoded %+v %v", got, err)
	}
	if _, err := rt.Value.Decode([]byte{0xff}); err == nil {
		t.Fatal("garbage decoded")
	}
}

// Releases the gateway knows carry title, artists and year in carts,
// recommendations and similar releases; unknown ones keep only their id.
func TestReleaseTitles(t *testing.T) {
	known := fakeReleases{
		10: {Title: "Bookends", Artists: "Simon & Garfunkel", Year: 1968},
		2:  {Title: "Kind Of Blue", Artists: "Miles Davis", Year: 1959},
		1:  {Title: "Blue Train", Artists: "John Coltrane"},
	}
	cands := &pb.Candidates{UserId: "alice", Candidates: []*pb.Candidate{
		{ReleaseId: 10, Score: 1, Source: pb.CandidateSource_CANDIDATE_SOURCE_RECOMMENDATION},
		{ReleaseId: 11, Score: 0.5, Source: pb.CandidateSource_CANDIDATE_SOURCE_RECOMMENDATION},
	}}
	cb, _ := proto.Marshal(cands)
	e := newEnv(t, func(c *Config) {
		c.Releases = known
		c.Stores = fakeStores{"recommend/candidates/alice": cb}
		c.Similar = func(release int64, n int) ([]int64, []float32, error) {
			return []int64{2, 3}, []float32{0.9, 0.8}, nil
		}
	})
	res := &pb.CartResult{RequestId: "cart-alice", UserId: "alice", Carts: []*pb.Cart{{Rank: 1, Sellers: []string{"s1"},
		Total: &pb.Money{AmountMinor: 1999, Currency: "EUR"}, Items: []*pb.CartItem{{ListingId: 7, ReleaseId: 10}, {ListingId: 8, ReleaseId: 99}}}}}
	b, _ := proto.Marshal(res)
	if err := e.srv.Hub().Apply(&kgo.Record{Topic: topics.Carts().Name, Partition: 2, Offset: 10, Key: []byte("alice"), Value: b}); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct{ path, contains string }{
		{"/api/v1/users/alice/recommendations", `"items":[{"release_id":10,"title":"Bookends","artists":"Simon & Garfunkel","year":1968,"score":1,"url":"https://www.discogs.com/release/10"},{"release_id":11,"score":0.5,`},
		{"/api/v1/releases/1/similar", `{"release_id":1,"title":"Blue Train","artists":"John Coltrane","items":[{"release_id":2,"title":"Kind Of Blue","artists":"Miles Davis","year":1959,"score":0.9,"url":"https://www.discogs.com/release/2"},{"release_id":3,"score":0.8,`},
		{"/api/v1/carts/cart-alice", `{"listing_id":7,"release_id":10,"title":"Bookends","artists":"Simon & Garfunkel","year":1968,"seller"`},
		{"/api/v1/carts/cart-alice", `{"listing_id":8,"release_id":99,"seller"`},
	} {
		w := e.do(t, "GET", tt.path, e.alice, "")
		if w.Code != 200 || !strings.Contains(w.Body.String(), tt.contains) {
			t.Errorf("%s: %d %s\nwant it to contain %s", tt.path, w.Code, w.Body, tt.contains)
		}
	}
	// The SSE result event carries the same view.
	sub, err := e.srv.Hub().Subscribe("cart-alice", "")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	evs, _ := sub.Next()
	if len(evs) != 1 || evs[0].Type != "result" {
		t.Fatalf("events %+v", evs)
	}
	var rv ResultView
	if err := json.Unmarshal(evs[0].Data, &rv); err != nil || rv.Carts[0].Items[0].Title != "Bookends" || rv.Carts[0].Items[1].Title != "" {
		t.Fatalf("result event %s %v", evs[0].Data, err)
	}

	// Without a release lookup, ids only.
	plain := newEnv(t, func(c *Config) { c.Stores = fakeStores{"recommend/candidates/alice": cb} })
	if w := plain.do(t, "GET", "/api/v1/users/alice/recommendations", plain.alice, ""); strings.Contains(w.Body.String(), "title") {
		t.Errorf("titles without a lookup: %s", w.Body)
	}
}

// A deployment without profile syncs (the demo) refuses them with its
// reason, and says so on /api/v1/me; others are unchanged.
func TestSyncUnavailable(t *testing.T) {
	const why = "the demo has no Discogs API access: its collectors' interactions are generated"
	e := newEnv(t, func(c *Config) { c.SyncUnavailable = why })
	w := e.do(t, "POST", "/api/v1/users/alice/sync", e.alice, `{"force": true}`)
	if w.Code != 503 || decodeErr(t, w).Error != why {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if n := len(e.prod.on(topics.SyncRequests().Name)) + len(e.prod.on(topics.RequestStatus().Name)); n != 0 {
		t.Fatalf("%d records produced for a refused sync", n)
	}
	if w := e.do(t, "POST", "/api/v1/users/bob/sync", e.alice, ""); w.Code != 403 {
		t.Fatalf("another user's sync: %d %s", w.Code, w.Body)
	}
	var me MeView
	if w := e.do(t, "GET", "/api/v1/me", e.alice, ""); json.Unmarshal(w.Body.Bytes(), &me) != nil || me != (MeView{User: "alice", SyncUnavailable: why}) {
		t.Fatalf("me: %s", w.Body)
	}

	plain := newEnv(t, nil)
	if w := plain.do(t, "GET", "/api/v1/me", plain.alice, ""); w.Body.String() != "{\"user\":\"alice\"}\n" {
		t.Fatalf("me without the switch: %q", w.Body)
	}
	if w := plain.do(t, "POST", "/api/v1/users/alice/sync", plain.alice, ""); w.Code != 202 {
		t.Fatalf("sync without the switch: %d %s", w.Code, w.Body)
	}
}
