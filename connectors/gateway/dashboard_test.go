package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	chsink "github.com/cratestream/cratestream/connectors/clickhouse"
	"github.com/cratestream/cratestream/internal/testutil"
)

func TestDashboardWithoutClickHouse(t *testing.T) {
	e := newEnv(t, nil)
	for _, path := range []string{"/api/v1/dashboard/market", "/api/v1/dashboard/releases/5/prices", "/api/v1/dashboard/rec-quality"} {
		w := e.do(t, "GET", path, e.alice, "")
		if w.Code != http.StatusServiceUnavailable || !strings.Contains(decodeErr(t, w).Error, "needs ClickHouse") {
			t.Errorf("%s: %d %s", path, w.Code, w.Body)
		}
		if w := e.do(t, "GET", path, "", ""); w.Code != http.StatusUnauthorized {
			t.Errorf("%s without a session: %d", path, w.Code)
		}
	}
	w := e.do(t, "GET", "/api/v1/dashboard/pipeline", e.alice, "")
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(decodeErr(t, w).Error, "registry") {
		t.Errorf("pipeline: %d %s", w.Code, w.Body)
	}
	// Parameters are checked before ClickHouse is needed.
	for path, field := range map[string]string{
		"/api/v1/dashboard/releases/0/prices":   "id",
		"/api/v1/dashboard/releases/x/prices":   "id",
		"/api/v1/dashboard/rec-quality?since=x": "since",
	} {
		w := e.do(t, "GET", path, e.alice, "")
		if w.Code != http.StatusBadRequest || decodeErr(t, w).Field != field {
			t.Errorf("%s: %d %s", path, w.Code, w.Body)
		}
	}
}

func TestDashboardPipeline(t *testing.T) {
	reg := prometheus.NewRegistry()
	in := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cratestream_records_in_total"}, []string{"processor", "topic"})
	lag := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cratestream_consumer_lag"}, []string{"processor", "topic", "partition"})
	dlq := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cratestream_dlq_records_total"}, []string{"processor", "reason_class"})
	other := prometheus.NewCounter(prometheus.CounterOpts{Name: "unrelated_total"})
	reg.MustRegister(in, lag, dlq, other)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	e := newEnv(t, func(c *Config) {
		c.Metrics = reg
		c.Now = func() time.Time { return now }
	})
	get := func() PipelineView {
		t.Helper()
		w := e.do(t, "GET", "/api/v1/dashboard/pipeline", e.alice, "")
		if w.Code != 200 {
			t.Fatalf("pipeline: %d %s", w.Code, w.Body)
		}
		var v PipelineView
		if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	in.WithLabelValues("profile", "interactions.v1").Add(100)
	in.WithLabelValues("profile", "other.v1").Add(20)
	lag.WithLabelValues("profile", "interactions.v1", "0").Set(7)
	lag.WithLabelValues("profile", "interactions.v1", "1").Set(3)
	dlq.WithLabelValues("profile", "invalid").Add(2)
	in.WithLabelValues("market", "listings.v1").Add(5)
	v := get()
	if len(v.Processors) != 2 || v.Processors[0].Processor != "market" || v.Processors[1].Processor != "profile" {
		t.Fatalf("processors %+v", v.Processors)
	}
	p := v.Processors[1]
	if p.RecordsIn != 120 || p.Lag != 10 || p.DeadLetters != 2 || p.InPerSec != 0 {
		t.Fatalf("profile %+v", p)
	}
	if len(v.History) != 0 || v.Source == "" {
		t.Fatalf("first call: %+v", v)
	}

	now = now.Add(2 * time.Second)
	in.WithLabelValues("profile", "interactions.v1").Add(50)
	lag.WithLabelValues("profile", "interactions.v1", "0").Set(1)
	v = get()
	if p := v.Processors[1]; p.InPerSec != 25 || p.Lag != 4 {
		t.Fatalf("after 2s: %+v", p)
	}
	if len(v.History) != 1 || v.History[0].InPerSec["profile"] != 25 || v.History[0].InPerSec["market"] != 0 || v.History[0].Lag["profile"] != 4 {
		t.Fatalf("history %+v", v.History)
	}
	// A call within a second of the last sample adds none and keeps the rate.
	now = now.Add(100 * time.Millisecond)
	if v = get(); len(v.History) != 1 || v.Processors[1].InPerSec != 25 {
		t.Fatalf("too soon: %+v", v)
	}
	// The history is bounded.
	for i := 0; i < pipelineHistory+10; i++ {
		now = now.Add(time.Second)
		get()
	}
	if v = get(); len(v.History) != pipelineHistory-1 {
		t.Fatalf("history of %d samples", len(v.History))
	}
}

// The ClickHouse-backed endpoints against a real server with the sink's
// schema.
func TestDashboardOnClickHouse(t *testing.T) {
	addr := testutil.ClickHouse(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := chsink.Open(ctx, chsink.ConnOptions{Addr: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := chsink.Migrate(ctx, conn); err != nil {
		t.Fatal(err)
	}
	row := func(id, rel int64, eur int64, media uint8, ships string, v uint64) chsink.ListingRow {
		return chsink.ListingRow{ListingID: id, ReleaseID: rel, Seller: "s" + ships, PriceMinor: eur, Currency: "EUR", PriceEURMinor: eur,
			ShippingState: 1, ShippingMinor: 300, MediaGrade: media, SleeveGrade: media, ShipsFrom: ships, Available: true,
			SellerRating: 99, SeenAt: time.Unix(1700000000, 0), Version: v}
	}
	rows := []chsink.ListingRow{
		row(1, 10, 1000, 2, "Germany", 1), row(2, 10, 2000, 3, "Germany", 1), row(3, 10, 3000, 3, "France", 1),
		row(4, 10, 4000, 2, "Japan", 1), row(5, 20, 500, 4, "France", 1),
		{ListingID: 4, ReleaseID: 10, SeenAt: time.Unix(1700000001, 0), Deleted: true, Version: 2}, // sold
	}
	if err := chsink.InsertListings(ctx, conn, rows); err != nil {
		t.Fatal(err)
	}
	b, err := conn.PrepareBatch(ctx, "INSERT INTO rec_outcomes (event_id, user_id, model_version, level, recommended, adopted, event_time, version)")
	if err != nil {
		t.Fatal(err)
	}
	recent, old := time.Now().Add(-time.Hour), time.Now().Add(-72*time.Hour)
	for _, r := range []struct {
		id, user, model, level string
		rec, adopted           uint32
		at                     time.Time
	}{
		{"e1", "u1", "m2", "als", 10, 3, recent}, {"e2", "u2", "m2", "als", 10, 1, recent},
		{"e1", "u1", "m2", "als", 10, 3, recent}, // a replay: counted once
		{"e3", "u1", "m1", "popular", 4, 0, old},
	} {
		if err := b.Append(r.id, r.user, r.model, r.level, r.rec, r.adopted, r.at, uint64(1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *Config) { c.Dashboard = chsink.NewQueries(conn, chsink.QueryOptions{}) })
	get := func(path string, v any) {
		t.Helper()
		w := e.do(t, "GET", path, e.alice, "")
		if w.Code != 200 {
			t.Fatalf("%s: %d %s", path, w.Code, w.Body)
		}
		if err := json.Unmarshal(w.Body.Bytes(), v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}

	var m chsink.MarketOverview
	get("/api/v1/dashboard/market", &m)
	if m.Listings != 4 || len(m.ByMediaGrade) != 3 || m.ByMediaGrade[0].Name != "NM" || m.ByMediaGrade[1].Listings != 2 {
		t.Fatalf("market %+v", m)
	}
	if len(m.ByShipsFrom) != 2 || m.ByShipsFrom[0] != (chsink.KeyCount{Key: "France", Listings: 2}) || m.ByShipsFrom[1] != (chsink.KeyCount{Key: "Germany", Listings: 2}) {
		t.Fatalf("by country %+v", m.ByShipsFrom)
	}

	var p chsink.PriceDistribution
	get("/api/v1/dashboard/releases/10/prices", &p)
	if p.Listings != 3 || p.MinEUR != 1000 || p.MedianEUR != 2000 || p.MaxEUR != 3000 {
		t.Fatalf("prices %+v", p)
	}
	get("/api/v1/dashboard/releases/999/prices", &p)
	if p.Listings != 0 || p.ReleaseID != 999 {
		t.Fatalf("no listings: %+v", p)
	}

	var q RecQualityView
	get("/api/v1/dashboard/rec-quality", &q)
	if len(q.Rows) != 2 || q.Rows[0].ModelVersion != "m2" || q.Rows[0].Recommended != 20 || q.Rows[0].Adopted != 4 || q.Rows[0].AdoptionRate != 0.2 {
		t.Fatalf("rec quality %+v", q)
	}
	get("/api/v1/dashboard/rec-quality?since=24h", &q)
	if len(q.Rows) != 1 || q.Since == "" {
		t.Fatalf("rec quality of the last day %+v", q)
	}

	// ClickHouse gone: a clear 503.
	conn.Close()
	w := e.do(t, "GET", "/api/v1/dashboard/market", e.alice, "")
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(decodeErr(t, w).Error, "ClickHouse") {
		t.Fatalf("closed connection: %d %s", w.Code, w.Body)
	}
}
