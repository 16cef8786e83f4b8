package profile

import (
	"testing"

	"github.com/cratestream/cratestream/internal/stream"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

func ev(id string, t int64, release int64, kind pb.InteractionKind) *pb.Interaction {
	return &pb.Interaction{EventId: id, EventTimeMs: t, UserId: "u", ReleaseId: release, Kind: kind}
}

const (
	wantAdd    = pb.InteractionKind_INTERACTION_KIND_WANT_ADD
	wantRm     = pb.InteractionKind_INTERACTION_KIND_WANT_REMOVE
	collectAdd = pb.InteractionKind_INTERACTION_KIND_COLLECT_ADD
	collectRm  = pb.InteractionKind_INTERACTION_KIND_COLLECT_REMOVE
	rate       = pb.InteractionKind_INTERACTION_KIND_RATE
)

func TestApply(t *testing.T) {
	rated := func(id string, tm int64, r int32) *pb.Interaction {
		e := ev(id, tm, 1, rate)
		e.Rating = r
		return e
	}
	tests := []struct {
		name       string
		events     []*pb.Interaction
		want       []int64
		collection []int64
		ratings    map[int64]int32
		version    int64
	}{
		{"add", []*pb.Interaction{ev("a", 10, 1, wantAdd)}, []int64{1}, nil, map[int64]int32{}, 1},
		{"add then remove", []*pb.Interaction{ev("a", 10, 1, wantAdd), ev("b", 20, 1, wantRm)}, nil, nil, map[int64]int32{}, 2},
		{"out of order: remove delivered first wins", []*pb.Interaction{ev("b", 20, 1, wantRm), ev("a", 10, 1, wantAdd)}, nil, nil, map[int64]int32{}, 1},
		{"duplicate delivery applied once", []*pb.Interaction{ev("a", 10, 1, wantAdd), ev("a", 10, 1, wantAdd), ev("a", 10, 1, wantAdd)}, []int64{1}, nil, map[int64]int32{}, 1},
		{"redelivery of an older event after a newer one", []*pb.Interaction{ev("a", 10, 1, wantAdd), ev("b", 20, 1, wantRm), ev("a", 10, 1, wantAdd)}, nil, nil, map[int64]int32{}, 2},
		{"facts are independent", []*pb.Interaction{ev("a", 10, 1, wantAdd), ev("b", 5, 1, collectAdd), ev("c", 30, 1, collectRm)}, []int64{1}, nil, map[int64]int32{}, 3},
		{"sorted by release", []*pb.Interaction{ev("a", 1, 30, collectAdd), ev("b", 2, 10, collectAdd), ev("c", 3, 20, collectAdd)}, nil, []int64{10, 20, 30}, map[int64]int32{}, 3},
		{"latest rating wins", []*pb.Interaction{rated("a", 10, 4), rated("b", 5, 2), rated("c", 20, 5)}, nil, nil, map[int64]int32{1: 5}, 2},
		{"rating cleared", []*pb.Interaction{rated("a", 10, 4), rated("b", 11, 0)}, nil, nil, map[int64]int32{}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &pb.UserProfile{}
			for _, e := range tt.events {
				if err := Validate("u", e); err != nil {
					t.Fatal(err)
				}
				Apply(p, e)
			}
			if got := Wantlist(p); !equal(got, tt.want) {
				t.Errorf("wantlist = %v, want %v", got, tt.want)
			}
			if got := Collection(p); !equal(got, tt.collection) {
				t.Errorf("collection = %v, want %v", got, tt.collection)
			}
			if got := Ratings(p); len(got) != len(tt.ratings) || !sameMap(got, tt.ratings) {
				t.Errorf("ratings = %v, want %v", got, tt.ratings)
			}
			if p.Version != tt.version {
				t.Errorf("version = %d, want %d", p.Version, tt.version)
			}
		})
	}
}

// Any delivery order of the same events gives the same profile.
func TestApplyIsOrderIndependent(t *testing.T) {
	events := []*pb.Interaction{
		ev("a", 10, 1, wantAdd), ev("b", 20, 1, wantRm), ev("c", 20, 1, wantAdd), // same ms: hash decides
		ev("d", 15, 2, collectAdd), ev("e", 15, 2, collectRm), ev("f", 40, 3, wantAdd),
	}
	ref := &pb.UserProfile{}
	for _, e := range events {
		Apply(ref, e)
	}
	perm := []int{5, 3, 1, 0, 4, 2}
	for shift := 0; shift < len(perm); shift++ {
		p := &pb.UserProfile{}
		for i := range perm {
			e := events[perm[(i+shift)%len(perm)]]
			Apply(p, e)
			Apply(p, e) // and every event twice
		}
		if !equal(Wantlist(p), Wantlist(ref)) || !equal(Collection(p), Collection(ref)) {
			t.Fatalf("order %d: wantlist %v collection %v, reference %v %v", shift, Wantlist(p), Collection(p), Wantlist(ref), Collection(ref))
		}
	}
}

func TestValidate(t *testing.T) {
	good := func() *pb.Interaction { return ev("a", 10, 1, wantAdd) }
	tests := []struct {
		name string
		key  string
		mod  func(*pb.Interaction) *pb.Interaction
	}{
		{"nil", "u", func(*pb.Interaction) *pb.Interaction { return nil }},
		{"no event id", "u", func(e *pb.Interaction) *pb.Interaction { e.EventId = ""; return e }},
		{"no user", "u", func(e *pb.Interaction) *pb.Interaction { e.UserId = ""; return e }},
		{"key mismatch", "v", func(e *pb.Interaction) *pb.Interaction { return e }},
		{"bad release", "u", func(e *pb.Interaction) *pb.Interaction { e.ReleaseId = -3; return e }},
		{"no time", "u", func(e *pb.Interaction) *pb.Interaction { e.EventTimeMs = 0; return e }},
		{"unknown kind", "u", func(e *pb.Interaction) *pb.Interaction { e.Kind = 42; return e }},
		{"rating too high", "u", func(e *pb.Interaction) *pb.Interaction { e.Kind = rate; e.Rating = 6; return e }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.key, tt.mod(good()))
			if err == nil || !stream.IsInvalid(err) {
				t.Fatalf("Validate = %v, want an invalid-input error", err)
			}
		})
	}
	if err := Validate("u", good()); err != nil {
		t.Fatal(err)
	}
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func sameMap(a, b map[int64]int32) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func BenchmarkApply(b *testing.B) {
	p := &pb.UserProfile{}
	for i := 0; i < 50; i++ {
		Apply(p, ev("x"+string(rune('a'+i)), int64(i+1), int64(i*7+1), collectAdd))
	}
	e := ev("y", 1000, 99, wantAdd)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		e.EventTimeMs++
		Apply(p, e)
	}
}
