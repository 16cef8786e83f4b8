package stream

import "github.com/twmb/franz-go/pkg/kgo"

// PartitionFor returns the partition Kafka's default partitioner (and
// franz-go's default) puts a key in: murmur2 of the key bytes, sign bit
// cleared, modulo the partition count. Lookups and co-partitioned joins rely
// on computing exactly what producers computed.
func PartitionFor(key []byte, partitions int32) int32 {
	return int32((murmur2(key) & 0x7fffffff) % uint32(partitions))
}

// murmur2 is Kafka's Java murmur2 hash (seed 0x9747b28c).
func murmur2(b []byte) uint32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	h := seed ^ uint32(len(b))
	for ; len(b) >= 4; b = b[4:] {
		k := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	switch len(b) {
	case 3:
		h ^= uint32(b[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(b[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(b[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

// taskPartitioner sends a changelog record to the partition of the task
// that wrote it (the record's Partition) and every other record where the
// default partitioner would. A store's keys need not hash to its task:
// timers and broadcast positions live under keys of their own, and a
// changelog record in another partition would be restored into another
// task.
type taskPartitioner struct {
	manual map[string]bool
	def    kgo.Partitioner
}

func newTaskPartitioner(changelogs []string) kgo.Partitioner {
	m := make(map[string]bool, len(changelogs))
	for _, t := range changelogs {
		m[t] = true
	}
	return taskPartitioner{manual: m, def: kgo.UniformBytesPartitioner(64<<10, true, true, nil)}
}

func (p taskPartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if p.manual[topic] {
		return kgo.ManualPartitioner().ForTopic(topic)
	}
	return p.def.ForTopic(topic)
}
