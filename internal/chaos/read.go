package chaos

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// tail reads a topic from its start as a read_committed consumer would and
// hands every committed data record, in offset order per partition, to fn.
// It keeps its position, so repeated catchUp calls read only what is new.
//
// It fetches with raw Fetch requests decoded by kgo.ProcessFetchPartition
// (the client's own read_committed filtering) rather than a consumer,
// because it needs its exact position: a transaction aborted without an
// abort marker (kfake aborts the transactions a crash left open that way)
// is skipped by a consumer without a trace, so a position tracked from the
// records it returns would never reach the last stable offset.
type tail struct {
	topic   string
	cl      *kgo.Client
	adm     *kadm.Client
	next    map[int32]int64 // next offset per partition
	leaders map[int32]int32
	dec     kgo.Decompressor
	fn      func(*kgo.Record)
}

func newTail(brokers []string, topic string, fn func(*kgo.Record)) (*tail, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		// Fetch v12 is the last to name topics (v13 uses topic ids).
		kgo.MaxVersions(kversion.V3_0_0()),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }))
	if err != nil {
		return nil, err
	}
	return &tail{topic: topic, cl: cl, adm: kadm.NewClient(cl), next: map[int32]int64{}, leaders: map[int32]int32{},
		dec: kgo.DefaultDecompressor(), fn: fn}, nil
}

func (t *tail) close() { t.cl.Close() }

func (t *tail) refreshLeaders(ctx context.Context) error {
	md, err := t.adm.Metadata(ctx, t.topic)
	if err != nil {
		return fmt.Errorf("metadata of %s: %w", t.topic, err)
	}
	td, ok := md.Topics[t.topic]
	if !ok || td.Err != nil {
		return fmt.Errorf("metadata of %s: %v", t.topic, td.Err)
	}
	for p, pd := range td.Partitions {
		t.leaders[p] = pd.Leader
	}
	return nil
}

// fetch reads partition p once from its position.
func (t *tail) fetch(ctx context.Context, p int32) error {
	leader, ok := t.leaders[p]
	if !ok || leader < 0 {
		if err := t.refreshLeaders(ctx); err != nil {
			return err
		}
		if leader, ok = t.leaders[p]; !ok || leader < 0 {
			return fmt.Errorf("%s/%d has no leader", t.topic, p)
		}
	}
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 100
	req.MinBytes = 1
	req.MaxBytes = 32 << 20
	req.IsolationLevel = 1 // read_committed
	req.SessionEpoch = -1  // no fetch session
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = t.topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = p
	rp.FetchOffset = t.next[p]
	rp.PartitionMaxBytes = 16 << 20
	rp.CurrentLeaderEpoch = -1
	rp.LogStartOffset = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	raw, err := t.cl.Broker(int(leader)).Request(ctx, req)
	if err != nil {
		delete(t.leaders, p)
		return fmt.Errorf("fetch %s/%d: %w", t.topic, p, err)
	}
	resp := raw.(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return fmt.Errorf("fetch %s/%d: %w", t.topic, p, err)
	}
	for _, topic := range resp.Topics {
		for i := range topic.Partitions {
			part := &topic.Partitions[i]
			if part.Partition != p {
				continue
			}
			if err := kerr.ErrorForCode(part.ErrorCode); err != nil {
				delete(t.leaders, p) // NOT_LEADER and friends: look again
				return fmt.Errorf("fetch %s/%d@%d: %w", t.topic, p, t.next[p], err)
			}
			fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
				KeepControlRecords: true, Offset: t.next[p], IsolationLevel: kgo.ReadCommitted(),
				Topic: t.topic, Partition: p,
			}, part, t.dec, nil)
			if fp.Err != nil {
				return fmt.Errorf("fetch %s/%d@%d: %w", t.topic, p, t.next[p], fp.Err)
			}
			for _, r := range fp.Records {
				if !r.Attrs.IsControl() {
					t.fn(r)
				}
			}
			if next > t.next[p] {
				t.next[p] = next
			}
		}
	}
	return nil
}

// Ends are a topic's offsets per partition: the last stable offset (what a
// read_committed reader can read) and the high watermark.
type Ends struct {
	LSO, HWM map[int32]int64
}

// OpenRecords is the number of records behind the last stable offsets:
// records of transactions still open (0 when the topic is stable).
func (e Ends) OpenRecords() int64 {
	var n int64
	for p, h := range e.HWM {
		n += h - e.LSO[p]
	}
	return n
}

// OpenPartitions lists the partitions with an open transaction.
func (e Ends) OpenPartitions() []int32 {
	var out []int32
	for p, h := range e.HWM {
		if h > e.LSO[p] {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// TopicEnds lists a topic's last stable offsets and high watermarks.
func TopicEnds(ctx context.Context, adm *kadm.Client, topic string) (Ends, error) {
	lso, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		return Ends{}, fmt.Errorf("list last stable offsets of %s: %w", topic, err)
	}
	hwm, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return Ends{}, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	e := Ends{LSO: map[int32]int64{}, HWM: map[int32]int64{}}
	var perr error
	lso.Each(func(o kadm.ListedOffset) {
		if o.Err != nil && perr == nil {
			perr = fmt.Errorf("%s/%d: %w", o.Topic, o.Partition, o.Err)
		}
		e.LSO[o.Partition] = o.Offset
	})
	hwm.Each(func(o kadm.ListedOffset) {
		if o.Err != nil && perr == nil {
			perr = fmt.Errorf("%s/%d: %w", o.Topic, o.Partition, o.Err)
		}
		e.HWM[o.Partition] = o.Offset
	})
	if perr != nil {
		return Ends{}, perr
	}
	if len(e.LSO) == 0 {
		return Ends{}, fmt.Errorf("topic %s has no partitions (does it exist?)", topic)
	}
	return e, nil
}

// catchUp reads until every partition's position reaches its last stable
// offset as listed at the call, and returns those ends. Fetch errors are
// retried (a broker restarting) until ctx ends.
func (t *tail) catchUp(ctx context.Context) (Ends, error) {
	ends, err := TopicEnds(ctx, t.adm, t.topic)
	if err != nil {
		return Ends{}, err
	}
	var last error // the latest fetch error, for the message if we give up
	for {
		behind, failed := false, false
		for p, o := range ends.LSO {
			if t.next[p] >= o {
				continue
			}
			behind = true
			if err := t.fetch(ctx, p); err != nil {
				last, failed = err, true
			}
		}
		if !behind {
			return ends, nil
		}
		if err := ctx.Err(); err != nil {
			return Ends{}, fmt.Errorf("reading %s: at %v of last stable offsets %v (last fetch error: %v): %w", t.topic, t.next, ends.LSO, last, err)
		}
		if failed {
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// ReadCommitted reads a topic from its start up to its last stable offsets
// as a read_committed consumer: the committed data records (no control
// records), in offset order per partition, and the ends it read to.
func ReadCommitted(ctx context.Context, brokers []string, topic string) ([]*kgo.Record, Ends, error) {
	var out []*kgo.Record
	t, err := newTail(brokers, topic, func(r *kgo.Record) { out = append(out, r) })
	if err != nil {
		return nil, Ends{}, err
	}
	defer t.close()
	ends, err := t.catchUp(ctx)
	return out, ends, err
}
