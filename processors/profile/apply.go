// Package profile is the profile processor: interactions.v1 → per-user
// profile state (wantlist, collection, ratings) in a changelog-backed store
// whose changelog is user-profiles.v1.
//
// Ordering and duplicates. Each fact of a (user, release) pair — wanted,
// collected, rating — is a last-writer-wins register ordered by the clock
// (event time, FNV-1a hash of the event id):
//
//   - a later event wins whatever the delivery order, so an out-of-order
//     "add" that happened before a delivered "remove" stays removed;
//   - a redelivered event has the clock it already wrote and changes
//     nothing: it is applied once, without keeping a set of seen ids;
//   - events at the same millisecond are ordered by the hash, the same way
//     on every replay.
//
// A removed item stays in the profile as a tombstone (its clock) so that a
// late, older add cannot resurrect it. The version counts the interactions
// that changed the profile.
package profile

import (
	"hash/fnv"
	"sort"

	"github.com/cratestream/cratestream/internal/stream"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// MaxRating is the highest rating Discogs allows.
const MaxRating = 5

// EventHash is the tie-breaker of two events at the same millisecond.
func EventHash(eventID string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(eventID))
	return h.Sum64()
}

// Validate checks an interaction received under key; the error marks bad
// input (it goes to the dead-letter topic).
func Validate(key string, ev *pb.Interaction) error {
	switch {
	case ev == nil:
		return stream.Invalidf("interaction is a tombstone (nil value)")
	case ev.EventId == "":
		return stream.Invalidf("interaction without event_id")
	case ev.UserId == "":
		return stream.Invalidf("interaction %s without user_id", ev.EventId)
	case ev.UserId != key:
		return stream.Invalidf("interaction %s for user %q arrived under key %q (partitioning would be wrong)", ev.EventId, ev.UserId, key)
	case ev.ReleaseId <= 0:
		return stream.Invalidf("interaction %s: release_id %d is not positive", ev.EventId, ev.ReleaseId)
	case ev.EventTimeMs <= 0:
		return stream.Invalidf("interaction %s: event_time_ms %d is not positive", ev.EventId, ev.EventTimeMs)
	}
	switch ev.Kind {
	case pb.InteractionKind_INTERACTION_KIND_WANT_ADD, pb.InteractionKind_INTERACTION_KIND_WANT_REMOVE,
		pb.InteractionKind_INTERACTION_KIND_COLLECT_ADD, pb.InteractionKind_INTERACTION_KIND_COLLECT_REMOVE:
	case pb.InteractionKind_INTERACTION_KIND_RATE:
		if ev.Rating < 0 || ev.Rating > MaxRating {
			return stream.Invalidf("interaction %s: rating %d outside 0..%d", ev.EventId, ev.Rating, MaxRating)
		}
	default:
		return stream.Invalidf("interaction %s: unknown kind %d", ev.EventId, int32(ev.Kind))
	}
	return nil
}

// later reports whether clock (t, h) is after (curT, curH).
func later(t int64, h uint64, curT int64, curH uint64) bool {
	return t > curT || (t == curT && h > curH)
}

// Apply applies a validated interaction to prof (which may be new) and
// reports whether it changed anything.
func Apply(prof *pb.UserProfile, ev *pb.Interaction) bool {
	items := prof.Items
	i := sort.Search(len(items), func(i int) bool { return items[i].ReleaseId >= ev.ReleaseId })
	var it *pb.ProfileItem
	if i < len(items) && items[i].ReleaseId == ev.ReleaseId {
		it = items[i]
	} else {
		it = &pb.ProfileItem{ReleaseId: ev.ReleaseId}
	}
	h := EventHash(ev.EventId)
	t := ev.EventTimeMs
	changed := false
	switch ev.Kind {
	case pb.InteractionKind_INTERACTION_KIND_WANT_ADD, pb.InteractionKind_INTERACTION_KIND_WANT_REMOVE:
		if later(t, h, it.WantTimeMs, it.WantEventHash) {
			it.Wanted = ev.Kind == pb.InteractionKind_INTERACTION_KIND_WANT_ADD
			it.WantTimeMs, it.WantEventHash = t, h
			changed = true
		}
	case pb.InteractionKind_INTERACTION_KIND_COLLECT_ADD, pb.InteractionKind_INTERACTION_KIND_COLLECT_REMOVE:
		if later(t, h, it.CollectTimeMs, it.CollectEventHash) {
			it.Collected = ev.Kind == pb.InteractionKind_INTERACTION_KIND_COLLECT_ADD
			it.CollectTimeMs, it.CollectEventHash = t, h
			changed = true
		}
	case pb.InteractionKind_INTERACTION_KIND_RATE:
		if later(t, h, it.RatingTimeMs, it.RatingEventHash) {
			it.Rating = ev.Rating
			it.RatingTimeMs, it.RatingEventHash = t, h
			changed = true
		}
	}
	if !changed {
		return false
	}
	if i >= len(items) || items[i] != it {
		items = append(items, nil)
		copy(items[i+1:], items[i:])
		items[i] = it
		prof.Items = items
	}
	prof.UserId = ev.UserId
	prof.Version++
	prof.EventId, prof.EventTimeMs = ev.EventId, ev.EventTimeMs
	return true
}

// Wantlist returns the release ids the user currently wants.
func Wantlist(prof *pb.UserProfile) []int64 {
	var out []int64
	for _, it := range prof.GetItems() {
		if it.Wanted {
			out = append(out, it.ReleaseId)
		}
	}
	return out
}

// Collection returns the release ids the user currently owns.
func Collection(prof *pb.UserProfile) []int64 {
	var out []int64
	for _, it := range prof.GetItems() {
		if it.Collected {
			out = append(out, it.ReleaseId)
		}
	}
	return out
}

// Ratings returns the user's non-zero ratings by release id.
func Ratings(prof *pb.UserProfile) map[int64]int32 {
	out := make(map[int64]int32)
	for _, it := range prof.GetItems() {
		if it.Rating > 0 {
			out[it.ReleaseId] = it.Rating
		}
	}
	return out
}
