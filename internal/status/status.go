// Package status reports the stages of tracked requests (profile syncs,
// cart requests) to both places readers look: Redis, which the frontend
// polls and subscribes to, and request-status.v1, the durable history.
package status

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/connectors/redis"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

// Reporter writes request statuses. Either side may be nil (a CLI run
// without Redis, a test without Kafka).
type Reporter struct {
	Redis    *redis.Store
	Producer *kgo.Client
	Now      func() time.Time
}

// Report records st: Redis synchronously (the frontend must see it at
// once), Kafka asynchronously (flushed with the producer).
func (r *Reporter) Report(ctx context.Context, st *pb.RequestStatus) error {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	if st.EventTimeMs == 0 {
		st.EventTimeMs = now().UnixMilli()
	}
	if st.EventId == "" {
		st.EventId = fmt.Sprintf("status:%s:%s:%d:%d", st.RequestId, st.Stage, st.Done, st.EventTimeMs)
	}
	if r.Redis != nil {
		if err := r.Redis.SetStatus(ctx, st); err != nil {
			return err
		}
	}
	if r.Producer != nil {
		b, err := proto.Marshal(st)
		if err != nil {
			return err
		}
		r.Producer.Produce(ctx, &kgo.Record{Topic: topics.RequestStatus().Name, Key: []byte(st.RequestId), Value: b}, nil)
	}
	return nil
}
