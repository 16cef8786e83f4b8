// Package topics is the catalogue of every topic cratestream reads or
// writes: name, partitions, cleanup policy, retention, key encoding and value
// type. `cratestream topics create` provisions it and `topics check` reports
// drift. The .v1 names and schemas freeze when the first wave of issues has
// landed; after that a breaking change is a new topic.
package topics

import (
	"time"

	"github.com/cratestream/cratestream/internal/stream"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// UserPartitions is the partition count of every topic keyed by user: they
// are joined (co-partitioned) by the processors.
const UserPartitions = 12

const day = 24 * time.Hour

// Interactions is interactions.v1: what collectors did (want/collect
// add/remove, ratings), keyed by user id.
func Interactions() stream.Topic[string, *pb.Interaction] {
	return stream.NewTopic(stream.TopicSpec{
		Name:        "interactions.v1",
		Partitions:  UserPartitions,
		Cleanup:     stream.CleanupDelete,
		Retention:   90 * day,
		KeyEncoding: "user id, UTF-8",
		ValueType:   "cratestream.v1.Interaction",
		Description: "collector events: wantlist/collection add/remove, ratings",
	}, stream.Codec[string](stream.StringCodec{}), stream.Codec[*pb.Interaction](stream.Proto[pb.Interaction]()))
}

// UserProfiles is user-profiles.v1: the state of each collector, the
// changelog of the profile processor's store.
func UserProfiles() stream.Topic[string, *pb.UserProfile] {
	return stream.NewTopic(stream.TopicSpec{
		Name:        "user-profiles.v1",
		Partitions:  UserPartitions,
		Cleanup:     stream.CleanupCompact,
		KeyEncoding: "user id, UTF-8",
		ValueType:   "cratestream.v1.UserProfile",
		Description: "per-user wantlist, collection and ratings (changelog of [profile])",
	}, stream.Codec[string](stream.StringCodec{}), stream.Codec[*pb.UserProfile](stream.Proto[pb.UserProfile]()))
}

// DeadLetters is dlq.v1: records no processor could handle, with the reason,
// keyed by the original key bytes.
func DeadLetters() stream.Topic[[]byte, *pb.DeadLetter] {
	return stream.NewTopic(stream.TopicSpec{
		Name:        "dlq.v1",
		Partitions:  3,
		Cleanup:     stream.CleanupDelete,
		Retention:   30 * day,
		KeyEncoding: "the original record's key bytes",
		ValueType:   "cratestream.v1.DeadLetter",
		Description: "undecodable or invalid records: original bytes, position, reason, processor",
	}, stream.Codec[[]byte](stream.BytesCodec{}), stream.Codec[*pb.DeadLetter](stream.Proto[pb.DeadLetter]()))
}

// Catalogue is every topic, in the order of the README's table.
func Catalogue() []stream.TopicSpec {
	return []stream.TopicSpec{
		Interactions().TopicSpec,
		UserProfiles().TopicSpec,
		DeadLetters().TopicSpec,
	}
}
