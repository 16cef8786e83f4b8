package demodata

import "testing"

func TestReleases(t *testing.T) {
	rs, err := Releases()
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) < 900 {
		t.Fatalf("%d releases, want about 1000", len(rs))
	}
	seen := map[int64]bool{}
	titled := 0
	for i, r := range rs {
		if r.ReleaseId <= 0 || seen[r.ReleaseId] {
			t.Fatalf("release %d: bad or repeated id %d", i, r.ReleaseId)
		}
		seen[r.ReleaseId] = true
		if r.Title != "" {
			titled++
		}
		if i > 0 && len(rs[i-1].Genres) > 0 && len(r.Genres) > 0 && rs[i-1].Genres[0] > r.Genres[0] {
			t.Fatalf("not ordered by genre at %d: %q after %q", i, r.Genres[0], rs[i-1].Genres[0])
		}
	}
	if titled < len(rs)*9/10 {
		t.Fatalf("only %d of %d releases have a title", titled, len(rs))
	}
	if g := Genres(rs); g < 5 {
		t.Fatalf("%d genres", g)
	}
}
