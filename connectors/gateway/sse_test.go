package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

type sseEvent struct {
	id, typ, data string
}

// sseStream reads a Server-Sent Events response.
type sseStream struct {
	t    *testing.T
	resp *http.Response
	rd   *bufio.Reader
	evs  chan sseEvent
}

// openSSE connects to url with token and, if set, Last-Event-ID.
func openSSE(t *testing.T, ctx context.Context, url, token, lastID string) *sseStream {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	s := &sseStream{t: t, resp: resp, rd: bufio.NewReader(resp.Body), evs: make(chan sseEvent, 100)}
	t.Cleanup(func() { resp.Body.Close() })
	go func() {
		defer close(s.evs)
		var ev sseEvent
		for {
			line, err := s.rd.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case line == "":
				if ev.typ != "" {
					s.evs <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.typ = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	return s
}

// next returns the next event; ok is false when the stream ended.
func (s *sseStream) next(timeout time.Duration) (sseEvent, bool) {
	s.t.Helper()
	select {
	case ev, ok := <-s.evs:
		return ev, ok
	case <-time.After(timeout):
		s.t.Fatal("no SSE event in time")
		return sseEvent{}, false
	}
}

// rest reads to the end of the stream.
func (s *sseStream) rest(timeout time.Duration) []sseEvent {
	s.t.Helper()
	var out []sseEvent
	for {
		ev, ok := s.next(timeout)
		if !ok {
			return out
		}
		out = append(out, ev)
	}
}

func types(evs []sseEvent) string {
	var out []string
	for _, e := range evs {
		out = append(out, e.typ)
	}
	return strings.Join(out, ",")
}

func statusRecord(t *testing.T, part int32, off int64, st *pb.RequestStatus) *kgo.Record {
	b, err := proto.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Topic: topics.RequestStatus().Name, Partition: part, Offset: off, Key: []byte(st.RequestId), Value: b}
}

func resultRecord(t *testing.T, part int32, off int64, res *pb.CartResult) *kgo.Record {
	b, err := proto.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Topic: topics.Carts().Name, Partition: part, Offset: off, Key: []byte(res.UserId), Value: b}
}

// TestSSEFromHub drives the hub by hand: live delivery, the end event,
// resumption from every event id without duplicates, re-read records
// ignored, and a bounded backlog that keeps the result.
func TestSSEFromHub(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.KeepAlive = 50 * time.Millisecond; c.BacklogPerRequest = 3 })
	srv := httptest.NewServer(e.srv)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	hub := e.srv.Hub()
	id := "cart-1"
	apply := func(r *kgo.Record) {
		if err := hub.Apply(r); err != nil {
			t.Fatal(err)
		}
	}
	apply(statusRecord(t, 4, 100, &pb.RequestStatus{RequestId: id, UserId: "alice", Kind: pb.RequestKind_REQUEST_KIND_CART, Stage: "queued", EventTimeMs: 1}))
	url := srv.URL + "/api/v1/requests/" + id + "/events"
	s := openSSE(t, ctx, url, e.alice, "")
	first, _ := s.next(5 * time.Second)
	if first.typ != "status" || first.id != "request-status.v1:4:100" || !strings.Contains(first.data, `"stage":"queued"`) {
		t.Fatalf("first event %+v", first)
	}
	// Live: a status arrives while connected.
	apply(statusRecord(t, 4, 107, &pb.RequestStatus{RequestId: id, UserId: "alice", Kind: pb.RequestKind_REQUEST_KIND_CART, Stage: "scraping", Done: 3, Total: 10, EventTimeMs: 2}))
	second, _ := s.next(5 * time.Second)
	if second.typ != "status" || second.id != "request-status.v1:4:107" || !strings.Contains(second.data, `"done":3`) {
		t.Fatalf("second event %+v", second)
	}
	// A re-read record changes nothing.
	apply(statusRecord(t, 4, 100, &pb.RequestStatus{RequestId: id, UserId: "alice", Stage: "queued"}))
	// Another request's events are not in this stream.
	apply(statusRecord(t, 4, 108, &pb.RequestStatus{RequestId: "cart-2", UserId: "alice", Stage: "queued"}))
	apply(resultRecord(t, 9, 55, &pb.CartResult{RequestId: id, UserId: "alice", Carts: []*pb.Cart{{Rank: 1}}}))
	third, _ := s.next(5 * time.Second)
	if third.typ != "result" || third.id != "carts.v1:9:55,request-status.v1:4:107" {
		t.Fatalf("third event %+v", third)
	}
	var rv ResultView
	if err := json.Unmarshal([]byte(third.data), &rv); err != nil || rv.RequestID != id || len(rv.Carts) != 1 {
		t.Fatalf("result %s: %v", third.data, err)
	}
	if rest := s.rest(5 * time.Second); types(rest) != "end" {
		t.Fatalf("after the result: %v", rest)
	}
	// Resume from each event: exactly what followed it.
	for _, tt := range []struct {
		last, want string
	}{
		{"", "status,status,result,end"},
		{first.id, "status,result,end"},
		{second.id, "result,end"},
		{third.id, "end"},
		{"request-status.v1:4:107", "result,end"}, // a cursor of another gateway instance, same meaning
	} {
		got := openSSE(t, ctx, url, e.alice, tt.last).rest(5 * time.Second)
		if types(got) != tt.want {
			t.Errorf("resume from %q: %s, want %s", tt.last, types(got), tt.want)
		}
	}
	// The ?last_event_id= form, for clients that cannot set headers.
	if got := openSSE(t, ctx, url+"?last_event_id="+second.id, e.alice, "").rest(5 * time.Second); types(got) != "result,end" {
		t.Errorf("query resume: %s", types(got))
	}
	// Malformed cursors are refused.
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+e.alice)
	req.Header.Set("Last-Event-ID", "garbage")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 400 {
		t.Fatalf("garbage cursor: %v %v", resp, err)
	}
	// A status after the result (another topic) still reaches a resumer,
	// and the bounded backlog drops old statuses, not the result.
	apply(statusRecord(t, 4, 110, &pb.RequestStatus{RequestId: id, UserId: "alice", Kind: pb.RequestKind_REQUEST_KIND_CART, Stage: "done", Finished: true, EventTimeMs: 3}))
	if got := openSSE(t, ctx, url, e.alice, third.id).rest(5 * time.Second); types(got) != "status,end" {
		t.Errorf("late status: %s", types(got))
	}
	if got := openSSE(t, ctx, url, e.alice, "").rest(5 * time.Second); types(got) != "status,result,status,end" {
		t.Errorf("bounded backlog: %s", types(got))
	}
	// A sync request ends with its finished status.
	apply(statusRecord(t, 1, 5, &pb.RequestStatus{RequestId: "sync-1", UserId: "alice", Kind: pb.RequestKind_REQUEST_KIND_SYNC, Stage: "fetching"}))
	ss := openSSE(t, ctx, srv.URL+"/api/v1/requests/sync-1/events", e.alice, "")
	if ev, _ := ss.next(5 * time.Second); ev.typ != "status" {
		t.Fatalf("sync: %+v", ev)
	}
	// Keep-alives flow while nothing happens; the stream stays open.
	time.Sleep(150 * time.Millisecond)
	apply(statusRecord(t, 1, 6, &pb.RequestStatus{RequestId: "sync-1", UserId: "alice", Kind: pb.RequestKind_REQUEST_KIND_SYNC, Stage: "done", Finished: true}))
	if got := ss.rest(5 * time.Second); types(got) != "status,end" {
		t.Fatalf("sync end: %s", types(got))
	}
	// A request known only from the status store gets its stored status
	// (without an id) and waits.
	_ = e.status.SetStatus(ctx, &pb.RequestStatus{RequestId: "cart-9", UserId: "alice", Kind: pb.RequestKind_REQUEST_KIND_CART, Stage: "scraping"})
	sn := openSSE(t, ctx, srv.URL+"/api/v1/requests/cart-9/events", e.alice, "")
	if ev, _ := sn.next(5 * time.Second); ev.typ != "status" || ev.id != "" || !strings.Contains(ev.data, "scraping") {
		t.Fatalf("stored status: %+v", ev)
	}
}

func TestHubEviction(t *testing.T) {
	h := NewHub(2, 10)
	for i, id := range []string{"a", "b", "c"} {
		b, _ := proto.Marshal(&pb.RequestStatus{RequestId: id, UserId: "u"})
		_ = h.Apply(&kgo.Record{Topic: topics.RequestStatus().Name, Offset: int64(i), Value: b})
		if id == "a" {
			sub, _ := h.Subscribe("a", "")
			defer sub.Close()
		}
	}
	// "a" is watched, so the least recently updated unwatched one went.
	if _, ok := h.Lookup("a"); !ok {
		t.Error("a watched request was evicted")
	}
	if _, ok := h.Lookup("b"); ok {
		t.Error("b should have been evicted")
	}
	if _, ok := h.Lookup("c"); !ok {
		t.Error("c was evicted")
	}
	if err := h.Apply(&kgo.Record{Topic: topics.Carts().Name, Value: []byte{0xff}}); err == nil {
		t.Error("undecodable record: want an error")
	}
}

// Cursors name Kafka topics: one naming anything else is refused, since it
// came back different after a round trip ("a:1:2, b:1:2" decoded to topic
// " b", which encoded and trimmed became "b"; found by FuzzLastEventID).
func TestCursorTopicNames(t *testing.T) {
	for _, id := range []string{"0 :0:0", "a:1:2, b:1:2", "carts.v1:1:2,ca rts:1:2", ":1:2", "a/b:1:2", strings.Repeat("t", 250) + ":1:2"} {
		if cur, err := decodeCursor(id); err == nil {
			t.Errorf("%q decoded to %v", id, cur)
		}
	}
	for _, id := range []string{"carts.v1:7:55,request-status.v1:3:120", " a_B-9.x:0:0 ", strings.Repeat("t", 249) + ":1:2"} {
		cur, err := decodeCursor(id)
		if err != nil || len(encodeCursor(cur)) != len(strings.TrimSpace(id)) {
			t.Errorf("%q: %v, %v", id, cur, err)
		}
	}
}
