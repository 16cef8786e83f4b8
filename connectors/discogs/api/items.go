package api

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"time"

	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// Item is one wantlist or collection entry, reduced to what sync uses.
type Item struct {
	ReleaseID int64
	// InstanceID tells copies of the same release apart in a collection
	// (a user may own two); always 0 in a wantlist.
	InstanceID int64
	FolderID   int64
	MasterID   int64
	// Rating is the user's 1-5 rating, 0 when unrated.
	Rating int
	// DateAdded is zero when Discogs sent none or an unparsable one.
	DateAdded time.Time
	Title     string
	Year      int
	Artists   []string
}

// list is one of the two lists this package reads.
type list int

const (
	listWants list = iota
	listCollection
)

func (l list) String() string {
	if l == listCollection {
		return "collection"
	}
	return "wantlist"
}

// The wire format of a page. Wants and collection pages differ only in the
// name of the array and in collection-only fields.
type wirePage struct {
	Pagination wirePagination `json:"pagination"`
	Wants      []wireItem     `json:"wants"`
	Releases   []wireItem     `json:"releases"`
}

type wirePagination struct {
	Page    int `json:"page"`
	Pages   int `json:"pages"`
	PerPage int `json:"per_page"`
	Items   int `json:"items"`
	URLs    struct {
		Next string `json:"next"`
	} `json:"urls"`
}

type wireItem struct {
	ID         int64  `json:"id"`
	InstanceID int64  `json:"instance_id"`
	FolderID   int64  `json:"folder_id"`
	Rating     int    `json:"rating"`
	DateAdded  string `json:"date_added"`
	Basic      struct {
		ID       int64  `json:"id"`
		MasterID int64  `json:"master_id"`
		Title    string `json:"title"`
		Year     int    `json:"year"`
		Artists  []struct {
			Name string `json:"name"`
		} `json:"artists"`
	} `json:"basic_information"`
}

func (w *wireItem) item() Item {
	it := Item{
		ReleaseID:  w.Basic.ID,
		InstanceID: w.InstanceID,
		FolderID:   w.FolderID,
		MasterID:   w.Basic.MasterID,
		Rating:     w.Rating,
		Title:      w.Basic.Title,
		Year:       w.Basic.Year,
	}
	if it.ReleaseID <= 0 {
		it.ReleaseID = w.ID
	}
	if t, err := time.Parse(time.RFC3339, w.DateAdded); err == nil {
		it.DateAdded = t
	}
	for _, a := range w.Basic.Artists {
		it.Artists = append(it.Artists, a.Name)
	}
	return it
}

// interactions maps an item of list l to the events that describe it:
// WANT_ADD for a want; COLLECT_ADD, plus RATE when rated, for a copy in the
// collection. It returns nil when the item has no usable release id or
// date_added (the profile processor would reject such events).
//
// Event time is date_added: Discogs keeps no time for anything else, so a
// re-sync of an unchanged profile yields byte-identical events, which the
// profile processor applies once.
func interactions(username string, l list, it Item) []*pb.Interaction {
	ms := it.DateAdded.UnixMilli()
	if it.ReleaseID <= 0 || it.DateAdded.IsZero() || ms <= 0 {
		return nil
	}
	ev := func(kind pb.InteractionKind, rating int32) *pb.Interaction {
		return &pb.Interaction{
			EventId:     eventID(username, kind, it.ReleaseID, it.InstanceID, ms, rating),
			EventTimeMs: ms,
			UserId:      username,
			ReleaseId:   it.ReleaseID,
			Kind:        kind,
			Rating:      rating,
			Source:      pb.InteractionSource_INTERACTION_SOURCE_DISCOGS_API,
		}
	}
	if l == listWants {
		return []*pb.Interaction{ev(pb.InteractionKind_INTERACTION_KIND_WANT_ADD, 0)}
	}
	out := []*pb.Interaction{ev(pb.InteractionKind_INTERACTION_KIND_COLLECT_ADD, 0)}
	if it.Rating > 0 && it.Rating <= 5 {
		out = append(out, ev(pb.InteractionKind_INTERACTION_KIND_RATE, int32(it.Rating)))
	}
	return out
}

// eventID is a deterministic id: a hash of (username, kind, release,
// instance, event time, rating). The rating is part of a RATE's identity:
// without it a changed rating would reuse the old event's id and time and
// be taken for a redelivery. The time is the parsed instant, so the same
// date_added written with another offset gives the same id.
func eventID(username string, kind pb.InteractionKind, release, instance, ms int64, rating int32) string {
	h := sha256.New()
	var n [8]byte
	// Length-prefix the only free-form field so that no two tuples hash
	// the same input.
	binary.BigEndian.PutUint64(n[:], uint64(len(username)))
	h.Write([]byte("discogs-api/v1"))
	h.Write(n[:])
	h.Write([]byte(username))
	for _, v := range []int64{int64(kind), release, instance, ms, int64(rating)} {
		binary.BigEndian.PutUint64(n[:], uint64(v))
		h.Write(n[:])
	}
	return "discogs-" + hex.EncodeToString(h.Sum(nil)[:16])
}
