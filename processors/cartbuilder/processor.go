package cartbuilder

import (
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cratestream/cratestream/connectors/redis"
	"github.com/cratestream/cratestream/internal/cartopt"
	"github.com/cratestream/cratestream/internal/money"
	"github.com/cratestream/cratestream/internal/stream"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

// Name is the processor's name and consumer group.
const Name = "cartbuilder"

// CommitInterval is the commit interval the cart builder runs with (the
// service caps its runner's interval at it). In exactly-once mode a
// request's carts become visible only when its transaction commits, and a
// request that arrives within the interval of the last commit waits for
// it: at the services' default 100ms that wait was most of the
// request-to-carts latency (bench cart-latency: p50 60ms, p99 ~120ms, of
// which ~7ms handling). 20ms brings the wait to ~10ms. The cost is more
// transactions when the builder is busy (at most 50/s, each an EndTxn and
// an offset commit), mostly for the candidates it mirrors from
// user-candidates.v1; a cart request is rare next to them, so its latency
// wins.
const CommitInterval = 20 * time.Millisecond

// Options configure the processor.
type Options struct {
	Tables *Tables
	// Redis holds freshness (read) and request statuses (written).
	Redis *redis.Store
	// FreshFor: a release is fresh when its last successful scrape is
	// younger. Default 24h (the scraper's key TTL says the same).
	FreshFor time.Duration
	// Deadline is how long a request waits for scrapes before building
	// from what is fresh. Default 60s.
	Deadline time.Duration
	// MaxNodes bounds one solve's search (0: none).
	MaxNodes int64
	Logger   *slog.Logger
	Metrics  prometheus.Registerer
}

// New returns the cart builder. It runs exactly-once: a request's carts,
// its status records and its completion marker commit together, so a
// request gets exactly one CartResult across crashes and retries.
func New(o Options) (*stream.Processor, error) {
	if o.Tables == nil || o.Redis == nil {
		return nil, errors.New("cartbuilder: tables and Redis are required")
	}
	if o.FreshFor <= 0 {
		o.FreshFor = 24 * time.Hour
	}
	if o.Deadline <= 0 {
		o.Deadline = 60 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Metrics == nil {
		o.Metrics = prometheus.NewRegistry()
	}
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "cratestream_cart_request_seconds", Help: "Time from a cart request to its carts, by path (fresh, scraped, deadline).",
		Buckets: prometheus.ExponentialBuckets(0.002, 2, 16),
	}, []string{"path"})
	_ = o.Metrics.Register(latency)

	p := stream.NewProcessor(Name, stream.ExactlyOnce)
	t := o.Tables
	for _, g := range []stream.Global{t.Listings, t.Sellers, t.Stats, t.FX} {
		p.UseGlobal(g)
	}
	str := stream.Codec[string](stream.StringCodec{})
	ct := topics.UserCandidates()
	candidates := stream.NewTable(p, "candidates", ct.Key, ct.Value)
	pending := stream.NewTable(p, "pending", str, stream.Codec[*pb.PendingCart](stream.Proto[pb.PendingCart]()))
	completed := stream.NewTable(p, "completed", str, stream.Codec[int64](stream.Int64Codec{}))
	carts, statuses, scrapes := topics.Carts(), topics.RequestStatus(), topics.ScrapeRequests()
	p.Output(carts.TopicSpec)
	p.Output(statuses.TopicSpec)
	p.Output(scrapes.TopicSpec)

	report := func(c *stream.Ctx, req *pb.CartRequest, stage string, done, total int, msg, errText string, finished bool) error {
		st := &pb.RequestStatus{
			EventId: fmt.Sprintf("status:%s:%s:%d", req.RequestId, stage, done), EventTimeMs: c.Now().UnixMilli(),
			RequestId: req.RequestId, Kind: pb.RequestKind_REQUEST_KIND_CART, UserId: req.UserId,
			Stage: stage, Done: int32(done), Total: int32(total), Message: msg, Error: errText, Finished: finished,
		}
		// Redis first, for the frontend; a failure is transient (the
		// request is retried). The topic record commits with the rest.
		if err := o.Redis.SetStatus(c, st); err != nil {
			return err
		}
		return stream.Emit(c, statuses, req.RequestId, st)
	}

	fail := func(c *stream.Ctx, req *pb.CartRequest, reason string) error {
		res := &pb.CartResult{EventId: "carts:" + req.RequestId, EventTimeMs: c.Now().UnixMilli(), RequestId: req.RequestId,
			UserId: req.UserId, Criteria: req.Criteria, Error: reason}
		if err := stream.Emit(c, carts, req.UserId, res); err != nil {
			return err
		}
		if err := completed.Put(c, req.RequestId, c.Now().UnixMilli()); err != nil {
			return err
		}
		// A request that fails while pending (its build at the deadline)
		// must leave no pending state: a late scrape-done would otherwise
		// make it ready and build it a second time.
		if err := pending.Delete(c, req.RequestId); err != nil {
			return err
		}
		return report(c, req, "failed", 0, 0, "no carts: "+reason, reason, true)
	}

	// build solves the request over the fresh listings and emits its carts.
	build := func(c *stream.Ctx, pc *pb.PendingCart, path string) error {
		req := pc.Request
		stale := make(map[int64]bool)
		for _, id := range pc.Waiting {
			stale[id] = true
		}
		start := time.Now()
		prob, listings, err := t.problem(req, pc.Candidates, func(id int64) bool { return !stale[id] })
		if err != nil {
			return fail(c, req, err.Error())
		}
		res, err := cartopt.Solve(prob, cartopt.Options{Objective: req.Criteria.Objective, MultiSeller: req.Criteria.MultiSeller, MaxNodes: o.MaxNodes})
		if err != nil {
			if errors.Is(err, cartopt.ErrSearchLimit) || errors.Is(err, cartopt.ErrUnknownCurrency) {
				return fail(c, req, err.Error())
			}
			return fail(c, req, "solve: "+err.Error())
		}
		conv, err := cartopt.NewConverter(prob.Rates, prob.Criteria.Currency)
		if err != nil {
			return fail(c, req, err.Error())
		}
		now := c.Now().UnixMilli()
		out := &pb.CartResult{
			EventId: "carts:" + req.RequestId, EventTimeMs: now, RequestId: req.RequestId, UserId: req.UserId,
			Carts: result(res, pc.Candidates, listings, t.Sellers, conv), Criteria: req.Criteria,
			StaleReleases: slices.Sorted(mapKeys(stale)), Candidates: int32(len(pc.Candidates)), ListingsConsidered: int32(len(prob.Listings)),
			Timings: timings(pc.StartedMs, start),
		}
		if len(out.Carts) == 0 {
			out.Error = "no cart fits the criteria"
		}
		if err := stream.Emit(c, carts, req.UserId, out); err != nil {
			return err
		}
		if err := completed.Put(c, req.RequestId, now); err != nil {
			return err
		}
		if err := pending.Delete(c, req.RequestId); err != nil {
			return err
		}
		latency.WithLabelValues(path).Observe(float64(now-req.EventTimeMs) / 1000)
		msg := fmt.Sprintf("%d carts from %d listings", len(out.Carts), len(prob.Listings))
		if len(stale) > 0 {
			msg += fmt.Sprintf(" (%d releases still stale at the deadline)", len(stale))
		}
		return report(c, req, "done", int(pc.StaleTotal), int(pc.StaleTotal), msg, out.Error, true)
	}

	var deadline, check *stream.Timer[string]
	// ready reports whether a pending request can be built now.
	ready := func(pc *pb.PendingCart) bool {
		if len(pc.Waiting) > 0 {
			return false
		}
		offs := map[int32]int64{}
		for _, po := range pc.ListingOffsets {
			offs[po.Partition] = max(offs[po.Partition], po.Offset)
		}
		return t.Listings.Reached(offs)
	}
	// progress advances a pending request and builds it when it is ready.
	// changed says pc differs from the stored state: the check timer's
	// polls of the listing table change nothing, and neither store nor
	// status is rewritten for them.
	progress := func(c *stream.Ctx, pc *pb.PendingCart, changed bool) error {
		if ready(pc) {
			if err := deadline.Cancel(c, pc.Request.RequestId); err != nil {
				return err
			}
			if err := check.Cancel(c, pc.Request.RequestId); err != nil {
				return err
			}
			return build(c, pc, "scraped")
		}
		if len(pc.Waiting) == 0 {
			// Scrapes are in, the listing table is catching up: look
			// again shortly.
			if err := check.Schedule(c, pc.Request.RequestId, c.Now().Add(20*time.Millisecond), ""); err != nil {
				return err
			}
		}
		if !changed {
			return nil
		}
		if err := pending.Put(c, pc.Request.RequestId, pc); err != nil {
			return err
		}
		done := int(pc.StaleTotal) - len(pc.Waiting)
		return report(c, pc.Request, "scraping", done, int(pc.StaleTotal),
			fmt.Sprintf("scraping %d/%d releases", done, pc.StaleTotal), "", false)
	}
	loadPending := func(c *stream.Ctx, id string) (*pb.PendingCart, error) {
		pc, ok, err := pending.Get(c, id)
		if err != nil || !ok {
			return nil, err
		}
		return pc, nil
	}
	deadline = stream.NewTimer(p, "deadline", str, func(c *stream.Ctx, id, _ string) error {
		pc, err := loadPending(c, id)
		if err != nil || pc == nil {
			return err
		}
		if err := check.Cancel(c, id); err != nil {
			return err
		}
		return build(c, pc, "deadline")
	})
	check = stream.NewTimer(p, "check", str, func(c *stream.Ctx, id, _ string) error {
		pc, err := loadPending(c, id)
		if err != nil || pc == nil {
			return err
		}
		return progress(c, pc, false)
	})

	stream.Consume(p, ct, func(c *stream.Ctx, user string, cs *pb.Candidates) error {
		if c.Tombstone() {
			return candidates.Delete(c, user)
		}
		return candidates.Put(c, user, cs)
	})

	stream.Consume(p, topics.CartRequests(), func(c *stream.Ctx, user string, req *pb.CartRequest) error {
		if req == nil {
			return stream.Invalidf("tombstone on %s", topics.CartRequests().Name)
		}
		if req.UserId == "" {
			req.UserId = user
		}
		if req.UserId != user {
			return stream.Invalidf("cart request %s of user %q arrived under key %q", req.RequestId, req.UserId, user)
		}
		if req.RequestId == "" {
			return stream.Invalidf("cart request without request_id")
		}
		// Exactly one result per request id: a retried or replayed
		// request is answered already, or is in progress.
		if _, done, err := completed.Get(c, req.RequestId); err != nil || done {
			return err
		}
		if pc, err := loadPending(c, req.RequestId); err != nil || pc != nil {
			return err
		}
		if req.EventTimeMs == 0 {
			req.EventTimeMs = c.Timestamp().UnixMilli()
		}
		if err := validate(req); err != nil {
			return fail(c, req, err.Error())
		}
		// An unknown budget currency fails now, with a clear error, not
		// after scraping for a solve that cannot run.
		if cur := req.Criteria.Budget.Currency; !t.hasRate(cur) {
			return fail(c, req, fmt.Sprintf("criteria.budget: currency %q has no exchange rate", cur))
		}
		cs, _, err := candidates.Get(c, user)
		if err != nil {
			return err
		}
		sel := Select(cs, req.Criteria.WantlistRatio, req.RequestId)
		sel = affordable(sel, req.Criteria.Budget, t)
		if len(sel) == 0 {
			return fail(c, req, "no candidate releases (empty wantlist and no recommendations yet, or all priced over the budget)")
		}
		ids := make([]int64, len(sel))
		for i, cd := range sel {
			ids[i] = cd.ReleaseId
		}
		last, err := o.Redis.LastScraped(c, ids)
		if err != nil {
			return err
		}
		now := c.Now()
		var stale []int64
		for _, id := range ids {
			if at, ok := last[id]; !ok || now.Sub(at) >= o.FreshFor {
				stale = append(stale, id)
			}
		}
		pc := &pb.PendingCart{Request: req, Candidates: sel, Waiting: stale, StartedMs: req.EventTimeMs,
			DeadlineMs: now.Add(o.Deadline).UnixMilli(), StaleTotal: int32(len(stale))}
		if len(stale) == 0 {
			return build(c, pc, "fresh")
		}
		for _, id := range stale {
			if err := stream.Emit(c, scrapes, id, &pb.ScrapeRequest{
				EventId: "scrape:" + req.RequestId + ":" + strconv.FormatInt(id, 10), EventTimeMs: now.UnixMilli(),
				RequestId: req.RequestId, ReleaseId: id, Reason: "stale",
			}); err != nil {
				return err
			}
		}
		if err := deadline.Schedule(c, req.RequestId, time.UnixMilli(pc.DeadlineMs), ""); err != nil {
			return err
		}
		return progress(c, pc, true)
	})

	stream.Broadcast(p, topics.ScrapeDone(), func(c *stream.Ctx, release int64, sd *pb.ScrapeDone) error {
		if sd == nil {
			return nil
		}
		ids, err := pending.Keys(c)
		if err != nil {
			return err
		}
		for _, id := range ids {
			pc, err := loadPending(c, id)
			if err != nil || pc == nil {
				if err != nil {
					return err
				}
				continue
			}
			i := slices.Index(pc.Waiting, release)
			if i < 0 {
				continue
			}
			if sd.Error != "" {
				// A failed scrape leaves the release stale: it is left
				// out, and reported, when the cart is built.
				continue
			}
			pc.Waiting = slices.Delete(pc.Waiting, i, i+1)
			pc.Scraped = append(pc.Scraped, release)
			pc.ListingOffsets = append(pc.ListingOffsets, sd.ListingEndOffsets...)
			if err := progress(c, pc, true); err != nil {
				return err
			}
		}
		return nil
	})
	return p, nil
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// affordable drops candidates whose median price (release stats, in EUR)
// is over the budget: their listings could rarely fit.
func affordable(cands []*pb.CartCandidate, budget *pb.Money, t *Tables) []*pb.CartCandidate {
	budgetEUR := budget.AmountMinor
	if budget.Currency != "EUR" {
		r, ok := t.FX.Get(budget.Currency)
		if !ok {
			return cands // unknown currency: the solve reports it
		}
		rate, err := money.ParseRate(r.UnitsPerEur)
		if err != nil {
			return cands
		}
		budgetEUR = money.Convert(budget.AmountMinor, budget.Currency, rate, "EUR", big.NewRat(1, 1))
	}
	out := cands[:0:0]
	for _, cd := range cands {
		// The market processor writes medians in EUR; one in another
		// currency is not compared (the solve judges its listings).
		if st, ok := t.Stats.Get(cd.ReleaseId); ok && st.MedianPrice != nil && st.MedianPrice.Currency == "EUR" &&
			st.MedianPrice.AmountMinor > budgetEUR {
			continue
		}
		out = append(out, cd)
	}
	return out
}

// timings splits a request's time at the start of its solve (wall clock:
// c.Now() is the batch's time, taken before the solve began).
func timings(startedMs int64, solveStart time.Time) *pb.CartTimings {
	wait := max(0, solveStart.UnixMilli()-startedMs)
	solve := time.Since(solveStart).Milliseconds()
	return &pb.CartTimings{WaitMs: wait, SolveMs: solve, TotalMs: wait + solve}
}
