package gateway

import (
	"bytes"
	"container/list"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

// The hub bridges request-status.v1 and carts.v1 to HTTP: it keeps, per
// request, the latest status, the result and a bounded backlog of events,
// and wakes the request's SSE subscribers.
//
// Event ids are cursors: "<topic>:<partition>:<offset>" of the last record
// of each topic-partition the request's events came from, up to and
// including this event, joined by ","
// ("carts.v1:7:55,request-status.v1:3:120"). A request's statuses are all
// in one partition of request-status.v1 (keyed by request id) and its
// result in one partition of carts.v1 (keyed by user), so a cursor says
// exactly which events a client has seen: resuming from Last-Event-ID sends
// the rest and nothing twice, across gateway restarts too (the bridge
// re-reads a lookback window on start).

type tp struct {
	topic     string
	partition int32
}

// Event is one SSE event of a request.
type Event struct {
	// ID is the cursor after this event.
	ID string
	// Type is "status" or "result".
	Type string
	// Data is the JSON payload (a status or a cart result view).
	Data []byte

	at     tp
	offset int64
}

type reqState struct {
	id, user string
	kind     pb.RequestKind
	events   []Event
	pos      map[tp]int64
	status   *pb.RequestStatus
	result   []byte
	// done: the request's final event arrived (a cart's result, a sync's
	// finished status).
	done bool
	subs map[chan struct{}]struct{}
	elem *list.Element
}

// Hub holds the recent requests' events.
type Hub struct {
	mu         sync.Mutex
	reqs       map[string]*reqState
	lru        *list.List // of request ids, most recently updated first
	maxReqs    int
	maxBacklog int
	// releases, when set, adds titles to the cart results.
	releases ReleaseLookup
}

// NewHub returns a hub remembering up to maxReqs requests with up to
// maxBacklog events each.
func NewHub(maxReqs, maxBacklog int) *Hub {
	return &Hub{reqs: make(map[string]*reqState), lru: list.New(), maxReqs: maxReqs, maxBacklog: maxBacklog}
}

// state returns the request's state, creating it. h.mu is held.
func (h *Hub) state(id string) *reqState {
	st := h.reqs[id]
	if st == nil {
		st = &reqState{id: id, pos: make(map[tp]int64), subs: make(map[chan struct{}]struct{})}
		st.elem = h.lru.PushFront(id)
		h.reqs[id] = st
		h.evict()
	} else {
		h.lru.MoveToFront(st.elem)
	}
	return st
}

// evict forgets the least recently updated requests nobody is watching.
func (h *Hub) evict() {
	for e := h.lru.Back(); e != nil && len(h.reqs) > h.maxReqs; {
		prev := e.Prev()
		id := e.Value.(string)
		if st := h.reqs[id]; len(st.subs) == 0 {
			h.lru.Remove(e)
			delete(h.reqs, id)
		}
		e = prev
	}
}

// Apply takes one record of request-status.v1 or carts.v1. Records of
// other topics and records seen before are ignored; undecodable ones are
// an error (the bridge logs and skips them).
func (h *Hub) Apply(r *kgo.Record) error {
	if r.Value == nil {
		return nil
	}
	var (
		id, user, typ string
		kind          pb.RequestKind
		data          []byte
		status        *pb.RequestStatus
		result        bool
	)
	switch r.Topic {
	case topics.RequestStatus().Name:
		var st pb.RequestStatus
		if err := proto.Unmarshal(r.Value, &st); err != nil {
			return fmt.Errorf("%s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
		}
		id, user, kind, typ, status = st.RequestId, st.UserId, st.Kind, "status", &st
		data = marshalView(statusView(&st))
	case topics.Carts().Name:
		var res pb.CartResult
		if err := proto.Unmarshal(r.Value, &res); err != nil {
			return fmt.Errorf("%s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
		}
		id, user, kind, typ, result = res.RequestId, res.UserId, pb.RequestKind_REQUEST_KIND_CART, "result", true
		data = marshalView(resultView(&res, h.releases))
	default:
		return nil
	}
	if id == "" {
		return fmt.Errorf("%s/%d@%d: no request id", r.Topic, r.Partition, r.Offset)
	}
	at := tp{r.Topic, r.Partition}
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.state(id)
	if last, ok := st.pos[at]; ok && r.Offset <= last {
		return nil // seen (a re-read)
	}
	st.pos[at] = r.Offset
	if st.user == "" {
		st.user = user
	}
	if kind != pb.RequestKind_REQUEST_KIND_UNSPECIFIED {
		st.kind = kind
	}
	if status != nil {
		if st.status == nil || status.EventTimeMs >= st.status.EventTimeMs {
			st.status = status
		}
		if status.Finished && st.kind != pb.RequestKind_REQUEST_KIND_CART {
			st.done = true
		}
	}
	if result {
		st.result = data
		st.done = true
	}
	st.events = append(st.events, Event{ID: encodeCursor(st.pos), Type: typ, Data: data, at: at, offset: r.Offset})
	if len(st.events) > h.maxBacklog {
		// Drop the oldest status; a result is kept.
		for i, e := range st.events {
			if e.Type != "result" {
				st.events = append(st.events[:i], st.events[i+1:]...)
				break
			}
		}
	}
	for ch := range st.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	return nil
}

// marshalView is the JSON of a view as writeJSON writes it ("&" in titles
// stays "&"), without the trailing newline.
func marshalView(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// Snapshot is what the hub knows of a request.
type Snapshot struct {
	User   string
	Kind   pb.RequestKind
	Status *pb.RequestStatus
	// Result is the cart result view as JSON; nil until it arrives.
	Result []byte
	Done   bool
}

// Lookup returns what the hub knows of request id.
func (h *Hub) Lookup(id string) (Snapshot, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.reqs[id]
	if st == nil || (st.user == "" && len(st.events) == 0) {
		return Snapshot{}, false
	}
	return Snapshot{User: st.user, Kind: st.kind, Status: st.status, Result: st.result, Done: st.done}, true
}

// Subscription follows one request's events.
type Subscription struct {
	h      *Hub
	id     string
	ch     chan struct{}
	cursor map[tp]int64
}

// Subscribe follows request id from cursor lastEventID ("" = from the
// start of the backlog). A malformed cursor is an error.
func (h *Hub) Subscribe(id, lastEventID string) (*Subscription, error) {
	cur, err := decodeCursor(lastEventID)
	if err != nil {
		return nil, err
	}
	s := &Subscription{h: h, id: id, ch: make(chan struct{}, 1), cursor: cur}
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.state(id)
	st.subs[s.ch] = struct{}{}
	return s, nil
}

// C receives when new events may be available.
func (s *Subscription) C() <-chan struct{} { return s.ch }

// Next returns the events not delivered yet, and whether the request is
// over (nothing more will come).
func (s *Subscription) Next() ([]Event, bool) {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	st := s.h.reqs[s.id]
	if st == nil {
		return nil, false
	}
	var out []Event
	for _, e := range st.events {
		if last, ok := s.cursor[e.at]; ok && e.offset <= last {
			continue
		}
		s.cursor[e.at] = e.offset
		out = append(out, e)
	}
	return out, st.done
}

// Close stops the subscription.
func (s *Subscription) Close() {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	if st := s.h.reqs[s.id]; st != nil {
		delete(st.subs, s.ch)
	}
}

func encodeCursor(pos map[tp]int64) string {
	parts := make([]string, 0, len(pos))
	for at, off := range pos {
		parts = append(parts, at.topic+":"+strconv.FormatInt(int64(at.partition), 10)+":"+strconv.FormatInt(off, 10))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// isTopicName reports whether s can name a Kafka topic. A cursor naming
// anything else was not ours, and would not survive being sent back: the
// id is trimmed, so " a:1:2" after a comma came back as "a:1:2".
func isTopicName(s string) bool {
	if s == "" || len(s) > 249 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

func decodeCursor(s string) (map[tp]int64, error) {
	out := make(map[tp]int64)
	s = strings.TrimSpace(s)
	if s == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		f := strings.Split(part, ":")
		if len(f) != 3 || !isTopicName(f[0]) {
			return nil, fmt.Errorf("event id %q: want <topic>:<partition>:<offset>[,...]", s)
		}
		p, err1 := strconv.ParseInt(f[1], 10, 32)
		o, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil || p < 0 || o < 0 {
			return nil, fmt.Errorf("event id %q: want <topic>:<partition>:<offset>[,...]", s)
		}
		out[tp{f[0], int32(p)}] = o
	}
	return out, nil
}

// BridgeConfig configures the consumer feeding a hub.
type BridgeConfig struct {
	Brokers []string
	// Lookback is how far back the bridge starts reading when it starts, so
	// that results and backlogs of recent requests survive a restart.
	// Default 30 minutes.
	Lookback time.Duration
	Opts     []kgo.Opt
	Logger   *slog.Logger
	// Started, when set, is closed once the consumer is created.
	Started chan<- struct{}
}

// Run consumes request-status.v1 and carts.v1 (committed records only, no
// consumer group: every gateway instance sees every request) into the hub
// until ctx ends.
func (h *Hub) Run(ctx context.Context, cfg BridgeConfig) error {
	if cfg.Lookback <= 0 {
		cfg.Lookback = 30 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	start := time.Now().Add(-cfg.Lookback).UnixMilli()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumeTopics(topics.RequestStatus().Name, topics.Carts().Name),
		kgo.ConsumeResetOffset(kgo.NewOffset().AfterMilli(start)),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(250 * time.Millisecond),
		kgo.MetadataMinAge(time.Second),
	}, cfg.Opts...)...)
	if err != nil {
		return fmt.Errorf("gateway bridge: %w", err)
	}
	defer cl.Close()
	if cfg.Started != nil {
		close(cfg.Started)
	}
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(t string, p int32, err error) {
			cfg.Logger.Warn("gateway bridge fetch", "topic", t, "partition", p, "err", err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			if err := h.Apply(r); err != nil {
				cfg.Logger.Warn("gateway bridge: record skipped", "err", err)
			}
		})
	}
}
