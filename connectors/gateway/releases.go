package gateway

import (
	"errors"
	"regexp"
	"strings"

	"github.com/cratestream/cratestream/internal/stream"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

// ReleaseInfo is what the API shows of a release next to its id.
type ReleaseInfo struct {
	Title string
	// Artists is the credited artists as one display string
	// ("Simon & Garfunkel", "Daft Punk Feat. Romanthony").
	Artists string
	// Year is 0 when unknown.
	Year int32
}

// ReleaseLookup finds a release's title, artists and year: a
// *stream.GlobalTable over ReleaseTopic() (Run follows releases.v1 in one).
type ReleaseLookup interface {
	Get(release int64) (ReleaseInfo, bool)
}

// ReleaseMeta are the optional fields of a release in the API's JSON: absent
// when the gateway does not know the release.
type ReleaseMeta struct {
	Title   string `json:"title,omitempty"`
	Artists string `json:"artists,omitempty"`
	Year    int32  `json:"year,omitempty"`
}

func releaseMeta(l ReleaseLookup, id int64) ReleaseMeta {
	if l == nil {
		return ReleaseMeta{}
	}
	ri, ok := l.Get(id)
	if !ok {
		return ReleaseMeta{}
	}
	return ReleaseMeta(ri)
}

// ReleaseTopic is releases.v1 decoded to ReleaseInfo only, so that a table
// of the whole catalogue keeps three fields per release, not the full
// protobuf.
func ReleaseTopic() stream.Topic[int64, ReleaseInfo] {
	t := topics.Releases()
	return stream.NewTopic(t.TopicSpec, t.Key, stream.Codec[ReleaseInfo](releaseInfoCodec{}))
}

type releaseInfoCodec struct{}

var releaseProto = stream.Proto[pb.Release]()

func (releaseInfoCodec) Append(dst []byte, v ReleaseInfo) ([]byte, error) {
	return nil, errors.New("gateway: release info is read-only")
}

func (releaseInfoCodec) Decode(b []byte) (ReleaseInfo, error) {
	r, err := releaseProto.Decode(b)
	if err != nil {
		return ReleaseInfo{}, err
	}
	return ReleaseInfoOf(r), nil
}

// ReleaseInfoOf is the display information of a release.
func ReleaseInfoOf(r *pb.Release) ReleaseInfo {
	return ReleaseInfo{Title: strings.TrimSpace(r.Title), Artists: ArtistsDisplay(r.Artists), Year: r.Year}
}

// disambiguation is the " (2)" Discogs appends to the names of artists
// sharing a name.
var disambiguation = regexp.MustCompile(`\s+\(\d+\)$`)

// ArtistsDisplay joins artist credits the way Discogs shows them: the
// name variation when the release credits one, without the " (2)"
// disambiguation, each followed by its join ("," reads ", ", others
// " & ", " Feat. ").
func ArtistsDisplay(credits []*pb.ArtistCredit) string {
	var b strings.Builder
	join := ""
	for _, a := range credits {
		name := strings.TrimSpace(a.Anv)
		if name == "" {
			name = disambiguation.ReplaceAllString(strings.TrimSpace(a.Name), "")
		}
		if name == "" {
			continue
		}
		if b.Len() > 0 {
			switch join {
			case "":
				b.WriteString(", ")
			case ",":
				b.WriteString(join + " ")
			default:
				b.WriteString(" " + join + " ")
			}
		}
		b.WriteString(name)
		join = strings.TrimSpace(a.Join)
	}
	return b.String()
}
