package gateway

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/connectors/redis"
	"github.com/cratestream/cratestream/internal/stream"
	"github.com/cratestream/cratestream/internal/testutil"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

// TestKafkaCartsAndEvents runs the gateway against an embedded Kafka
// cluster and a real Redis: POST /api/v1/carts lands on cart-requests.v1,
// and statuses and the result produced into request-status.v1 and carts.v1
// (transactionally, with an aborted transaction in between) come out of the
// SSE stream, resumable with Last-Event-ID; GET shows the finished cart.
func TestKafkaCartsAndEvents(t *testing.T) {
	k := testutil.Kafka(t)
	rdsAddr := testutil.Redis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs()...), kgo.MetadataMinAge(100*time.Millisecond), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := stream.CreateTopics(ctx, kadm.NewClient(cl), topics.Catalogue(), 1); err != nil {
		t.Fatal(err)
	}
	rds, err := redis.Open(ctx, redis.Options{Addr: rdsAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer rds.Close()

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	gw, err := New(Config{Producer: cl, Status: rds, SessionSecret: testSecret, Logger: log, KeepAlive: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	bridgeDone := make(chan error, 1)
	go func() {
		bridgeDone <- gw.Hub().Run(ctx, BridgeConfig{Brokers: k.Addrs(), Logger: log, Started: started,
			Opts: []kgo.Opt{kgo.MetadataMinAge(100 * time.Millisecond)}})
	}()
	<-started
	srv := httptest.NewServer(gw)
	defer srv.Close()
	alice, _ := gw.IssueSession("alice", "test")

	// POST a cart request.
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/carts", strings.NewReader(
		`{"budget": {"amount_minor": 10000, "currency": "EUR"}, "min_media_cond": "VG+", "countries": ["Germany"], "top_n": 5}`))
	req.Header.Set("Authorization", "Bearer "+alice)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var acc Accepted
	_ = json.NewDecoder(resp.Body).Decode(&acc)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || acc.RequestID == "" {
		t.Fatalf("POST: %s %+v", resp.Status, acc)
	}
	id := acc.RequestID

	// It is on cart-requests.v1, keyed by the user.
	rd, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs()...), kgo.ConsumeTopics(topics.CartRequests().Name),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var got *pb.CartRequest
	for got == nil {
		fs := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("no record on cart-requests.v1")
		}
		fs.EachRecord(func(r *kgo.Record) {
			v, err := topics.CartRequests().Value.Decode(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			if string(r.Key) != "alice" {
				t.Errorf("key %q", r.Key)
			}
			if r.Partition != stream.PartitionFor([]byte("alice"), topics.CartRequests().Partitions) {
				t.Errorf("partition %d is not the user's", r.Partition)
			}
			got = v
		})
	}
	if got.RequestId != id || got.UserId != "alice" || got.Criteria.Budget.AmountMinor != 10000 || got.Criteria.TopN != 5 ||
		got.Criteria.MinMedia != pb.MediaGrade_MEDIA_GRADE_VERY_GOOD_PLUS || len(got.Criteria.ShipsFrom) != 1 {
		t.Fatalf("cart request %v", got)
	}

	// The stream starts with the gateway's own "queued" status, bridged
	// back from request-status.v1.
	url := srv.URL + "/api/v1/requests/" + id + "/events"
	s := openSSE(t, ctx, url, alice, "")
	queued, _ := s.next(20 * time.Second)
	if queued.typ != "status" || !strings.HasPrefix(queued.id, "request-status.v1:") || !strings.Contains(queued.data, `"stage":"queued"`) {
		t.Fatalf("first event %+v", queued)
	}

	// The cart builder's part, played by a transactional producer: an
	// aborted status (never delivered), then a status and the result.
	tx, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs()...), kgo.TransactionalID("gateway-test"), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	produce := func(commit bool, recs ...*kgo.Record) {
		t.Helper()
		if err := tx.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			r.Partition, r.Offset = 0, 0
		}
		if err := tx.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := tx.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	st := func(stage string, done int32, finished bool) *kgo.Record {
		return statusRecord(t, 0, 0, &pb.RequestStatus{RequestId: id, UserId: "alice", Kind: pb.RequestKind_REQUEST_KIND_CART,
			Stage: stage, Done: done, Total: 4, Finished: finished, EventTimeMs: time.Now().UnixMilli()})
	}
	produce(false, st("aborted", 1, false))
	produce(true, st("scraping", 2, false))
	scraping, _ := s.next(20 * time.Second)
	if scraping.typ != "status" || !strings.Contains(scraping.data, `"stage":"scraping"`) {
		t.Fatalf("second event %+v (an aborted record leaked?)", scraping)
	}
	result := &pb.CartResult{RequestId: id, UserId: "alice", Criteria: got.Criteria, Carts: []*pb.Cart{{Rank: 1, Sellers: []string{"shop"},
		Total: &pb.Money{AmountMinor: 4200, Currency: "EUR"}, Quantity: 2}}, Timings: &pb.CartTimings{TotalMs: 1234}}
	produce(true, resultRecord(t, 0, 0, result), st("done", 4, true))
	rest := s.rest(20 * time.Second)
	// The result and the final status are in different topics: either
	// order, then the end once both... the end comes right after the result.
	var resEv sseEvent
	for _, ev := range rest {
		if ev.typ == "result" {
			resEv = ev
		}
		if strings.Contains(ev.data, "aborted") {
			t.Fatalf("aborted status delivered: %v", rest)
		}
	}
	if resEv.id == "" || rest[len(rest)-1].typ != "end" || !strings.Contains(resEv.data, `"amount":"42.00"`) {
		t.Fatalf("after scraping: %v", rest)
	}

	// Resume after "scraping": only what came after it, nothing twice.
	again := openSSE(t, ctx, url, alice, scraping.id).rest(20 * time.Second)
	for _, ev := range again {
		if ev.id == queued.id || ev.id == scraping.id {
			t.Fatalf("resumed stream repeats %v", ev)
		}
	}
	if len(again) == 0 || again[len(again)-1].typ != "end" || !strings.Contains(types(again), "result") {
		t.Fatalf("resumed: %v", again)
	}
	if got := openSSE(t, ctx, url, alice, again[len(again)-2].id).rest(20 * time.Second); types(got) != "end" {
		t.Fatalf("resumed at the last event: %v", got)
	}

	// GET: the status (Redis or the bridge, the newer) and the result.
	req, _ = http.NewRequest("GET", srv.URL+"/api/v1/carts/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+alice)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var view RequestView
	_ = json.NewDecoder(resp.Body).Decode(&view)
	resp.Body.Close()
	var rv ResultView
	if err := json.Unmarshal(view.Result, &rv); err != nil || !view.Finished || rv.TotalMs != 1234 || len(rv.Carts) != 1 || rv.Carts[0].Quantity != 2 {
		t.Fatalf("GET cart: %+v (%v)", view, err)
	}
	// The Redis status is the gateway's: a cart builder would have moved it on.
	if stored, ok, _ := rds.Status(ctx, id); !ok || stored.UserId != "alice" {
		t.Fatalf("redis status %v", stored)
	}

	// A sync request goes to sync-requests.v1 the same way.
	req, _ = http.NewRequest("POST", srv.URL+"/api/v1/users/alice/sync", nil)
	req.Header.Set("Authorization", "Bearer "+alice)
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("sync: %v %v", resp, err)
	}
	resp.Body.Close()
	sr, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs()...), kgo.ConsumeTopics(topics.SyncRequests().Name),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer sr.Close()
	var sync pb.SyncRequest
	for sync.RequestId == "" {
		fs := sr.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("no record on sync-requests.v1")
		}
		fs.EachRecord(func(r *kgo.Record) { _ = proto.Unmarshal(r.Value, &sync) })
	}
	if sync.UserId != "alice" || sync.Username != "alice" {
		t.Fatalf("sync request %v", &sync)
	}
	cancel()
	if err := <-bridgeDone; err != nil {
		t.Fatal(err)
	}
}
