package recommend

import (
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/internal/stream"
	"github.com/cratestream/cratestream/internal/stream/streamtest"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

// PublishForTest hands s a model version as item-factors.v1 and models.v1
// would, without Kafka: its factors, then its manifest (Train's order); s
// serves it once it is complete, as it would a version read from Kafka.
func (s *ModelStore) PublishForTest(t testing.TB, man *pb.ModelManifest, factors map[int64][]float32) {
	t.Helper()
	record := func(topic string, m proto.Message) *kgo.Record {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return &kgo.Record{Topic: topic, Value: b}
	}
	for id, f := range factors {
		s.apply(record(topics.ItemFactors().Name, &pb.ItemFactors{EventId: man.Version + ":" + strconv.FormatInt(id, 10),
			ReleaseId: id, ModelVersion: man.Version, Factors: f}))
	}
	s.apply(record(topics.Models().Name, man))
}

// PutReleaseForTest puts r into g's table as if read from releases.v1:
// through the table's codec, which keeps its genres and styles.
func (g *Genres) PutReleaseForTest(t testing.TB, tt *streamtest.Tester, r *pb.Release) {
	t.Helper()
	rt := topics.Releases()
	topic := stream.NewTopic(rt.TopicSpec, rt.Key, stream.Codec[Tags](tagsCodec{g}))
	b, err := proto.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := topic.Value.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	streamtest.Global(tt, g.Table, topic, r.ReleaseId, tags, false)
}
