package embedded_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cratestream/cratestream/internal/embedded"
)

// requireServer skips when a server binary is absent, except under CI=true
// where .ci/run has installed it and its absence is a failure.
func requireServer(t *testing.T, name string) {
	t.Helper()
	if _, ok := embedded.LookPath(name); !ok {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (CI=true): .ci/run should have installed it", name)
		}
		t.Skipf("%s is not installed; `make test` installs it", name)
	}
}

func TestRedisServerChild(t *testing.T) {
	requireServer(t, "redis-server")
	ctx := context.Background()
	r, err := embedded.StartRedis(ctx, embedded.RedisOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Kind != "redis-server" {
		t.Fatalf("kind = %q", r.Kind)
	}
	cl := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer cl.Close()
	if err := cl.Set(ctx, "k", "v", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := cl.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("get = %q, %v", v, err)
	}
	info, err := cl.Info(ctx, "server").Result()
	if err != nil || len(info) == 0 {
		t.Fatalf("info: %v", err)
	}
}

func TestClickHouseServerChild(t *testing.T) {
	requireServer(t, "clickhouse-server")
	ctx := context.Background()
	dir := t.TempDir()
	ch, err := embedded.StartClickHouse(ctx, embedded.ClickHouseOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{ch.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(ctx, "CREATE TABLE t (id UInt64, v String) ENGINE = MergeTree ORDER BY id"); err != nil {
		t.Fatal(err)
	}
	b, err := conn.PrepareBatch(ctx, "INSERT INTO t (id, v)")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if err := b.Append(uint64(i), "x"); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM t").Scan(&n); err != nil || n != 100 {
		t.Fatalf("count = %d, %v", n, err)
	}
	conn.Close()
	ch.Close()

	// A second server on the same directory sees the data.
	ch2, err := embedded.StartClickHouse(ctx, embedded.ClickHouseOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer ch2.Close()
	conn2, err := clickhouse.Open(&clickhouse.Options{Addr: []string{ch2.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	if err := conn2.QueryRow(ctx, "SELECT count() FROM t").Scan(&n); err != nil || n != 100 {
		t.Fatalf("after restart count = %d, %v", n, err)
	}
}

func TestKafkaPersistsAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	k, err := embedded.StartKafka(embedded.KafkaOptions{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(k.Addrs()); n != 3 {
		t.Fatalf("%d brokers, want 3", n)
	}
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs()...), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Key: []byte("k"), Value: []byte("persisted")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	k.Close()

	k2, err := embedded.StartKafka(embedded.KafkaOptions{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer k2.Close()
	cl2, err := kgo.NewClient(kgo.SeedBrokers(k2.Addrs()...), kgo.ConsumeTopics("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	fs := cl2.PollFetches(pctx)
	var got []string
	fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	if len(got) != 1 || got[0] != "persisted" {
		t.Fatalf("after restart read %q, want [persisted] (%v)", got, fs.Err())
	}
}
