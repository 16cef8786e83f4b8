package stream

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Cleanup is a topic's cleanup.policy.
type Cleanup string

const (
	CleanupDelete  Cleanup = "delete"
	CleanupCompact Cleanup = "compact"
)

// TopicSpec is how a topic is provisioned and what it carries.
type TopicSpec struct {
	Name       string
	Partitions int32
	Cleanup    Cleanup
	// Retention is retention.ms: 0 keeps the broker default, negative is
	// infinite.
	Retention time.Duration
	// KeyEncoding documents the key bytes ("user id, UTF-8").
	KeyEncoding string
	// ValueType is the protobuf message of the value ("cratestream.v1.Interaction").
	ValueType string
	// Description is one line for the topic table.
	Description string
}

// Configs returns the topic configs provisioning sets.
func (s TopicSpec) Configs() map[string]*string {
	c := map[string]*string{"cleanup.policy": kadm.StringPtr(string(s.Cleanup))}
	switch {
	case s.Retention < 0:
		c["retention.ms"] = kadm.StringPtr("-1")
	case s.Retention > 0:
		c["retention.ms"] = kadm.StringPtr(strconv.FormatInt(s.Retention.Milliseconds(), 10))
	}
	return c
}

// Topic is a typed topic: its spec and the codecs of its keys and values.
type Topic[K, V any] struct {
	TopicSpec
	Key   Codec[K]
	Value Codec[V]
}

// NewTopic returns a typed topic.
func NewTopic[K, V any](spec TopicSpec, key Codec[K], value Codec[V]) Topic[K, V] {
	return Topic[K, V]{TopicSpec: spec, Key: key, Value: value}
}

// Drift is one difference between a topic's spec and the cluster.
type Drift struct {
	Topic string
	What  string
}

func (d Drift) String() string { return d.Topic + ": " + d.What }

// DriftError lists every difference found by CheckTopics.
type DriftError struct{ Drifts []Drift }

func (e *DriftError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d topic(s) differ from the catalogue:", len(e.Drifts))
	for _, d := range e.Drifts {
		b.WriteString("\n  ")
		b.WriteString(d.String())
	}
	return b.String()
}

// CreateTopics creates the topics of specs that do not exist yet and returns
// the names it created. Existing topics are left alone: run CheckTopics to
// find drift.
func CreateTopics(ctx context.Context, adm *kadm.Client, specs []TopicSpec, replication int16) ([]string, error) {
	var created []string
	for _, s := range specs {
		if s.Partitions <= 0 {
			return created, fmt.Errorf("topic %s: partitions must be positive, got %d", s.Name, s.Partitions)
		}
		resp, err := adm.CreateTopic(ctx, s.Partitions, replication, s.Configs(), s.Name)
		switch {
		case errors.Is(err, kerr.TopicAlreadyExists) || errors.Is(resp.Err, kerr.TopicAlreadyExists):
			continue
		case err != nil:
			return created, fmt.Errorf("create topic %s: %w", s.Name, err)
		}
		created = append(created, s.Name)
	}
	return created, nil
}

// CheckTopics compares the cluster with specs: a missing topic, a different
// partition count or a different cleanup policy is drift. It returns a
// *DriftError listing all of them, or nil.
func CheckTopics(ctx context.Context, adm *kadm.Client, specs []TopicSpec) error {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	details, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	var present []string
	for _, n := range names {
		if d, ok := details[n]; ok && d.Err == nil {
			present = append(present, n)
		}
	}
	var configs kadm.ResourceConfigs
	if len(present) > 0 {
		configs, err = adm.DescribeTopicConfigs(ctx, present...)
		if err != nil {
			return fmt.Errorf("describe topic configs: %w", err)
		}
	}
	var drifts []Drift
	for _, s := range specs {
		d, ok := details[s.Name]
		if !ok || d.Err != nil {
			drifts = append(drifts, Drift{s.Name, "missing (run: cratestream topics create)"})
			continue
		}
		if n := int32(len(d.Partitions)); n != s.Partitions {
			drifts = append(drifts, Drift{s.Name, fmt.Sprintf("has %d partitions, catalogue says %d", n, s.Partitions)})
		}
		rc, err := configs.On(s.Name, nil)
		if err != nil {
			drifts = append(drifts, Drift{s.Name, fmt.Sprintf("configs unreadable: %v", err)})
			continue
		}
		policy := string(CleanupDelete) // Kafka's default when unset
		for _, c := range rc.Configs {
			if c.Key == "cleanup.policy" && c.Value != nil && *c.Value != "" {
				policy = *c.Value
			}
		}
		if policy != string(s.Cleanup) {
			drifts = append(drifts, Drift{s.Name, fmt.Sprintf("cleanup.policy is %q, catalogue says %q", policy, s.Cleanup)})
		}
	}
	if len(drifts) == 0 {
		return nil
	}
	sort.Slice(drifts, func(i, j int) bool { return drifts[i].Topic < drifts[j].Topic })
	return &DriftError{Drifts: drifts}
}
