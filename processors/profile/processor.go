package profile

import (
	"github.com/cratestream/cratestream/internal/stream"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

// Name is the processor's name and consumer group.
const Name = "profile"

// StoreName is the profile store, readable by key through the runner.
const StoreName = "profiles"

// Options configure the processor.
type Options struct {
	Mode stream.Mode
	// OnDiskCacheBytes > 0 keeps profiles in an on-disk store with that
	// block cache (for more users than fit in memory).
	OnDiskCacheBytes int64
}

// New returns the profile processor and its store. The store's changelog is
// user-profiles.v1 itself: every profile change is the processor's output,
// written once.
func New(o Options) (*stream.Processor, *stream.Table[string, *pb.UserProfile]) {
	p := stream.NewProcessor(Name, o.Mode)
	profiles := topics.UserProfiles()
	opts := []stream.TableOption{stream.WithChangelog(profiles.Name)}
	if o.OnDiskCacheBytes > 0 {
		opts = append(opts, stream.OnDisk(o.OnDiskCacheBytes))
	}
	store := stream.NewTable(p, StoreName, profiles.Key, profiles.Value, opts...)
	p.Output(profiles.TopicSpec)
	stream.Consume(p, topics.Interactions(), func(c *stream.Ctx, user string, ev *pb.Interaction) error {
		if err := Validate(user, ev); err != nil {
			return err
		}
		prof, ok, err := store.Get(c, user)
		if err != nil {
			return err
		}
		if !ok {
			prof = &pb.UserProfile{UserId: user}
		}
		if !Apply(prof, ev) {
			return nil // duplicate or superseded: nothing to write
		}
		return store.Put(c, user, prof)
	})
	return p, store
}
