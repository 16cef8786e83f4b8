package chaos

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/connectors/redis"
	"github.com/cratestream/cratestream/internal/stream"
	"github.com/cratestream/cratestream/processors/profile"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

// Checked processors.
const (
	KindCounter     = "counter"
	KindCartbuilder = "cartbuilder"
	KindProfile     = "profile"
)

// CheckOptions configure a check: what `cratestream chaos check` runs, in
// its own process, as a read_committed consumer of the inputs and outputs.
type CheckOptions struct {
	Kind    string
	Brokers []string
	Mode    stream.Mode
	// Produced is how many input records the driver had acknowledged; the
	// counter's are sequence numbers 0..Produced-1. Negative: unknown.
	Produced int64
	// Wait bounds how long the check waits until every input has its
	// output and no transaction is open on the outputs.
	Wait time.Duration
	// Redis, for the cart builder: also check each request's final status
	// there (what the frontend polls).
	Redis string
}

// Verdict is a check's result, printed as one JSON object.
type Verdict struct {
	Kind   string `json:"kind"`
	Mode   string `json:"mode"`
	Inputs int64  `json:"inputs"` // input records read
	// InputLost are acknowledged inputs missing from the input topic and
	// InputDuplicated inputs present more than once: faults of the
	// broker (or the producer), not of the processor.
	InputLost       int64 `json:"input_lost"`
	InputDuplicated int64 `json:"input_duplicated"`
	Outputs         int64 `json:"outputs"` // output records read
	Keys            int   `json:"keys"`
	// Lost are inputs without any output (counter: input records;
	// cartbuilder: request ids; profile: users whose final profile is not
	// the fold of their interactions).
	Lost int64 `json:"lost"`
	// Duplicated are outputs beyond one per input (counter, cartbuilder)
	// or profile records that do not advance their user's version.
	Duplicated int64 `json:"duplicated"`
	// Wrong are outputs whose content is wrong: a count that is not the
	// number of the key's inputs so far (exactly-once) or lower than that
	// (at-least-once: state went back), a cart result with an error, an
	// output for an input that does not exist.
	Wrong int64 `json:"wrong"`
	// CountGaps (counter, at-least-once) are counts 1..n of a key that no
	// output carries: allowed (the first output of a record applied twice
	// may be lost with the crash), reported.
	CountGaps int64 `json:"count_gaps,omitempty"`
	// Complete: every input has its output. Stable: no transaction is
	// open on the inputs or outputs, so nothing more can appear.
	Complete bool `json:"complete"`
	Stable   bool `json:"stable"`
	// OpenPartitions are output partitions with an open transaction when
	// the check ended.
	OpenPartitions []int32 `json:"open_partitions,omitempty"`
	// Problems are the first problems found, each with its position.
	Problems []string `json:"problems,omitempty"`
}

// OK reports whether the verdict upholds the mode's guarantee: no loss
// anywhere, and in exactly-once mode no duplicate and no wrong output. An
// input lost or duplicated by the cluster (an acknowledged write of the
// idempotent producer) fails it too: the run could not prove anything.
func (v *Verdict) OK() bool {
	if !v.Complete || !v.Stable || v.Lost > 0 || v.Wrong > 0 || v.InputLost > 0 || v.InputDuplicated > 0 {
		return false
	}
	if v.Mode == stream.ExactlyOnce.String() && v.Duplicated > 0 {
		return false
	}
	return true
}

const maxProblems = 20

func (v *Verdict) problem(format string, args ...any) {
	if len(v.Problems) < maxProblems {
		v.Problems = append(v.Problems, fmt.Sprintf(format, args...))
	}
}

// checker accumulates records of the inputs and outputs and judges them.
type checker interface {
	input(*kgo.Record)
	output(*kgo.Record)
	verdict(final bool) *Verdict
	topics() (in []string, out string)
}

// Check reads the inputs and outputs of o.Kind until every input has its
// output and nothing more can appear (or o.Wait passed) and returns the
// verdict.
func Check(ctx context.Context, o CheckOptions) (*Verdict, error) {
	var c checker
	switch o.Kind {
	case KindCounter:
		c = &counterCheck{mode: o.Mode, produced: o.Produced, in: map[string][]inRec{}, out: map[string][]outRec{}}
	case KindCartbuilder:
		c = &cartCheck{mode: o.Mode, produced: o.Produced, reqs: map[string]*cartReq{}, res: map[string][]cartRes{}}
	case KindProfile:
		c = &profileCheck{mode: o.Mode, produced: o.Produced, fold: map[string]*pb.UserProfile{}, last: map[string]*pb.UserProfile{}}
	default:
		return nil, fmt.Errorf("unknown check kind %q (want %s, %s or %s)", o.Kind, KindCounter, KindCartbuilder, KindProfile)
	}
	ins, outTopic := c.topics()
	var tails []*tail
	defer func() {
		for _, t := range tails {
			t.close()
		}
	}()
	for _, topic := range ins {
		t, err := newTail(o.Brokers, topic, c.input)
		if err != nil {
			return nil, err
		}
		tails = append(tails, t)
	}
	out, err := newTail(o.Brokers, outTopic, c.output)
	if err != nil {
		return nil, err
	}
	tails = append(tails, out)

	deadline := time.Now().Add(o.Wait)
	for {
		stable := true
		var outEnds Ends
		for _, t := range tails {
			rctx, cancel := context.WithDeadline(ctx, deadline.Add(30*time.Second))
			ends, err := t.catchUp(rctx)
			cancel()
			if err != nil {
				return nil, err
			}
			if ends.OpenRecords() > 0 {
				stable = false
			}
			if t == out {
				outEnds = ends
			}
		}
		v := c.verdict(false)
		v.Stable = stable
		last := time.Now().After(deadline) || ctx.Err() != nil
		if (v.Complete && stable) || last {
			if v.Complete && stable {
				// Nothing more can appear: judge what only a final
				// look can (statuses in Redis).
				fv := c.verdict(true)
				fv.Stable = true
				v = fv
				if cc, ok := c.(*cartCheck); ok && o.Redis != "" {
					if err := cc.checkStatuses(ctx, o.Redis, v); err != nil {
						return nil, err
					}
				}
			}
			v.OpenPartitions = outEnds.OpenPartitions()
			if !v.Complete {
				v.problem("incomplete after %s: %d inputs without output", o.Wait, v.Lost)
			}
			if !stable {
				v.problem("transactions still open after %s on %s partitions %v", o.Wait, outTopic, v.OpenPartitions)
			}
			return v, nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// --- counter ---

type inRec struct {
	seq       int64
	partition int32
	offset    int64
}

type outRec struct {
	CounterOutput
	partition int32
	offset    int64
	bad       bool // undecodable
}

type counterCheck struct {
	mode     stream.Mode
	produced int64
	in       map[string][]inRec
	out      map[string][]outRec
	bad      []string // undecodable records
	inputs   int64
	outputs  int64
}

func (c *counterCheck) topics() ([]string, string) { return []string{CounterIn.Name}, CounterOut.Name }

func (c *counterCheck) input(r *kgo.Record) {
	c.inputs++
	seq, err := strconv.ParseInt(string(r.Value), 10, 64)
	if err != nil {
		c.bad = append(c.bad, fmt.Sprintf("input %s/%d@%d: %q is not a sequence number", r.Topic, r.Partition, r.Offset, r.Value))
		return
	}
	k := string(r.Key)
	c.in[k] = append(c.in[k], inRec{seq, r.Partition, r.Offset})
}

func (c *counterCheck) output(r *kgo.Record) {
	c.outputs++
	o, err := counterOutputCodec{}.Decode(r.Value)
	k := string(r.Key)
	c.out[k] = append(c.out[k], outRec{CounterOutput: o, partition: r.Partition, offset: r.Offset, bad: err != nil})
}

func (c *counterCheck) verdict(bool) *Verdict {
	v := &Verdict{Kind: KindCounter, Mode: c.mode.String(), Inputs: c.inputs, Outputs: c.outputs, Keys: len(c.in)}
	for _, b := range c.bad {
		v.Wrong++
		v.problem("%s", b)
	}
	// Inputs: every acknowledged sequence number once.
	if c.produced >= 0 {
		seen := make([]uint8, c.produced)
		for k, ins := range c.in {
			for _, in := range ins {
				if in.seq < 0 || in.seq >= c.produced {
					v.InputDuplicated++ // not produced by the driver at all
					v.problem("input %s/%d@%d key %s: sequence number %d was never produced", CounterIn.Name, in.partition, in.offset, k, in.seq)
					continue
				}
				if seen[in.seq] == 1 {
					v.InputDuplicated++
					v.problem("input %s/%d@%d key %s: sequence number %d is in the topic twice", CounterIn.Name, in.partition, in.offset, k, in.seq)
				}
				seen[in.seq] = 1
			}
		}
		for seq, s := range seen {
			if s == 0 {
				v.InputLost++
				if v.InputLost <= 5 {
					v.problem("input: acknowledged sequence number %d is missing from %s (read_committed)", seq, CounterIn.Name)
				}
			}
		}
	}
	keys := make([]string, 0, len(c.in))
	for k := range c.in {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		c.judgeKey(v, k, c.in[k], c.out[k])
	}
	for k, outs := range c.out {
		if _, ok := c.in[k]; !ok {
			v.Wrong += int64(len(outs))
			v.problem("output %s/%d@%d: key %q has no input", CounterOut.Name, outs[0].partition, outs[0].offset, k)
		}
	}
	v.Complete = v.Lost == 0
	return v
}

// judgeKey compares the outputs of one key with its inputs.
func (c *counterCheck) judgeKey(v *Verdict, k string, ins []inRec, outs []outRec) {
	pos := make(map[int64]int, len(ins)) // seq -> 1-based position among the key's inputs
	for i, in := range ins {
		pos[in.seq] = i + 1
	}
	seen := make(map[int64]int, len(ins))
	counts := make(map[int64]bool, len(outs))
	firstWrong := true
	for _, o := range outs {
		if o.bad {
			v.Wrong++
			v.problem("output %s/%d@%d key %s: undecodable", CounterOut.Name, o.partition, o.offset, k)
			continue
		}
		i, ok := pos[o.Seq]
		if !ok {
			v.Wrong++
			v.problem("output %s/%d@%d key %s: (count %d, seq %d) answers no input of the key", CounterOut.Name, o.partition, o.offset, k, o.Count, o.Seq)
			continue
		}
		seen[o.Seq]++
		if seen[o.Seq] > 1 {
			v.Duplicated++
			if c.mode == stream.ExactlyOnce {
				v.problem("output %s/%d@%d key %s: seq %d answered %d times (count %d)", CounterOut.Name, o.partition, o.offset, k, o.Seq, seen[o.Seq], o.Count)
			}
		}
		counts[o.Count] = true
		// Exactly-once: the i-th input's output carries count i. At
		// least once: at least i (a replay counts again; a count below
		// i means state went back: an applied record was forgotten).
		wrong := o.Count != int64(i)
		if c.mode == stream.AtLeastOnce {
			wrong = o.Count < int64(i)
		}
		if wrong {
			v.Wrong++
			if firstWrong {
				firstWrong = false
				v.problem("output %s/%d@%d key %s: count %d for its input #%d (seq %d at %s/%d@%d)", CounterOut.Name, o.partition, o.offset,
					k, o.Count, i, o.Seq, CounterIn.Name, ins[i-1].partition, ins[i-1].offset)
			}
		}
	}
	// Exactly-once output is also in input order: the i-th output answers
	// the i-th input.
	if c.mode == stream.ExactlyOnce && len(outs) == len(ins) {
		for i, o := range outs {
			if !o.bad && o.Seq != ins[i].seq {
				v.Wrong++
				v.problem("output %s/%d@%d key %s: output #%d answers seq %d, want %d (out of order)", CounterOut.Name, o.partition, o.offset, k, i+1, o.Seq, ins[i].seq)
				break
			}
		}
	}
	lostHere := 0
	for _, in := range ins {
		if seen[in.seq] == 0 {
			v.Lost++
			lostHere++
			if lostHere == 1 {
				v.problem("input %s/%d@%d key %s seq %d: no output", CounterIn.Name, in.partition, in.offset, k, in.seq)
			}
		}
	}
	if c.mode == stream.AtLeastOnce {
		for n := int64(1); n <= int64(len(ins)); n++ {
			if !counts[n] {
				v.CountGaps++
			}
		}
	}
}

// --- cart builder ---

type cartReq struct {
	user      string
	records   int
	partition int32
	offset    int64
}

type cartRes struct {
	user      string
	err       string
	carts     int
	partition int32
	offset    int64
}

type cartCheck struct {
	mode     stream.Mode
	produced int64
	reqs     map[string]*cartReq
	res      map[string][]cartRes
	inputs   int64
	outputs  int64
	bad      []string
}

func (c *cartCheck) topics() ([]string, string) {
	return []string{topics.CartRequests().Name}, topics.Carts().Name
}

func (c *cartCheck) input(r *kgo.Record) {
	c.inputs++
	var req pb.CartRequest
	if err := proto.Unmarshal(r.Value, &req); err != nil || req.RequestId == "" {
		c.bad = append(c.bad, fmt.Sprintf("input %s/%d@%d: not a cart request", r.Topic, r.Partition, r.Offset))
		return
	}
	if q, ok := c.reqs[req.RequestId]; ok {
		q.records++
		return
	}
	c.reqs[req.RequestId] = &cartReq{user: string(r.Key), records: 1, partition: r.Partition, offset: r.Offset}
}

func (c *cartCheck) output(r *kgo.Record) {
	c.outputs++
	var res pb.CartResult
	if err := proto.Unmarshal(r.Value, &res); err != nil {
		c.bad = append(c.bad, fmt.Sprintf("output %s/%d@%d: not a CartResult: %v", r.Topic, r.Partition, r.Offset, err))
		return
	}
	c.res[res.RequestId] = append(c.res[res.RequestId], cartRes{user: string(r.Key), err: res.Error, carts: len(res.Carts), partition: r.Partition, offset: r.Offset})
}

func (c *cartCheck) verdict(bool) *Verdict {
	v := &Verdict{Kind: KindCartbuilder, Mode: c.mode.String(), Inputs: c.inputs, Outputs: c.outputs, Keys: len(c.reqs)}
	if c.produced >= 0 && c.inputs != c.produced {
		if c.inputs < c.produced {
			v.InputLost = c.produced - c.inputs
		} else {
			v.InputDuplicated = c.inputs - c.produced
		}
		v.problem("input: %d cart requests in %s, %d acknowledged", c.inputs, topics.CartRequests().Name, c.produced)
	}
	for _, b := range c.bad {
		v.Wrong++
		v.problem("%s", b)
	}
	ids := make([]string, 0, len(c.reqs))
	for id := range c.reqs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		q := c.reqs[id]
		rs := c.res[id]
		if len(rs) == 0 {
			v.Lost++
			v.problem("request %s (%s/%d@%d, user %s): no CartResult", id, topics.CartRequests().Name, q.partition, q.offset, q.user)
			continue
		}
		if len(rs) > 1 {
			v.Duplicated += int64(len(rs) - 1)
			v.problem("request %s: %d CartResults, in %s/%d at offsets %d and %d", id, len(rs), topics.Carts().Name, rs[0].partition, rs[0].offset, rs[1].offset)
		}
		for _, r := range rs {
			switch {
			case r.user != q.user:
				v.Wrong++
				v.problem("request %s of user %s: result keyed %q at %s/%d@%d", id, q.user, r.user, topics.Carts().Name, r.partition, r.offset)
			case r.err != "" || r.carts == 0:
				// Every request of the suite's fixture has carts.
				v.Wrong++
				v.problem("request %s: result without carts (%q) at %s/%d@%d", id, r.err, topics.Carts().Name, r.partition, r.offset)
			}
		}
	}
	for id, rs := range c.res {
		if _, ok := c.reqs[id]; !ok {
			v.Wrong += int64(len(rs))
			v.problem("result for request %s, which was never requested, at %s/%d@%d", id, topics.Carts().Name, rs[0].partition, rs[0].offset)
		}
	}
	v.Complete = v.Lost == 0
	return v
}

// checkStatuses checks the final status of every request in Redis: what
// the frontend shows must be the finished one, whatever crashed meanwhile.
func (c *cartCheck) checkStatuses(ctx context.Context, addr string, v *Verdict) error {
	rds, err := redis.Open(ctx, redis.Options{Addr: addr})
	if err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	defer rds.Close()
	for id := range c.reqs {
		st, ok, err := rds.Status(ctx, id)
		if err != nil {
			return fmt.Errorf("status of %s: %w", id, err)
		}
		if !ok || !st.Finished || st.Stage != "done" {
			v.Wrong++
			v.problem("request %s: status in Redis %v, want finished at stage done", id, st)
		}
	}
	return nil
}

// --- profile ---

type profileCheck struct {
	mode     stream.Mode
	produced int64
	fold     map[string]*pb.UserProfile // the fold of each user's valid interactions
	last     map[string]*pb.UserProfile // the latest profile record per user
	invalid  int64
	inputs   int64
	outputs  int64
	dups     int64
	problems []string
}

func (c *profileCheck) topics() ([]string, string) {
	return []string{topics.Interactions().Name}, topics.UserProfiles().Name
}

func (c *profileCheck) input(r *kgo.Record) {
	c.inputs++
	var ev pb.Interaction
	err := proto.Unmarshal(r.Value, &ev)
	if err == nil {
		err = profile.Validate(string(r.Key), &ev)
	}
	if err != nil {
		c.invalid++ // the processor dead-letters it
		return
	}
	p := c.fold[ev.UserId]
	if p == nil {
		p = &pb.UserProfile{UserId: ev.UserId}
		c.fold[ev.UserId] = p
	}
	profile.Apply(p, &ev)
}

func (c *profileCheck) output(r *kgo.Record) {
	c.outputs++
	user := string(r.Key)
	if r.Value == nil {
		c.last[user] = nil
		return
	}
	var p pb.UserProfile
	if err := proto.Unmarshal(r.Value, &p); err != nil {
		c.problems = append(c.problems, fmt.Sprintf("output %s/%d@%d: not a UserProfile: %v", r.Topic, r.Partition, r.Offset, err))
		return
	}
	// Every record of a user's profile advances its version: a record
	// that does not comes from re-applying interactions to state that
	// already had them.
	if prev := c.last[user]; prev != nil && p.Version <= prev.Version {
		c.dups++
		if len(c.problems) < maxProblems {
			c.problems = append(c.problems, fmt.Sprintf("output %s/%d@%d user %s: version %d after version %d", r.Topic, r.Partition, r.Offset, user, p.Version, prev.Version))
		}
	}
	c.last[user] = &p
}

func (c *profileCheck) verdict(bool) *Verdict {
	v := &Verdict{Kind: KindProfile, Mode: c.mode.String(), Inputs: c.inputs, Outputs: c.outputs, Keys: len(c.fold), Duplicated: c.dups}
	if c.produced >= 0 && c.inputs != c.produced {
		if c.inputs < c.produced {
			v.InputLost = c.produced - c.inputs
		} else {
			v.InputDuplicated = c.inputs - c.produced
		}
		v.problem("input: %d interactions in %s, %d acknowledged", c.inputs, topics.Interactions().Name, c.produced)
	}
	for _, p := range c.problems {
		v.problem("%s", p)
	}
	users := make([]string, 0, len(c.fold))
	for u := range c.fold {
		users = append(users, u)
	}
	sort.Strings(users)
	for _, u := range users {
		want, got := c.fold[u], c.last[u]
		if want.Version == 0 {
			continue // nothing applied: no profile record expected
		}
		if got == nil || !proto.Equal(want, got) {
			v.Lost++
			gv := int64(-1)
			if got != nil {
				gv = got.Version
			}
			v.problem("user %s: latest profile (version %d) is not the fold of its interactions (version %d)", u, gv, want.Version)
		}
	}
	for u := range c.last {
		if _, ok := c.fold[u]; !ok {
			v.Wrong++
			v.problem("profile of user %s, who has no valid interaction", u)
		}
	}
	v.Complete = v.Lost == 0
	return v
}
