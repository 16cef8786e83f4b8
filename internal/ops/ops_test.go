package ops_test

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/internal/embedded"
	"github.com/cratestream/cratestream/internal/ops"
	"github.com/cratestream/cratestream/internal/stream"
	"github.com/cratestream/cratestream/processors/profile"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The ops server reports readiness of its processors, exports their metrics
// and answers store lookups.
func TestOpsServer(t *testing.T) {
	ctx := context.Background()
	k, err := embedded.StartKafka(embedded.KafkaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := stream.CreateTopics(ctx, kadm.NewClient(cl), topics.Catalogue(), 1); err != nil {
		t.Fatal(err)
	}

	srv := ops.NewServer()
	addr, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p, _ := profile.New(profile.Options{Mode: stream.ExactlyOnce})
	const secret = "ops-test-lookup-secret"
	r, err := stream.NewRunner(p, stream.Config{Brokers: k.Addrs(), InstanceID: "ops", AdvertiseAddr: addr, LookupSecret: secret,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: srv.Registry, CommitInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv.AddRunner(r)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = srv.Serve(sctx) }()
	base := "http://" + addr

	if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "not ready") {
		t.Fatalf("readyz before start = %d %s", code, body)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(sctx) }()
	defer func() { cancel(); <-done }()

	ev, _ := proto.Marshal(&pb.Interaction{EventId: "e1", EventTimeMs: 1, UserId: "carol", ReleaseId: 5, Kind: pb.InteractionKind_INTERACTION_KIND_WANT_ADD})
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topics.Interactions().Name, Key: []byte("carol"), Value: ev}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, found, _, err := stream.FetchStore(ctx, http.DefaultClient, addr, secret, "profile", "profiles", []byte("carol"))
		if err == nil && found {
			var prof pb.UserProfile
			if err := proto.Unmarshal(v, &prof); err != nil || prof.UserId != "carol" {
				t.Fatalf("lookup body: %v %v", err, &prof)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lookup never succeeded: %v %v", found, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, body := get(t, base+"/readyz"); code != http.StatusOK {
		t.Errorf("readyz = %d %s", code, body)
	}
	if code, body := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("healthz = %d %s", code, body)
	}
	if _, found, served, err := stream.FetchStore(ctx, http.DefaultClient, addr, secret, "profile", "profiles", []byte("nobody")); found || !served || err != nil {
		t.Errorf("absent key = %v %v %v", found, served, err)
	}
	// Probes and metrics need no secret; a collector's state does.
	if code, _ := get(t, base+stream.StorePath+"profile/profiles/"+base64.RawURLEncoding.EncodeToString([]byte("carol"))); code != http.StatusUnauthorized {
		t.Errorf("lookup without the secret = %d, want 401", code)
	}
	_, metrics := get(t, base+"/metrics")
	for _, want := range []string{
		`cratestream_records_in_total{processor="profile",topic="interactions.v1"} 1`,
		`cratestream_commits_total{processor="profile",result="committed"}`,
		`cratestream_rebalances_total{kind="assigned",processor="profile"}`,
		`cratestream_record_latency_seconds_bucket`,
		`cratestream_consumer_lag{partition=`,
		`cratestream_tasks{processor="profile"} 12`,
		`go_goroutines`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
