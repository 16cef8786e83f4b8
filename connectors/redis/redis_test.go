package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/cratestream/cratestream/connectors/redis"
	"github.com/cratestream/cratestream/internal/testutil"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

func TestStore(t *testing.T) {
	ctx := context.Background()
	s, err := redis.Open(ctx, redis.Options{Addr: testutil.Redis(t), FreshFor: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	now := time.UnixMilli(time.Now().UnixMilli())
	if err := s.MarkScraped(ctx, 42, now); err != nil {
		t.Fatal(err)
	}
	got, err := s.LastScraped(ctx, []int64{42, 43})
	if err != nil || len(got) != 1 || !got[42].Equal(now) {
		t.Fatalf("LastScraped = %v, %v", got, err)
	}
	// The freshness key expires: the release becomes stale.
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, _ = s.LastScraped(ctx, []int64{42})
		if len(got) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("freshness key never expired")
		}
		time.Sleep(100 * time.Millisecond)
	}

	if err := s.SetListingIDs(ctx, 7, []int64{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetListingIDs(ctx, 7, []int64{3, 4}); err != nil {
		t.Fatal(err)
	}
	ids, err := s.ListingIDs(ctx, 7)
	if err != nil || len(ids) != 2 {
		t.Fatalf("ListingIDs = %v, %v", ids, err)
	}

	sub := s.Client().Subscribe(ctx, "cs:statusch:r1")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	st := &pb.RequestStatus{RequestId: "r1", Kind: pb.RequestKind_REQUEST_KIND_CART, Stage: "scraping", Done: 3, Total: 10, Message: "scraping 3/10 releases"}
	if err := s.SetStatus(ctx, st); err != nil {
		t.Fatal(err)
	}
	back, ok, err := s.Status(ctx, "r1")
	if err != nil || !ok || back.Stage != "scraping" || back.Done != 3 {
		t.Fatalf("Status = %v %v %v", back, ok, err)
	}
	msg, err := sub.ReceiveMessage(ctx)
	if err != nil || msg.Payload == "" {
		t.Fatalf("published status: %v %v", msg, err)
	}
	if _, ok, _ := s.Status(ctx, "nope"); ok {
		t.Fatal("status of an unknown request")
	}

	if _, ok, _ := s.LastSynced(ctx, "u"); ok {
		t.Fatal("never synced user has a sync time")
	}
	_ = s.MarkSynced(ctx, "u", now)
	if at, ok, err := s.LastSynced(ctx, "u"); err != nil || !ok || !at.Equal(now) {
		t.Fatalf("LastSynced = %v %v %v", at, ok, err)
	}
	_ = s.SetSyncedReleases(ctx, "wants", "u", []int64{5, 6})
	if m, err := s.SyncedReleases(ctx, "wants", "u"); err != nil || !m[5] || !m[6] || len(m) != 2 {
		t.Fatalf("SyncedReleases = %v %v", m, err)
	}
	for i := int64(1); i <= 3; i++ {
		if n, err := s.AddChunk(ctx, "r1"); err != nil || n != i {
			t.Fatalf("AddChunk = %d %v", n, err)
		}
	}
}
