package gen

import (
	"testing"
)

func TestInteractionsAreValidAndSkewed(t *testing.T) {
	g := NewInteractions(InteractionsConfig{Seed: 1, Users: 1000, Releases: 3000, Genres: 10})
	counts := make(map[int64]int)
	ids := make(map[string]bool)
	for i := 0; i < 50000; i++ {
		ev := g.Next(1000 + int64(i))
		if ev.ReleaseId < 1 || ev.ReleaseId > 3000 || ev.UserId == "" || ev.Kind == 0 {
			t.Fatalf("bad event %v", ev)
		}
		if ids[ev.EventId] {
			t.Fatalf("duplicate event id %s", ev.EventId)
		}
		ids[ev.EventId] = true
		counts[ev.ReleaseId]++
	}
	// Power law: the most popular releases get far more than the median.
	top, n := 0, 0
	for _, c := range counts {
		top = max(top, c)
		n++
	}
	if top < 20*50000/3000 {
		t.Errorf("most popular release has %d events; not skewed", top)
	}
	// Same seed, same stream.
	a, b := NewInteractions(InteractionsConfig{Seed: 7}), NewInteractions(InteractionsConfig{Seed: 7})
	for i := 0; i < 100; i++ {
		if x, y := a.Next(1), b.Next(1); x.EventId != y.EventId || x.ReleaseId != y.ReleaseId || x.UserId != y.UserId {
			t.Fatal("generator is not deterministic for a seed")
		}
	}
}

func TestUsersStayInTheirGenres(t *testing.T) {
	g := NewInteractions(InteractionsConfig{Seed: 3, Users: 50, Releases: 10000, Genres: 20, UserActivity: 0})
	inFav, total := 0, 0
	for i := 0; i < 20000; i++ {
		ev := g.Next(1)
		var u int
		for j := len("user"); j < len(ev.UserId); j++ {
			u = u*10 + int(ev.UserId[j]-'0')
		}
		a, b := g.favourites(u)
		genre := int((ev.ReleaseId - 1) % 20)
		if genre == a || genre == b {
			inFav++
		}
		total++
	}
	if share := float64(inFav) / float64(total); share < 0.75 {
		t.Errorf("only %.2f of events in the user's favourite genres", share)
	}
}
