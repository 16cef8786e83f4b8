package api

import (
	"net/http"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name, value string
		want        time.Duration
	}{
		{"absent", "", -1},
		{"seconds", "7", 7 * time.Second},
		{"zero", "0", 0},
		{"negative", "-3", -1},
		{"garbage", "soon", -1},
		{"http date", now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{"date in the past", now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"absurdly long", "99999999999999", maxRetryAfter},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.value != "" {
				h.Set("Retry-After", tc.value)
			}
			if got := retryAfter(h, now); got != tc.want {
				t.Errorf("retryAfter(%q) = %v, want %v", tc.value, got, tc.want)
			}
		})
	}
}

func TestBackoffBounds(t *testing.T) {
	for attempt := range 12 {
		step := min(backoffBase<<attempt, backoffMax)
		for range 50 {
			if d := backoff(attempt); d < step/2 || d > step {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", attempt, d, step/2, step)
			}
		}
	}
	if d := backoff(1000); d > backoffMax || d < backoffMax/2 {
		t.Fatalf("backoff(1000) = %v, want within [%v, %v]", d, backoffMax/2, backoffMax)
	}
}

func rlHeader(limit, used, remaining string) http.Header {
	h := http.Header{}
	for k, v := range map[string]string{
		"X-Discogs-Ratelimit": limit, "X-Discogs-Ratelimit-Used": used, "X-Discogs-Ratelimit-Remaining": remaining,
	} {
		if v != "" {
			h.Set(k, v)
		}
	}
	return h
}

// Sequential requests: each is reserved at the same instant (the fake
// clock does not move), so the wait is the spacing the pacer imposes.
func TestPacerSpacing(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		status int
		header http.Header
		want   time.Duration // wait of the request after the observed one
	}{
		{"no headers yet", 200, http.Header{}, 0},
		{"real headers 60/5/55", 200, rlHeader("60", "5", "55"), 0},
		{"just above low water", 200, rlHeader("60", "44", "16"), 0},
		{"at low water", 200, rlHeader("60", "45", "15"), rateWindow / 16},
		{"remaining 1", 200, rlHeader("60", "59", "1"), rateWindow / 2},
		{"remaining 0 waits a window", 200, rlHeader("60", "60", "0"), rateWindow},
		{"only Used", 200, rlHeader("60", "60", ""), rateWindow},
		{"anonymous limit 25", 200, rlHeader("25", "20", "5"), rateWindow / 6},
		{"429 defers to Retry-After", 429, rlHeader("60", "60", "0"), 0},
		{"garbage", 200, rlHeader("x", "y", "z"), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPacer()
			if w := p.reserve(t0); w != 0 {
				t.Fatalf("first request waits %v", w)
			}
			p.observe(tc.status, tc.header)
			p.done()
			if got := p.reserve(t0); got != tc.want {
				t.Errorf("wait %v, want %v", got, tc.want)
			}
			p.done()
		})
	}
}

// Requests in flight count against the observed budget, so concurrent
// workers do not all fire on one stale "remaining".
func TestPacerCountsInflight(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	p := newPacer()
	p.reserve(t0)
	p.observe(200, rlHeader("60", "57", "3"))
	p.done()
	// Three workers reserve at once: budget 3, then 2, then 1 left.
	var got []time.Duration
	for range 3 {
		got = append(got, p.reserve(t0))
	}
	want := []time.Duration{rateWindow / 4, rateWindow/4 + rateWindow/3, rateWindow/4 + rateWindow/3 + rateWindow/2}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("waits %v, want %v", got, want)
		}
	}
}

func TestPacerPause(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	p := newPacer()
	p.pause(t0.Add(7 * time.Second))
	p.pause(t0.Add(3 * time.Second)) // an earlier pause does not shorten it
	if w := p.reserve(t0.Add(time.Second)); w != 6*time.Second {
		t.Fatalf("wait %v, want 6s", w)
	}
}
