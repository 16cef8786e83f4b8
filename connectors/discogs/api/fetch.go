package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// PageResult is one fetched page (one "chunk" of a sync).
type PageResult struct {
	Page  int
	Pages int
	Items []Item
	// Interactions are Items mapped to events of the user, in item order:
	// WANT_ADD per want; COLLECT_ADD per copy, plus RATE when rated.
	Interactions []*pb.Interaction
}

// Summary describes a whole list after all its pages were delivered.
type Summary struct {
	// Pages and Items are what page 1 declared.
	Pages int
	Items int
	// Fetched counts the items received; it equals Items unless the list
	// changed during the fetch (then the error is ErrListChanged).
	Fetched int
	// Unmapped counts items that produced no interaction (no usable
	// release id or date_added); they are still in ReleaseIDs when they
	// have a release id.
	Unmapped int
	// ReleaseIDs are the distinct release ids currently in the list,
	// ascending: compare with the previous sync to emit removals.
	ReleaseIDs []int64
}

// Wantlist fetches all pages of username's wantlist. See Collection.
func (c *Client) Wantlist(ctx context.Context, username string, onPage func(PageResult) error) (Summary, error) {
	return c.fetchAll(ctx, listWants, username, onPage)
}

// Collection fetches all pages of username's collection (folder 0, all
// folders). Page 1 is fetched first to learn the page count; the other
// pages are then fetched concurrently (bounded by Config.Concurrency) and
// handed to onPage as each completes, in no particular order. onPage is
// never called concurrently, so it needs no locking; an error from it stops
// the fetch and is returned. username becomes the user_id of the
// interactions as given (Discogs itself ignores case).
//
// Errors: ErrNotFound (no such user), ErrForbidden (private collection),
// ErrUnauthorized, ErrRateLimited, the context's error, or ErrListChanged —
// the only case where the returned Summary is filled in (see its doc).
func (c *Client) Collection(ctx context.Context, username string, onPage func(PageResult) error) (Summary, error) {
	return c.fetchAll(ctx, listCollection, username, onPage)
}

func (c *Client) pageURL(l list, username string, page int) *url.URL {
	elems := []string{"users", url.PathEscape(username), "wants"}
	if l == listCollection {
		elems = []string{"users", url.PathEscape(username), "collection", "folders", "0", "releases"}
	}
	u := c.base.JoinPath(elems...)
	u.RawQuery = url.Values{
		"page":     {strconv.Itoa(page)},
		"per_page": {strconv.Itoa(c.perPage)},
	}.Encode()
	return u
}

// fetchPage returns page of l; outOfRange reports Discogs' "Page N is
// outside of valid range" answer, which means the list now ends earlier.
func (c *Client) fetchPage(ctx context.Context, l list, username string, page int) (w wirePage, outOfRange bool, err error) {
	body, err := c.get(ctx, c.pageURL(l, username, page))
	if err != nil {
		if ae := (*APIError)(nil); page > 1 && errors.As(err, &ae) && isOutOfRange(ae) {
			return wirePage{}, true, nil
		}
		return wirePage{}, false, fmt.Errorf("discogs: %s of %q, page %d: %w", l, username, page, err)
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return wirePage{}, false, fmt.Errorf("discogs: %s of %q, page %d: decoding: %w", l, username, page, err)
	}
	return w, false, nil
}

// maxPages bounds the pages of one list: a million items at 100 a page,
// several times the largest collections on Discogs.
const maxPages = 10_000

// ErrBadPagination is returned when page 1 declares more pages than its
// item count fills: fetching them would only add out-of-range requests, and
// a garbled count ("pages": 2000000000) would keep a sync busy for ever.
var ErrBadPagination = errors.New("discogs: pagination does not add up")

// checkPages accepts the page count of page 1 when its items fill it, at
// the per_page Discogs says it used (which is at most what we asked).
func (c *Client) checkPages(p wirePagination) error {
	perPage := p.PerPage
	if perPage < 1 || perPage > c.perPage {
		perPage = c.perPage
	}
	limit := 1
	if p.Items > 0 {
		limit = max(limit, (p.Items-1)/perPage+1)
	}
	if p.Pages > min(limit, maxPages) {
		return fmt.Errorf("%w: %d pages for %d items of %d a page (at most %d pages)", ErrBadPagination, p.Pages, p.Items, perPage, maxPages)
	}
	return nil
}

// isOutOfRange recognises {"message": "Page 4 is outside of valid range
// [1, 3]."}; Discogs sends it with a 404, but the message is what counts.
func isOutOfRange(e *APIError) bool {
	return e.StatusCode >= 400 && e.StatusCode < 500 && e.StatusCode != http.StatusTooManyRequests &&
		strings.Contains(strings.ToLower(e.Message), "outside of valid range")
}

type pageOutcome struct {
	page       int
	w          wirePage
	outOfRange bool
	err        error
}

func (c *Client) fetchAll(ctx context.Context, l list, username string, onPage func(PageResult) error) (Summary, error) {
	if username == "" || username == "." || username == ".." {
		return Summary{}, fmt.Errorf("discogs: invalid username %q", username)
	}
	if onPage == nil {
		onPage = func(PageResult) error { return nil }
	}
	first, _, err := c.fetchPage(ctx, l, username, 1)
	if err != nil {
		return Summary{}, err
	}
	if err := c.checkPages(first.Pagination); err != nil {
		return Summary{}, fmt.Errorf("discogs: %s of %q, page 1: %w", l, username, err)
	}
	acc := &accumulator{
		l: l, username: username, onPage: onPage,
		declared: first.Pagination,
		pages:    max(first.Pagination.Pages, 1),
		ids:      make(map[int64]struct{}),
	}
	if err := acc.deliver(1, first); err != nil {
		return Summary{}, err
	}
	if acc.pages > 1 {
		if err := c.fetchRest(ctx, l, username, acc); err != nil {
			return Summary{}, err
		}
	}
	return acc.summary()
}

// fetchRest fetches pages 2..acc.pages with a pool of workers and delivers
// them from this goroutine, so onPage is never called concurrently. The
// pool size only bounds the pages being worked on; the Client's semaphore
// is what bounds requests in flight across all calls.
func (c *Client) fetchRest(ctx context.Context, l list, username string, acc *accumulator) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan int)
	results := make(chan pageOutcome)
	var wg sync.WaitGroup
	for range min(cap(c.sem), acc.pages-1) {
		wg.Go(func() {
			for p := range jobs {
				w, oor, err := c.fetchPage(ctx, l, username, p)
				select {
				case results <- pageOutcome{page: p, w: w, outOfRange: oor, err: err}:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	go func() {
		defer close(jobs)
		for p := 2; p <= acc.pages; p++ {
			select {
			case jobs <- p:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		wg.Wait()
		close(results)
	}()

	var firstErr error
	received := 0
	for o := range results {
		received++
		if firstErr != nil {
			continue // draining until the workers have stopped
		}
		switch {
		case o.err != nil:
			firstErr = o.err
		case o.outOfRange:
			acc.changed("page %d is now out of range", o.page)
		default:
			firstErr = acc.deliver(o.page, o.w)
		}
		if firstErr != nil {
			cancel()
		}
	}
	if firstErr == nil && received < acc.pages-1 {
		// Cancelled between pages: workers quit without a result.
		firstErr = fmt.Errorf("discogs: %s of %q: %w", l, username, context.Cause(ctx))
	}
	return firstErr
}

// accumulator collects what the pages say and checks that they agree.
type accumulator struct {
	l        list
	username string
	onPage   func(PageResult) error
	declared wirePagination
	pages    int
	fetched  int
	unmapped int
	ids      map[int64]struct{}
	why      string // first sign that the list changed, "" if none
}

func (a *accumulator) changed(format string, args ...any) {
	if a.why == "" {
		a.why = fmt.Sprintf(format, args...)
	}
}

func (a *accumulator) deliver(page int, w wirePage) error {
	wire := w.Wants
	if a.l == listCollection {
		wire = w.Releases
	}
	if p := w.Pagination; p.Items != a.declared.Items || p.Pages != a.declared.Pages {
		a.changed("page %d declares %d items in %d pages, page 1 declared %d in %d",
			page, p.Items, p.Pages, a.declared.Items, a.declared.Pages)
	}
	if page == a.pages && w.Pagination.URLs.Next != "" {
		a.changed("last page %d links to a next page", page)
	}
	res := PageResult{Page: page, Pages: a.pages, Items: make([]Item, 0, len(wire))}
	for i := range wire {
		it := wire[i].item()
		res.Items = append(res.Items, it)
		if it.ReleaseID > 0 {
			a.ids[it.ReleaseID] = struct{}{}
		}
		evs := interactions(a.username, a.l, it)
		if len(evs) == 0 {
			a.unmapped++
		}
		res.Interactions = append(res.Interactions, evs...)
	}
	a.fetched += len(wire)
	if err := a.onPage(res); err != nil {
		return fmt.Errorf("discogs: %s of %q, page %d: callback: %w", a.l, a.username, page, err)
	}
	return nil
}

func (a *accumulator) summary() (Summary, error) {
	s := Summary{
		Pages:      a.declared.Pages,
		Items:      a.declared.Items,
		Fetched:    a.fetched,
		Unmapped:   a.unmapped,
		ReleaseIDs: make([]int64, 0, len(a.ids)),
	}
	for id := range a.ids {
		s.ReleaseIDs = append(s.ReleaseIDs, id)
	}
	slices.Sort(s.ReleaseIDs)
	if a.fetched != a.declared.Items {
		a.changed("received %d items, page 1 declared %d", a.fetched, a.declared.Items)
	}
	if a.why != "" {
		return s, fmt.Errorf("discogs: %s of %q: %s: %w", a.l, a.username, a.why, ErrListChanged)
	}
	return s, nil
}
