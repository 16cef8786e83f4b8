package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/internal/stream"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

type fakeProducer struct {
	mu   sync.Mutex
	recs []*kgo.Record
	fail error
}

func (p *fakeProducer) ProduceSync(_ context.Context, rs ...*kgo.Record) kgo.ProduceResults {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out kgo.ProduceResults
	for _, r := range rs {
		if p.fail == nil {
			p.recs = append(p.recs, r)
		}
		out = append(out, kgo.ProduceResult{Record: r, Err: p.fail})
	}
	return out
}

func (p *fakeProducer) on(topic string) []*kgo.Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*kgo.Record
	for _, r := range p.recs {
		if r.Topic == topic {
			out = append(out, r)
		}
	}
	return out
}

type fakeStatus struct {
	mu sync.Mutex
	m  map[string]*pb.RequestStatus
}

func (f *fakeStatus) Status(_ context.Context, id string) (*pb.RequestStatus, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.m[id]
	return st, ok, nil
}

func (f *fakeStatus) SetStatus(_ context.Context, st *pb.RequestStatus) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[st.RequestId] = proto.Clone(st).(*pb.RequestStatus)
	return nil
}

type fakeStores map[string][]byte // "<proc>/<store>/<key>"

func (f fakeStores) Get(_ context.Context, proc, store string, key []byte) ([]byte, bool, error) {
	v, ok := f[proc+"/"+store+"/"+string(key)]
	return v, ok, nil
}

type testEnv struct {
	srv    *Server
	prod   *fakeProducer
	status *fakeStatus
	alice  string // bearer token of alice
}

var testSecret = []byte("0123456789abcdef0123456789abcdef")

func newEnv(t *testing.T, mod func(*Config)) *testEnv {
	t.Helper()
	e := &testEnv{prod: &fakeProducer{}, status: &fakeStatus{m: map[string]*pb.RequestStatus{}}}
	cfg := Config{Producer: e.prod, Status: e.status, SessionSecret: testSecret,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), RateBurst: 1000, RatePerSecond: 1000}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = s
	e.alice, _ = s.IssueSession("alice", "test")
	return e
}

// do serves one request; token "" sends none.
func (e *testEnv) do(t *testing.T, method, path, token, body string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, req)
	return w
}

func decodeErr(t *testing.T, w *httptest.ResponseRecorder) apiError {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", w.Body.String(), err)
	}
	return e
}

func TestPostCartValidation(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name  string
		body  string
		field string
	}{
		{"no budget", `{}`, "budget"},
		{"null budget", `{"budget": null}`, "budget"},
		{"budget number", `{"budget": 50}`, "budget"},
		{"budget bad string", `{"budget": "fifty"}`, "budget"},
		{"budget zero", `{"budget": "0 EUR"}`, "budget"},
		{"budget negative", `{"budget": {"amount_minor": -5, "currency": "EUR"}}`, "budget"},
		{"budget no currency", `{"budget": {"amount_minor": 5000}}`, "budget.currency"},
		{"budget unknown currency", `{"budget": {"amount_minor": 5000, "currency": "XYZ"}}`, "budget.currency"},
		{"budget no amount", `{"budget": {"currency": "EUR"}}`, "budget.amount_minor"},
		{"budget both amounts", `{"budget": {"amount_minor": 1, "amount": "1", "currency": "EUR"}}`, "budget"},
		{"budget bad decimal", `{"budget": {"amount": "1.234", "currency": "EUR"}}`, "budget.amount"},
		{"budget amount_minor string", `{"budget": {"amount_minor": "50", "currency": "EUR"}}`, "budget.amount_minor"},
		{"budget extra field", `{"budget": {"amount_minor": 1, "currency": "EUR", "cents": 3}}`, "budget.cents"},
		{"grade", `{"budget": "50 EUR", "min_media_cond": "shiny"}`, "min_media_cond"},
		{"rating high", `{"budget": "50 EUR", "min_seller_rating": 101}`, "min_seller_rating"},
		{"rating negative", `{"budget": "50 EUR", "min_seller_rating": -1}`, "min_seller_rating"},
		{"rating string", `{"budget": "50 EUR", "min_seller_rating": "99"}`, "min_seller_rating"},
		{"min qty", `{"budget": "50 EUR", "min_qty": -1}`, "min_qty"},
		{"min qty float", `{"budget": "50 EUR", "min_qty": 1.5}`, "min_qty"},
		{"countries type", `{"budget": "50 EUR", "countries": "Germany"}`, "countries"},
		{"country empty", `{"budget": "50 EUR", "countries": ["Germany", " "]}`, "countries[1]"},
		{"ratio", `{"budget": "50 EUR", "wantlist_ratio": 1.5}`, "wantlist_ratio"},
		{"top n zero", `{"budget": "50 EUR", "top_n": 0}`, "top_n"},
		{"top n big", `{"budget": "50 EUR", "top_n": 101}`, "top_n"},
		{"objective", `{"budget": "50 EUR", "objective": "max"}`, "objective"},
		{"multi seller type", `{"budget": "50 EUR", "multi_seller": "yes"}`, "multi_seller"},
		{"unknown field", `{"budget": "50 EUR", "colour": "red"}`, "colour"},
		{"malformed", `{"budget": `, "body"},
		{"trailing", `{"budget": "50 EUR"} {}`, "body"},
		{"array", `[]`, "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.do(t, "POST", "/api/v1/carts", e.alice, tt.body)
			if w.Code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", w.Code, w.Body)
			}
			if got := decodeErr(t, w); got.Field != tt.field || got.Error == "" {
				t.Fatalf("error %+v, want field %q", got, tt.field)
			}
		})
	}
	if n := len(e.prod.recs); n != 0 {
		t.Fatalf("%d records produced by invalid requests", n)
	}
	// A wrong content type is refused too.
	req := httptest.NewRequest("POST", "/api/v1/carts", strings.NewReader(`{"budget":"5 EUR"}`))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Authorization", "Bearer "+e.alice)
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, req)
	if w.Code != 400 || decodeErr(t, w).Field != "body" {
		t.Fatalf("text/plain: %d %s", w.Code, w.Body)
	}
}

func TestPostCartAccepted(t *testing.T) {
	tests := []struct {
		name string
		body string
		want *pb.CartCriteria
	}{
		{"minimal", `{"budget": "50.00 EUR"}`, &pb.CartCriteria{Budget: &pb.Money{AmountMinor: 5000, Currency: "EUR"}, WantlistRatio: 0.5, TopN: 20}},
		{"symbol", `{"budget": "$12.5"}`, &pb.CartCriteria{Budget: &pb.Money{AmountMinor: 1250, Currency: "USD"}, WantlistRatio: 0.5, TopN: 20}},
		{"everything", `{"budget": {"amount_minor": 7000, "currency": "eur"}, "min_media_cond": "VG+", "min_seller_rating": 99.5,
			"min_qty": 3, "countries": ["Germany", " United  States", "Germany"], "wantlist_ratio": 0, "top_n": 5,
			"objective": "sum", "multi_seller": true}`,
			&pb.CartCriteria{Budget: &pb.Money{AmountMinor: 7000, Currency: "EUR"}, MinMedia: pb.MediaGrade_MEDIA_GRADE_VERY_GOOD_PLUS,
				MinSellerRating: 99.5, MinQty: 3, ShipsFrom: []string{"Germany", "United States"}, WantlistRatio: 0, TopN: 5,
				Objective: "sum", MultiSeller: true}},
		{"decimal amount yen", `{"budget": {"amount": "1,500", "currency": "JPY"}, "min_media_cond": "Near Mint (NM or M-)"}`,
			&pb.CartCriteria{Budget: &pb.Money{AmountMinor: 1500, Currency: "JPY"}, MinMedia: pb.MediaGrade_MEDIA_GRADE_NEAR_MINT, WantlistRatio: 0.5, TopN: 20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			w := e.do(t, "POST", "/api/v1/carts", e.alice, tt.body)
			if w.Code != http.StatusAccepted {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			var acc Accepted
			if err := json.Unmarshal(w.Body.Bytes(), &acc); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(acc.RequestID, "cart-") || acc.StatusURL != "/api/v1/carts/"+acc.RequestID ||
				acc.EventsURL != "/api/v1/requests/"+acc.RequestID+"/events" || w.Header().Get("Location") != acc.StatusURL {
				t.Fatalf("accepted %+v", acc)
			}
			recs := e.prod.on(topics.CartRequests().Name)
			if len(recs) != 1 || string(recs[0].Key) != "alice" {
				t.Fatalf("cart requests %v", recs)
			}
			req, err := topics.CartRequests().Value.Decode(recs[0].Value)
			if err != nil {
				t.Fatal(err)
			}
			if req.RequestId != acc.RequestID || req.UserId != "alice" || req.EventId == "" || req.EventTimeMs == 0 {
				t.Fatalf("request %v", req)
			}
			if !proto.Equal(req.Criteria, tt.want) {
				t.Fatalf("criteria\n got %v\nwant %v", req.Criteria, tt.want)
			}
			// The first status is in the status store and on request-status.v1.
			st, ok, _ := e.status.Status(context.Background(), acc.RequestID)
			if !ok || st.Stage != "queued" || st.UserId != "alice" || st.Kind != pb.RequestKind_REQUEST_KIND_CART {
				t.Fatalf("status %v", st)
			}
			if s := e.prod.on(topics.RequestStatus().Name); len(s) != 1 || string(s[0].Key) != acc.RequestID {
				t.Fatalf("status records %v", s)
			}
			// And the request is visible to its owner only.
			if w := e.do(t, "GET", acc.StatusURL, e.alice, ""); w.Code != 200 || !strings.Contains(w.Body.String(), `"stage":"queued"`) {
				t.Fatalf("GET %s: %d %s", acc.StatusURL, w.Code, w.Body)
			}
			bob, _ := e.srv.IssueSession("bob", "test")
			if w := e.do(t, "GET", acc.StatusURL, bob, ""); w.Code != http.StatusForbidden {
				t.Fatalf("bob GET: %d %s", w.Code, w.Body)
			}
		})
	}
}

func TestProducerDown(t *testing.T) {
	e := newEnv(t, nil)
	e.prod.fail = errors.New("no brokers")
	w := e.do(t, "POST", "/api/v1/carts", e.alice, `{"budget": "50 EUR"}`)
	if w.Code != http.StatusServiceUnavailable || decodeErr(t, w).Error == "" {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

func TestAuthRequired(t *testing.T) {
	e := newEnv(t, nil)
	now := time.Now()
	expired, _ := newEnv(t, func(c *Config) { c.Now = func() time.Time { return now.Add(-30 * 24 * time.Hour) } }).srv.IssueSession("alice", "test")
	other, _ := newEnv(t, func(c *Config) { c.SessionSecret = []byte(strings.Repeat("x", 32)) }).srv.IssueSession("alice", "test")
	tampered := strings.Replace(e.alice, e.alice[:4], "eyJz", 1) + "x"
	tests := []struct {
		name, method, path string
		hdr                []string
		want               int
	}{
		{"healthz is public", "GET", "/healthz", nil, 200},
		{"no token", "GET", "/api/v1/me", nil, 401},
		{"expired", "GET", "/api/v1/me", []string{"Authorization", "Bearer " + expired}, 401},
		{"other secret", "GET", "/api/v1/me", []string{"Authorization", "Bearer " + other}, 401},
		{"tampered", "GET", "/api/v1/me", []string{"Authorization", "Bearer " + tampered}, 401},
		{"basic auth", "GET", "/api/v1/me", []string{"Authorization", "Basic YTpi"}, 401},
		{"bearer", "GET", "/api/v1/me", []string{"Authorization", "Bearer " + e.alice}, 200},
		{"cookie", "GET", "/api/v1/me", []string{"Cookie", SessionCookie + "=" + e.alice}, 200},
		{"post carts", "POST", "/api/v1/carts", nil, 401},
		{"events", "GET", "/api/v1/requests/x/events", nil, 401},
		{"unknown route", "GET", "/api/v1/nope", []string{"Authorization", "Bearer " + e.alice}, 404},
		{"wrong method", "DELETE", "/api/v1/carts", []string{"Authorization", "Bearer " + e.alice}, 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.do(t, tt.method, tt.path, "", "", tt.hdr...)
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.want, w.Body)
			}
			if w.Code == 401 && decodeErr(t, w).Error == "" {
				t.Fatal("401 without an error message")
			}
		})
	}
	w := e.do(t, "GET", "/api/v1/me", e.alice, "")
	if !strings.Contains(w.Body.String(), `"user":"alice"`) {
		t.Fatalf("me: %s", w.Body)
	}
}

func TestRequestOwnership(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	_ = e.status.SetStatus(ctx, &pb.RequestStatus{RequestId: "cart-bob", UserId: "bob", Kind: pb.RequestKind_REQUEST_KIND_CART, Stage: "scraping"})
	_ = e.status.SetStatus(ctx, &pb.RequestStatus{RequestId: "sync-alice", UserId: "alice", Kind: pb.RequestKind_REQUEST_KIND_SYNC, Stage: "done", Finished: true})
	// alice's cart is only known from the topics (the hub).
	res := &pb.CartResult{RequestId: "cart-alice", UserId: "alice", Carts: []*pb.Cart{{Rank: 1, Sellers: []string{"s1"},
		Total: &pb.Money{AmountMinor: 1999, Currency: "EUR"}, Items: []*pb.CartItem{{ListingId: 7, ReleaseId: 9, Media: pb.MediaGrade_MEDIA_GRADE_MINT}}}}}
	b, _ := proto.Marshal(res)
	if err := e.srv.Hub().Apply(&kgo.Record{Topic: topics.Carts().Name, Partition: 2, Offset: 10, Key: []byte("alice"), Value: b}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path     string
		want     int
		field    string
		contains string
	}{
		{"/api/v1/carts/cart-bob", 403, "request_id", ""},
		{"/api/v1/requests/cart-bob", 403, "request_id", ""},
		{"/api/v1/requests/cart-bob/events", 403, "request_id", ""},
		{"/api/v1/carts/nope", 404, "request_id", ""},
		{"/api/v1/requests/nope/events", 404, "request_id", ""},
		{"/api/v1/carts/sync-alice", 404, "request_id", ""},
		{"/api/v1/requests/sync-alice", 200, "", `"finished":true`},
		{"/api/v1/carts/cart-alice", 200, "", `"amount":"19.99"`},
		{"/api/v1/carts/cart-alice", 200, "", `"media":"M"`},
	}
	for _, tt := range tests {
		w := e.do(t, "GET", tt.path, e.alice, "")
		if w.Code != tt.want {
			t.Errorf("%s: %d, want %d: %s", tt.path, w.Code, tt.want, w.Body)
			continue
		}
		if tt.field != "" && decodeErr(t, w).Field != tt.field {
			t.Errorf("%s: %s, want field %s", tt.path, w.Body, tt.field)
		}
		if !strings.Contains(w.Body.String(), tt.contains) {
			t.Errorf("%s: %s lacks %s", tt.path, w.Body, tt.contains)
		}
	}
	var v RequestView
	w := e.do(t, "GET", "/api/v1/carts/cart-alice", e.alice, "")
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil || !v.Finished || v.Kind != "cart" || v.Status != nil {
		t.Fatalf("view %+v %v", v, err)
	}
	var rv ResultView
	if err := json.Unmarshal(v.Result, &rv); err != nil || len(rv.Carts) != 1 || rv.Carts[0].Items[0].ListingID != 7 {
		t.Fatalf("result %s %v", v.Result, err)
	}
}

func TestSync(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name, path, body string
		want             int
		force            bool
	}{
		{"other user", "/api/v1/users/bob/sync", "", 403, false},
		{"no body", "/api/v1/users/alice/sync", "", 202, false},
		{"case-insensitive name", "/api/v1/users/Alice/sync", "", 202, false},
		{"force", "/api/v1/users/alice/sync", `{"force": true}`, 202, true},
		{"bad body", "/api/v1/users/alice/sync", `{"force": 1}`, 400, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(e.prod.on(topics.SyncRequests().Name))
			w := e.do(t, "POST", tt.path, e.alice, tt.body)
			if w.Code != tt.want {
				t.Fatalf("%d, want %d: %s", w.Code, tt.want, w.Body)
			}
			recs := e.prod.on(topics.SyncRequests().Name)
			if tt.want != 202 {
				if len(recs) != before {
					t.Fatal("produced on a refused request")
				}
				return
			}
			var acc Accepted
			_ = json.Unmarshal(w.Body.Bytes(), &acc)
			req, err := topics.SyncRequests().Value.Decode(recs[len(recs)-1].Value)
			if err != nil || req.RequestId != acc.RequestID || req.UserId != "alice" || req.Username != "alice" || req.Force != tt.force ||
				string(recs[len(recs)-1].Key) != "alice" || acc.Kind != "sync" {
				t.Fatalf("sync request %v (accepted %+v)", req, acc)
			}
			if st, ok, _ := e.status.Status(context.Background(), acc.RequestID); !ok || st.Kind != pb.RequestKind_REQUEST_KIND_SYNC {
				t.Fatalf("status %v", st)
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxBodyBytes = 100 })
	body := `{"budget": "50 EUR", "countries": ["` + strings.Repeat("x", 200) + `"]}`
	w := e.do(t, "POST", "/api/v1/carts", e.alice, body)
	if w.Code != http.StatusRequestEntityTooLarge || decodeErr(t, w).Error == "" {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

func TestRateLimit(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := newEnv(t, func(c *Config) { c.RatePerSecond, c.RateBurst, c.Now = 0.5, 2, clock })
	for i := 0; i < 2; i++ {
		if w := e.do(t, "GET", "/api/v1/me", e.alice, ""); w.Code != 200 {
			t.Fatalf("request %d: %d", i, w.Code)
		}
	}
	w := e.do(t, "GET", "/api/v1/me", e.alice, "")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "3" || decodeErr(t, w).Error == "" {
		t.Fatalf("%d Retry-After=%q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	// Another user (and anonymous clients) have their own buckets;
	// health checks are not limited.
	bob, _ := e.srv.IssueSession("bob", "test")
	if w := e.do(t, "GET", "/api/v1/me", bob, ""); w.Code != 200 {
		t.Fatalf("bob: %d", w.Code)
	}
	for i := 0; i < 5; i++ {
		if w := e.do(t, "GET", "/healthz", "", ""); w.Code != 200 {
			t.Fatalf("healthz: %d", w.Code)
		}
	}
	mu.Lock()
	now = now.Add(2 * time.Second)
	mu.Unlock()
	if w := e.do(t, "GET", "/api/v1/me", e.alice, ""); w.Code != 200 {
		t.Fatalf("after refill: %d", w.Code)
	}
}

func TestRecommendationsAndSimilar(t *testing.T) {
	cands := &pb.Candidates{UserId: "alice", ModelVersion: "v3", CascadeLevel: "als", ProfileVersion: 12, Candidates: []*pb.Candidate{
		{ReleaseId: 10, Score: 1, Source: pb.CandidateSource_CANDIDATE_SOURCE_RECOMMENDATION},
		{ReleaseId: 11, Score: 0.5, Source: pb.CandidateSource_CANDIDATE_SOURCE_RECOMMENDATION},
		{ReleaseId: 12, Source: pb.CandidateSource_CANDIDATE_SOURCE_WANTLIST},
	}}
	b, _ := proto.Marshal(cands)
	e := newEnv(t, func(c *Config) {
		c.Stores = fakeStores{"recommend/candidates/alice": b}
		c.Similar = func(release int64, n int) ([]int64, []float32, error) {
			switch release {
			case 1:
				return []int64{2, 3}[:min(n, 2)], []float32{0.9, 0.8}, nil
			case 404:
				return nil, nil, ErrUnknown
			}
			return nil, nil, ErrUnavailable
		}
	})
	bob, _ := e.srv.IssueSession("bob", "test")
	tests := []struct {
		path, token string
		want        int
		contains    string
	}{
		{"/api/v1/users/alice/recommendations", e.alice, 200, `"items":[{"release_id":10,"score":1,"url":"https://www.discogs.com/release/10"},{"release_id":11`},
		{"/api/v1/users/alice/recommendations?limit=1", e.alice, 200, `"items":[{"release_id":10,"score":1,"url":"https://www.discogs.com/release/10"}],"wantlist":1`},
		{"/api/v1/users/alice/recommendations?limit=0", e.alice, 400, `"field":"limit"`},
		{"/api/v1/users/alice/recommendations", bob, 403, `"field":"username"`},
		{"/api/v1/users/bob/recommendations", bob, 404, `"field":"username"`},
		{"/api/v1/releases/1/similar", bob, 200, `{"release_id":1,"items":[{"release_id":2,"score":0.9`},
		{"/api/v1/releases/1/similar?limit=1", bob, 200, `"items":[{"release_id":2,"score":0.9`},
		{"/api/v1/releases/404/similar", bob, 404, `"field":"id"`},
		{"/api/v1/releases/5/similar", bob, 503, `no model`},
		{"/api/v1/releases/x/similar", bob, 400, `"field":"id"`},
		{"/api/v1/releases/-1/similar", bob, 400, `"field":"id"`},
	}
	for _, tt := range tests {
		w := e.do(t, "GET", tt.path, tt.token, "")
		if w.Code != tt.want || !strings.Contains(w.Body.String(), tt.contains) {
			t.Errorf("%s: %d %s, want %d with %s", tt.path, w.Code, w.Body, tt.want, tt.contains)
		}
	}
}

func TestStoreClient(t *testing.T) {
	var hits sync.Map
	mk := func(name string, serve func(w http.ResponseWriter, key string)) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Store(name, true)
			if r.Header.Get(stream.LookupHeader) != "Bearer shared" {
				http.Error(w, "store lookups need the instances' shared lookup secret", http.StatusUnauthorized)
				return
			}
			p := strings.TrimPrefix(r.URL.Path, "/v1/stores/recommend/candidates/")
			if p == r.URL.Path {
				http.Error(w, "unknown processor", 404)
				return
			}
			serve(w, p)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	other := mk("other", func(w http.ResponseWriter, _ string) { http.Error(w, "not owned here", http.StatusMisdirectedRequest) })
	unrelated := httptest.NewServer(http.NotFoundHandler()) // a process without the processor
	t.Cleanup(unrelated.Close)
	owner := mk("owner", func(w http.ResponseWriter, key string) {
		if key != "YWxpY2U" { // base64url("alice")
			http.Error(w, "not found", 404)
			return
		}
		w.Write([]byte("value"))
	})
	c := NewStoreClient(nil, "shared", other.Listener.Addr().String(), unrelated.URL, owner.Listener.Addr().String())
	v, ok, err := c.Get(context.Background(), "recommend", "candidates", []byte("alice"))
	if err != nil || !ok || string(v) != "value" {
		t.Fatalf("Get alice = %q %v %v", v, ok, err)
	}
	if _, ok := hits.Load("other"); !ok {
		t.Fatal("the non-owner was not asked first")
	}
	if _, ok, err := c.Get(context.Background(), "recommend", "candidates", []byte("bob")); ok || err != nil {
		t.Fatalf("Get bob = %v %v", ok, err)
	}
	if _, _, err := NewStoreClient(nil, "shared", other.Listener.Addr().String()).Get(context.Background(), "recommend", "candidates", []byte("alice")); err == nil {
		t.Fatal("no owner: want an error")
	}
	// Without the instances' secret the owner refuses, and the error says
	// why rather than "not found".
	_, ok, err = NewStoreClient(nil, "guess", owner.Listener.Addr().String()).Get(context.Background(), "recommend", "candidates", []byte("alice"))
	if ok || err == nil || !strings.Contains(err.Error(), "lookup secret") {
		t.Fatalf("wrong secret: ok=%v err=%v, want a refusal naming the lookup secret", ok, err)
	}
}
