package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/internal/stream"
	"github.com/cratestream/cratestream/processors/recommend"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// StoreClient reads running processors' stores by key through their ops
// servers' lookup API (stream.StorePath<processor>/<store>/<base64url
// key>). It finds the instances the way the runtime does: the members of
// the processor's consumer group advertise their address in their client id
// ("cratestream:<processor>:<instance>@<host:port>"); the owner of the
// key's partition is asked first, then the others (an instance that does
// not own the key answers 421). Static addresses, when given, are tried
// last (or alone, without Kafka).
type StoreClient struct {
	adm    *kadm.Client
	secret string
	static []string
	http   *http.Client

	mu     sync.Mutex
	groups map[string]groupView
}

type groupView struct {
	fetched time.Time
	members []memberView
	counts  map[string]int32 // partitions of each group topic
}

type memberView struct {
	addr  string
	owned map[string]map[int32]bool
}

// NewStoreClient returns a client discovering instances through adm (may be
// nil) and trying static addresses (host:port) too, presenting secret, the
// lookup secret the instances share.
func NewStoreClient(adm *kadm.Client, secret string, static ...string) *StoreClient {
	return &StoreClient{adm: adm, secret: secret, static: static, http: &http.Client{Timeout: 5 * time.Second}, groups: make(map[string]groupView)}
}

// Get returns the committed value of key in processor's store.
func (c *StoreClient) Get(ctx context.Context, processor, store string, key []byte) ([]byte, bool, error) {
	var lastErr error
	for attempt := 0; attempt < 2; attempt++ {
		addrs, err := c.candidates(ctx, processor, key, attempt > 0)
		if err != nil {
			lastErr = err
		}
		for _, addr := range addrs {
			v, found, served, err := c.remoteGet(ctx, addr, processor, store, key)
			if err != nil {
				lastErr = err
				continue
			}
			if served {
				return v, found, nil
			}
		}
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("no running instance of %s serves the key (rebalancing, or not started?)", processor)
	}
	return nil, false, lastErr
}

func (c *StoreClient) candidates(ctx context.Context, processor string, key []byte, refresh bool) ([]string, error) {
	var out []string
	seen := make(map[string]bool)
	add := func(a string) {
		if a != "" && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	var err error
	if c.adm != nil {
		var g groupView
		g, err = c.group(ctx, processor, refresh)
		for _, m := range g.members {
			for t, parts := range m.owned {
				if n := g.counts[t]; n > 0 && parts[stream.PartitionFor(key, n)] {
					add(m.addr)
				}
			}
		}
		for _, m := range g.members {
			add(m.addr)
		}
	}
	for _, a := range c.static {
		add(a)
	}
	return out, err
}

func (c *StoreClient) group(ctx context.Context, processor string, refresh bool) (groupView, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g, ok := c.groups[processor]; ok && !refresh && time.Since(g.fetched) < 2*time.Second {
		return g, nil
	}
	groups, err := c.adm.DescribeGroups(ctx, processor)
	if err != nil {
		return groupView{}, fmt.Errorf("describe group %s: %w", processor, err)
	}
	g := groupView{fetched: time.Now(), counts: make(map[string]int32)}
	topicSet := make(map[string]bool)
	for _, m := range groups[processor].Members {
		i := strings.LastIndexByte(m.ClientID, '@')
		if i < 0 || i == len(m.ClientID)-1 {
			continue
		}
		mv := memberView{addr: m.ClientID[i+1:], owned: make(map[string]map[int32]bool)}
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range a.Topics {
				topicSet[t.Topic] = true
				mv.owned[t.Topic] = make(map[int32]bool)
				for _, p := range t.Partitions {
					mv.owned[t.Topic][p] = true
				}
			}
		}
		g.members = append(g.members, mv)
	}
	if len(topicSet) > 0 {
		names := make([]string, 0, len(topicSet))
		for t := range topicSet {
			names = append(names, t)
		}
		if details, err := c.adm.ListTopics(ctx, names...); err == nil {
			for t, d := range details {
				if d.Err == nil {
					g.counts[t] = int32(len(d.Partitions))
				}
			}
		}
	}
	c.groups[processor] = g
	return g, nil
}

// remoteGet asks one instance. served is false when that instance does not
// serve the key (421, or a 404 that is not the store's "not found").
func (c *StoreClient) remoteGet(ctx context.Context, addr, processor, store string, key []byte) (v []byte, found, served bool, err error) {
	return stream.FetchStore(ctx, c.http, addr, c.secret, processor, store, key)
}

// RecommendationView is a user's recommendations.
type RecommendationView struct {
	User           string          `json:"user"`
	ModelVersion   string          `json:"model_version"`
	CascadeLevel   string          `json:"cascade_level"`
	ProfileVersion int64           `json:"profile_version"`
	Items          []ScoredRelease `json:"items"`
	// Wantlist counts the wantlist candidates (not listed).
	Wantlist int `json:"wantlist"`
}

// ScoredRelease is a release with a score.
type ScoredRelease struct {
	ReleaseID int64 `json:"release_id"`
	ReleaseMeta
	Score float64 `json:"score"`
	URL   string  `json:"url"`
}

func releaseURL(id int64) string {
	return "https://www.discogs.com/release/" + strconv.FormatInt(id, 10)
}

func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		return 0, fieldErr(name, "%q: want an integer in %d..%d", s, lo, hi)
	}
	return v, nil
}

func (s *Server) recommendations(w http.ResponseWriter, r *http.Request, user string) {
	name := r.PathValue("username")
	if !strings.EqualFold(name, user) {
		writeError(w, http.StatusForbidden, fmt.Sprintf("logged in as %s: cannot read the recommendations of %s", user, name), "username")
		return
	}
	limit, err := intParam(r, "limit", 50, 1, 500)
	if err != nil {
		writeErr(w, err)
		return
	}
	if s.cfg.Stores == nil {
		writeError(w, http.StatusServiceUnavailable, "store lookups are not configured", "")
		return
	}
	raw, ok, err := s.cfg.Stores.Get(r.Context(), recommend.Name, recommend.CandidatesStore, []byte(user))
	if err != nil {
		s.cfg.Logger.Warn("recommendations lookup", "user", user, "err", err)
		writeError(w, http.StatusServiceUnavailable, "recommendations unavailable: "+err.Error(), "")
		return
	}
	if !ok {
		writeError(w, http.StatusNotFound, "no recommendations for "+user+" yet (sync your collection first)", "username")
		return
	}
	var c pb.Candidates
	if err := proto.Unmarshal(raw, &c); err != nil {
		writeErr(w, fmt.Errorf("candidates of %s: %w", user, err))
		return
	}
	v := RecommendationView{User: user, ModelVersion: c.ModelVersion, CascadeLevel: c.CascadeLevel, ProfileVersion: c.ProfileVersion, Items: []ScoredRelease{}}
	for _, cd := range c.Candidates {
		switch cd.Source {
		case pb.CandidateSource_CANDIDATE_SOURCE_WANTLIST:
			v.Wantlist++
		default:
			if len(v.Items) < limit {
				v.Items = append(v.Items, ScoredRelease{ReleaseID: cd.ReleaseId, ReleaseMeta: releaseMeta(s.cfg.Releases, cd.ReleaseId), Score: cd.Score, URL: releaseURL(cd.ReleaseId)})
			}
		}
	}
	writeJSON(w, http.StatusOK, v)
}

// SimilarView is a release's similar releases.
type SimilarView struct {
	ReleaseID int64 `json:"release_id"`
	ReleaseMeta
	Items []ScoredRelease `json:"items"`
}

func (s *Server) similar(w http.ResponseWriter, r *http.Request, _ string) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("release id %q: want a positive integer", r.PathValue("id")), "id")
		return
	}
	limit, err := intParam(r, "limit", 20, 1, 100)
	if err != nil {
		writeErr(w, err)
		return
	}
	if s.cfg.Similar == nil {
		writeError(w, http.StatusServiceUnavailable, "similar releases are not configured", "")
		return
	}
	ids, scores, err := s.cfg.Similar(id, limit)
	switch {
	case errors.Is(err, ErrUnknown):
		writeError(w, http.StatusNotFound, fmt.Sprintf("release %d is unknown to the model", id), "id")
		return
	case errors.Is(err, ErrUnavailable):
		writeError(w, http.StatusServiceUnavailable, "no model trained yet", "")
		return
	case err != nil:
		writeErr(w, err)
		return
	}
	v := SimilarView{ReleaseID: id, ReleaseMeta: releaseMeta(s.cfg.Releases, id), Items: make([]ScoredRelease, 0, len(ids))}
	for i, rid := range ids {
		v.Items = append(v.Items, ScoredRelease{ReleaseID: rid, ReleaseMeta: releaseMeta(s.cfg.Releases, rid), Score: shortFloat(scores[i]), URL: releaseURL(rid)})
	}
	writeJSON(w, http.StatusOK, v)
}

// ModelSimilar adapts the recommend processor's model store (a copy the
// gateway follows) to a SimilarFunc.
func ModelSimilar(models *recommend.ModelStore) SimilarFunc {
	return func(release int64, n int) ([]int64, []float32, error) {
		m := models.Current()
		if m == nil {
			return nil, nil, ErrUnavailable
		}
		ids, scores, err := m.Similar(release, n)
		if errors.Is(err, recommend.ErrUnknownRelease) {
			return nil, nil, ErrUnknown
		}
		return ids, scores, err
	}
}

// shortFloat widens a float32 to the float64 with the same shortest
// decimal text (0.9, not 0.8999999761581421).
func shortFloat(f float32) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(float64(f), 'g', -1, 32), 64)
	return v
}
