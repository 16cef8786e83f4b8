package stream

import (
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// PartitionFor must agree with the partitioner every producer uses.
func TestPartitionForMatchesKgo(t *testing.T) {
	part := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	for _, n := range []int{1, 3, 6, 12, 100} {
		for i := 0; i < 2000; i++ {
			key := []byte("user" + strconv.Itoa(i*7919))
			want := part.Partition(&kgo.Record{Key: key}, n)
			if got := PartitionFor(key, int32(n)); int(got) != want {
				t.Fatalf("key %s, %d partitions: PartitionFor = %d, kgo = %d", key, n, got, want)
			}
		}
	}
}
