package api

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// rateWindow is Discogs' moving rate-limit window.
	rateWindow = 60 * time.Second
	// defaultLimit is Discogs' authenticated limit, assumed when a response
	// carries Remaining but not the limit itself.
	defaultLimit = 60
	// Backoff of 5xx, transport errors and 429 without Retry-After.
	backoffBase = time.Second
	backoffMax  = 60 * time.Second
	// maxRetryAfter caps a Retry-After so that a garbage header cannot
	// park the client for days; the caller's context still rules.
	maxRetryAfter = time.Hour
)

// pacer turns the X-Discogs-Ratelimit* headers into waits before requests.
//
// Discogs counts requests in a moving 60 s window: a request frees its slot
// 60 s after it was made. We cannot see when the counted requests were
// made, so the worst case is that they all were just now and nothing frees
// before a full window has passed. While the budget is comfortable requests
// go out at once; once the estimated remaining budget r falls to the low
// water mark, requests are spaced window/(r+1) apart so that the budget
// lasts a whole window — by then the earlier requests have aged out, the
// server reports a larger remaining, and the spacing shrinks again. With
// r = 0 the next request waits a full window instead of firing into a 429.
type pacer struct {
	mu        sync.Mutex
	known     bool // a response with rate-limit headers has been seen
	limit     int
	remaining int
	inflight  int       // reserved and not done: not yet reflected in remaining
	last      time.Time // planned start of the last request
	until     time.Time // no request starts before this (429 pause)
}

func newPacer() *pacer { return &pacer{} }

// lowWater is the remaining budget below which requests are spread out.
// A quarter of the limit leaves room for other processes sharing the token.
func (p *pacer) lowWater() int { return max(p.limit/4, 1) }

// reserve plans the start of one request and returns how long to wait
// before sending it. Every reserve must be followed by done.
func (p *pacer) reserve(now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	start := now
	if p.until.After(start) {
		start = p.until
	}
	if p.known {
		// Requests in flight are not in the last observed remaining yet
		// (or some are: counting them all errs on the careful side).
		est := max(p.remaining-p.inflight, 0)
		if est <= p.lowWater() {
			gap := rateWindow / time.Duration(est+1)
			if next := p.last.Add(gap); next.After(start) {
				start = next
			}
		}
	}
	p.last = start
	p.inflight++
	return start.Sub(now)
}

// done ends a reservation, whether or not a response arrived.
func (p *pacer) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inflight--
}

// observe records the rate-limit headers of a response.
func (p *pacer) observe(status int, h http.Header) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if status == http.StatusTooManyRequests {
		// The pause set by the caller decides when to try again; a stale
		// "remaining 0" would otherwise add a full window on top of it.
		p.known = false
		return
	}
	limit, okL := headerInt(h, "X-Discogs-Ratelimit")
	remaining, okR := headerInt(h, "X-Discogs-Ratelimit-Remaining")
	used, okU := headerInt(h, "X-Discogs-Ratelimit-Used")
	if !okL {
		limit = defaultLimit
	}
	switch {
	case okR:
	case okU:
		remaining = max(limit-used, 0)
	default:
		return
	}
	p.known, p.limit, p.remaining = true, limit, remaining
}

// pause keeps every request from starting before t.
func (p *pacer) pause(t time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t.After(p.until) {
		p.until = t
	}
}

func headerInt(h http.Header, name string) (int, bool) {
	v, err := strconv.Atoi(strings.TrimSpace(h.Get(name)))
	if err != nil || v < 0 {
		return 0, false
	}
	return v, true
}

// backoff is the wait before retry number attempt+1: exponential, capped,
// with "equal jitter" (half fixed, half random) so that concurrent workers
// do not retry in lockstep yet always wait at least half the step.
func backoff(attempt int) time.Duration {
	d := backoffMax
	if attempt < 16 {
		d = min(backoffBase<<attempt, backoffMax)
	}
	half := d / 2
	return half + rand.N(half+1)
}

// retryAfter parses Retry-After (delay-seconds or HTTP-date); -1 when it is
// absent or unparsable.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return -1
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return -1
		}
		d = time.Duration(min(secs, int64(maxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = max(t.Sub(now), 0)
	} else {
		return -1
	}
	return min(d, maxRetryAfter)
}
