package stream

import (
	"context"
	"fmt"
	"sort"
)

// prepareTopics checks that the stateful inputs are co-partitioned and
// creates the internal topics (changelogs, repartition topics) with the
// same partition count.
func (r *Runner) prepareTopics(ctx context.Context) error {
	var names []string
	for t := range r.inputs {
		names = append(names, t)
	}
	for _, s := range r.p.stores {
		if !s.ownChangelog() {
			names = append(names, s.changelogTopic())
		}
	}
	internal := make(map[string]bool)
	for _, s := range r.p.internal {
		internal[s.Name] = true
	}
	sort.Strings(names)
	details, err := r.adm.ListTopics(ctx, names...)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	counts := make(map[string]int32) // joined: stateful inputs and shared changelogs
	var sources int32                // largest stateless (repartition source) input
	var missing []string
	for _, n := range names {
		d, ok := details[n]
		if !ok || d.Err != nil {
			if !internal[n] {
				missing = append(missing, n)
			}
			continue
		}
		if in, isInput := r.inputs[n]; isInput && in.stateless() {
			sources = max(sources, int32(len(d.Partitions)))
			continue
		}
		counts[n] = int32(len(d.Partitions))
	}
	if len(missing) > 0 {
		return &configError{fmt.Errorf("processor %s: input topics missing: %v (run: cratestream topics create)", r.p.name, missing)}
	}
	if err := checkCoPartitioned(r.p.name, counts); err != nil {
		return &configError{err}
	}
	// Tasks follow the joined inputs; a processor fed only through its
	// repartition topics takes the partition count of their sources.
	var n int32
	for _, c := range counts {
		n = c
	}
	if n == 0 {
		n = sources
	}
	if n == 0 {
		return &configError{fmt.Errorf("processor %s: cannot determine the partition count of its inputs", r.p.name)}
	}
	r.tmu.Lock()
	r.partitions = n
	r.tmu.Unlock()

	var specs []TopicSpec
	for _, s := range r.p.stores {
		if s.ownChangelog() {
			specs = append(specs, TopicSpec{Name: s.changelogTopic(), Partitions: n, Cleanup: CleanupCompact})
		}
	}
	for _, s := range r.p.internal {
		s.Partitions = n
		specs = append(specs, s)
	}
	if _, err := CreateTopics(ctx, r.adm, specs, r.cfg.ReplicationFactor); err != nil {
		return err
	}
	if err := CheckTopics(ctx, r.adm, specs); err != nil {
		return &configError{fmt.Errorf("processor %s internal topics: %w", r.p.name, err)}
	}
	return nil
}

// CoPartitionError says which joined inputs have different partition counts.
type CoPartitionError struct {
	Processor string
	Counts    map[string]int32
}

func (e *CoPartitionError) Error() string {
	names := make([]string, 0, len(e.Counts))
	for n := range e.Counts {
		names = append(names, n)
	}
	sort.Strings(names)
	s := "processor " + e.Processor + ": inputs are not co-partitioned (every joined input and changelog needs the same partition count):"
	for _, n := range names {
		s += fmt.Sprintf(" %s=%d", n, e.Counts[n])
	}
	return s
}

func checkCoPartitioned(proc string, counts map[string]int32) error {
	var first int32 = -1
	for _, c := range counts {
		if first == -1 {
			first = c
		} else if c != first {
			return &CoPartitionError{Processor: proc, Counts: counts}
		}
	}
	return nil
}
