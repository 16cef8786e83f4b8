package importer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/connectors/discogs/api"
	"github.com/cratestream/cratestream/connectors/discogs/importer"
	"github.com/cratestream/cratestream/connectors/redis"
	"github.com/cratestream/cratestream/internal/stream"
	"github.com/cratestream/cratestream/internal/testutil"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

// discogs serves a user's wantlist and collection in the API v2 format,
// two items per page so that every sync spans several pages.
type discogs struct {
	mu         sync.Mutex
	wants      []int64
	collection []int64
	ratings    map[int64]int
}

func (d *discogs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	w.Header().Set("X-Discogs-Ratelimit", "60")
	w.Header().Set("X-Discogs-Ratelimit-Used", "1")
	w.Header().Set("X-Discogs-Ratelimit-Remaining", "59")
	var ids []int64
	key := "wants"
	switch {
	case strings.HasSuffix(r.URL.Path, "/users/collector/wants"):
		ids = d.wants
	case strings.HasSuffix(r.URL.Path, "/users/collector/collection/folders/0/releases"):
		ids, key = d.collection, "releases"
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"message": "User does not exist or may have been deleted."}`)
		return
	}
	const per = 2
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	if page < 1 {
		page = 1
	}
	pages := max(1, (len(ids)+per-1)/per)
	var items []map[string]any
	for i := (page - 1) * per; i < min(page*per, len(ids)); i++ {
		id := ids[i]
		items = append(items, map[string]any{
			"id": id, "instance_id": id * 10, "rating": d.ratings[id],
			"date_added":        "2024-03-0" + strconv.Itoa(1+i%9) + "T10:00:00-08:00",
			"basic_information": map[string]any{"id": id, "title": "Release " + strconv.FormatInt(id, 10)},
		})
	}
	_ = json.NewEncoder(w).Encode(map[string]any{
		"pagination": map[string]any{"page": page, "pages": pages, "per_page": per, "items": len(ids), "urls": map[string]any{}},
		key:          items,
	})
}

func (d *discogs) set(wants, collection []int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.wants, d.collection = wants, collection
}

type env struct {
	im    *importer.Importer
	rds   *redis.Store
	cl    *kgo.Client
	k     []string
	fake  *discogs
	clock *time.Time
}

func setup(t *testing.T) *env {
	ctx := context.Background()
	k := testutil.Kafka(t)
	rds, err := redis.Open(ctx, redis.Options{Addr: testutil.Redis(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rds.Close() })
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs()...), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if _, err := stream.CreateTopics(ctx, kadm.NewClient(cl), topics.Catalogue(), 1); err != nil {
		t.Fatal(err)
	}
	fake := &discogs{ratings: map[int64]int{11: 4}}
	fake.set([]int64{1, 2, 3}, []int64{10, 11})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	client, err := api.New(api.Config{BaseURL: srv.URL, UserAgent: "cratestream-test/1", Token: "t", PerPage: 2})
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	e := &env{rds: rds, cl: cl, k: k.Addrs(), fake: fake, clock: &clock}
	e.im, err = importer.New(importer.Config{API: client, Redis: rds, Producer: cl, MinInterval: time.Hour,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return *e.clock }})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// read returns every record of topic.
func (e *env) read(t *testing.T, topic string, want int) []*kgo.Record {
	t.Helper()
	rd, err := kgo.NewClient(kgo.SeedBrokers(e.k...), kgo.ConsumeTopics(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var out []*kgo.Record
	deadline := time.Now().Add(20 * time.Second)
	for len(out) < want && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		rd.PollFetches(ctx).EachRecord(func(r *kgo.Record) { out = append(out, r) })
		cancel()
	}
	return out
}

func interactions(t *testing.T, recs []*kgo.Record) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, r := range recs {
		var ev pb.Interaction
		if err := proto.Unmarshal(r.Value, &ev); err != nil {
			t.Fatal(err)
		}
		if string(r.Key) != ev.UserId {
			t.Errorf("interaction keyed %q for user %q", r.Key, ev.UserId)
		}
		out[fmt.Sprintf("%s %d", strings.TrimPrefix(ev.Kind.String(), "INTERACTION_KIND_"), ev.ReleaseId)]++
	}
	return out
}

func TestSync(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	req := &pb.SyncRequest{RequestId: "r1", UserId: "collector", Username: "collector"}
	done, err := e.im.Sync(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if done.Wantlist != 3 || done.Collection != 2 || done.Skipped {
		t.Fatalf("sync-done = %v", done)
	}
	got := interactions(t, e.read(t, "interactions.v1", 6))
	for _, k := range []string{"WANT_ADD 1", "WANT_ADD 2", "WANT_ADD 3", "COLLECT_ADD 10", "COLLECT_ADD 11", "RATE 11"} {
		if got[k] != 1 {
			t.Errorf("first sync: %s produced %d times (%v)", k, got[k], got)
		}
	}
	st, ok, err := e.rds.Status(ctx, "r1")
	if err != nil || !ok || st.Stage != "done" || !st.Finished || st.Done != 3 || st.Total != 3 {
		t.Fatalf("status = %v %v %v", st, ok, err)
	}
	if n, _ := e.rds.AddChunk(ctx, "r1"); n != 4 { // 2 wantlist pages + 1 collection page, then ours
		t.Errorf("chunks counted = %d, want 3 before this one", n-1)
	}

	// Synced recently: skipped.
	*e.clock = e.clock.Add(10 * time.Minute)
	done, err = e.im.Sync(ctx, &pb.SyncRequest{RequestId: "r2", UserId: "collector"})
	if err != nil || !done.Skipped {
		t.Fatalf("second sync = %v, %v; want skipped", done, err)
	}

	// The wantlist changed: 1 removed, 4 added; forced.
	e.fake.set([]int64{2, 3, 4}, []int64{10, 11})
	done, err = e.im.Sync(ctx, &pb.SyncRequest{RequestId: "r3", UserId: "collector", Force: true})
	if err != nil || done.Wantlist != 3 {
		t.Fatalf("third sync = %v, %v", done, err)
	}
	all := interactions(t, e.read(t, "interactions.v1", 6+7))
	if all["WANT_REMOVE 1"] != 1 || all["WANT_ADD 4"] != 1 || all["COLLECT_REMOVE 10"] != 0 {
		t.Errorf("after the change: %v", all)
	}
	if dones := e.read(t, "sync-done.v1", 3); len(dones) != 3 {
		t.Errorf("%d sync-done records, want 3", len(dones))
	}
}

func TestSyncUnknownUserFails(t *testing.T) {
	e := setup(t)
	done, err := e.im.Sync(context.Background(), &pb.SyncRequest{RequestId: "r9", UserId: "nobody"})
	if err == nil || done.Error == "" {
		t.Fatalf("sync of an unknown user = %v, %v", done, err)
	}
	st, ok, _ := e.rds.Status(context.Background(), "r9")
	if !ok || st.Stage != "failed" || !strings.Contains(st.Error, "not") {
		t.Fatalf("status = %v", st)
	}
}

func TestWorker(t *testing.T) {
	e := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.im.Run(ctx, importer.WorkerConfig{Brokers: e.k}) }()
	defer func() { cancel(); <-done }()
	b, _ := proto.Marshal(&pb.SyncRequest{RequestId: "w1", UserId: "collector", Username: "collector"})
	if err := e.cl.ProduceSync(ctx,
		&kgo.Record{Topic: "sync-requests.v1", Key: []byte("collector"), Value: b},
		&kgo.Record{Topic: "sync-requests.v1", Key: []byte("x"), Value: []byte{0xff}},
	).FirstErr(); err != nil {
		t.Fatal(err)
	}
	recs := e.read(t, "sync-done.v1", 1)
	if len(recs) != 1 {
		t.Fatalf("%d sync-done records", len(recs))
	}
	if dl := e.read(t, "dlq.v1", 1); len(dl) != 1 {
		t.Fatalf("%d dead letters for the bad request", len(dl))
	}
}
