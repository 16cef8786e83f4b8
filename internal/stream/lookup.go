package stream

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Key lookups read the committed state of a running processor by key, from
// any instance: the owner of the key's partition answers. Instances find
// each other through the group's member client ids, which carry the
// AdvertiseAddr ("cratestream:<processor>:<instance>@<host:port>").

// StorePath is the HTTP path prefix of store lookups; the full path is
// StorePath + "<processor>/<store>/<base64url key>".
const StorePath = "/v1/stores/"

type lookupState struct {
	mu      sync.Mutex
	cl      *kgo.Client
	adm     *kadm.Client
	owners  map[int32]string
	fetched time.Time
	http    *http.Client
}

// LocalGet returns the committed value of key in store if this instance
// owns the key's partition, and ErrNotLocal otherwise.
func (r *Runner) LocalGet(store string, key []byte) ([]byte, bool, error) {
	idx := -1
	for i, s := range r.p.stores {
		if s.storeName() == store {
			idx = i
		}
	}
	if idx < 0 {
		return nil, false, fmt.Errorf("processor %s has no store %q", r.p.name, store)
	}
	n := r.partitionCount()
	if n == 0 {
		return nil, false, ErrNotLocal
	}
	p := PartitionFor(key, n)
	r.tmu.RLock()
	t := r.tasks[p]
	r.tmu.RUnlock()
	if t == nil {
		return nil, false, ErrNotLocal
	}
	return t.stores[idx].base().Get(key)
}

func (r *Runner) partitionCount() int32 {
	r.tmu.RLock()
	defer r.tmu.RUnlock()
	return r.partitions
}

// Get returns the committed value of key in store, asking the owning
// instance when it is not this one.
func (r *Runner) Get(ctx context.Context, store string, key []byte) ([]byte, bool, error) {
	v, ok, err := r.LocalGet(store, key)
	if !errors.Is(err, ErrNotLocal) {
		return v, ok, err
	}
	n := r.partitionCount()
	if n == 0 {
		return nil, false, fmt.Errorf("processor %s: not started yet", r.p.name)
	}
	p := PartitionFor(key, n)
	for attempt := 0; attempt < 2; attempt++ {
		addr, err := r.ownerOf(ctx, p, attempt > 0)
		if err != nil {
			return nil, false, err
		}
		v, ok, err := r.remoteGet(ctx, addr, store, key)
		if errors.Is(err, ErrNotLocal) {
			continue // ownership moved: refresh and retry once
		}
		return v, ok, err
	}
	return nil, false, fmt.Errorf("partition %d of %s: %w", p, r.p.name, ErrNotLocal)
}

// Lookup is the typed Get of a table.
func Lookup[K comparable, V any](ctx context.Context, r *Runner, t *Table[K, V], key K) (V, bool, error) {
	var zero V
	kb, err := t.key.Append(nil, key)
	if err != nil {
		return zero, false, err
	}
	raw, ok, err := r.Get(ctx, t.name, kb)
	if err != nil || !ok {
		return zero, false, err
	}
	v, err := t.value.Decode(raw)
	if err != nil {
		return zero, false, fmt.Errorf("store %s: decode: %w", t.name, err)
	}
	return v, true, nil
}

func (r *Runner) lookups() *lookupState {
	r.lookupOnce.Do(func() {
		r.lk = &lookupState{http: &http.Client{Timeout: 5 * time.Second}}
	})
	return r.lk
}

// ownerOf returns the advertised address of the member owning partition p.
func (r *Runner) ownerOf(ctx context.Context, p int32, refresh bool) (string, error) {
	lk := r.lookups()
	lk.mu.Lock()
	defer lk.mu.Unlock()
	if lk.cl == nil {
		cl, err := kgo.NewClient(r.baseOpts()...)
		if err != nil {
			return "", err
		}
		lk.cl, lk.adm = cl, kadm.NewClient(cl)
	}
	if refresh || lk.owners == nil || time.Since(lk.fetched) > 2*time.Second {
		groups, err := lk.adm.DescribeGroups(ctx, r.p.name)
		if err != nil {
			return "", fmt.Errorf("describe group %s: %w", r.p.name, err)
		}
		owners := make(map[int32]string)
		g := groups[r.p.name]
		for _, m := range g.Members {
			assigned, ok := m.Assigned.AsConsumer()
			if !ok {
				continue
			}
			addr := m.ClientID[strings.LastIndexByte(m.ClientID, '@')+1:]
			for _, t := range assigned.Topics {
				if !r.stateful[t.Topic] {
					continue
				}
				for _, part := range t.Partitions {
					owners[part] = addr
				}
			}
		}
		lk.owners, lk.fetched = owners, time.Now()
	}
	addr, ok := lk.owners[p]
	if !ok || addr == "" {
		return "", fmt.Errorf("partition %d of %s: no owner with an advertised address (rebalancing?)", p, r.p.name)
	}
	return addr, nil
}

func (r *Runner) remoteGet(ctx context.Context, addr, store string, key []byte) ([]byte, bool, error) {
	v, found, served, err := FetchStore(ctx, r.lookups().http, addr, r.cfg.LookupSecret, r.p.name, store, key)
	if err == nil && !served {
		return nil, false, ErrNotLocal
	}
	return v, found, err
}

// LookupHeader carries the shared secret of store lookups between
// instances, as "Bearer <secret>".
const LookupHeader = "Authorization"

// FetchStore asks the instance at addr (host:port of its ops server, or a
// base URL) for
// key of processor's store, presenting the lookup secret. served is false
// when that instance does not own the key (or does not run the processor).
func FetchStore(ctx context.Context, hc *http.Client, addr, secret, processor, store string, key []byte) (v []byte, found, served bool, err error) {
	base := addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u := strings.TrimRight(base, "/") + StorePath + url.PathEscape(processor) + "/" + url.PathEscape(store) + "/" + base64.RawURLEncoding.EncodeToString(key)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, false, false, err
	}
	if secret != "" {
		req.Header.Set(LookupHeader, "Bearer "+secret)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, false, false, fmt.Errorf("lookup at %s: %w", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, false, false, err
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		return body, true, true, nil
	case resp.StatusCode == http.StatusNotFound && strings.TrimSpace(string(body)) == "not found":
		return nil, false, true, nil
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMisdirectedRequest:
		return nil, false, false, nil // not this instance's key, or not its processor
	case resp.StatusCode == http.StatusUnauthorized:
		return nil, false, false, fmt.Errorf("lookup at %s refused: the instances do not share the lookup secret (%s)", addr, strings.TrimSpace(string(body)))
	default:
		return nil, false, false, fmt.Errorf("lookup at %s: %s: %s", addr, resp.Status, strings.TrimSpace(string(body)))
	}
}

// ServeHTTP answers GET StorePath<processor>/<store>/<base64url key> from
// this instance's committed state: 200 with the value bytes, 404 when absent,
// 421 when another instance owns the key, 401 without the lookup secret
// (Config.LookupSecret; without one configured, every remote lookup is
// refused: collectors' state is not for whoever reaches the ops port).
func (r *Runner) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if !r.authorized(req) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="cratestream-stores"`)
		msg := "store lookups need the instances' shared lookup secret"
		if r.cfg.LookupSecret == "" {
			msg = "store lookups are disabled on this instance: no lookup secret is configured"
		}
		http.Error(w, msg, http.StatusUnauthorized)
		return
	}
	if req.Method != http.MethodGet {
		http.Error(w, "GET only", http.StatusMethodNotAllowed)
		return
	}
	rest := strings.TrimPrefix(req.URL.EscapedPath(), StorePath)
	parts := strings.Split(rest, "/")
	if len(parts) != 3 {
		http.Error(w, "want "+StorePath+"<processor>/<store>/<base64url key>", http.StatusBadRequest)
		return
	}
	proc, _ := url.PathUnescape(parts[0])
	store, _ := url.PathUnescape(parts[1])
	if proc != r.p.name {
		http.Error(w, "unknown processor "+proc, http.StatusNotFound)
		return
	}
	key, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		http.Error(w, "key is not base64url: "+err.Error(), http.StatusBadRequest)
		return
	}
	v, ok, err := r.LocalGet(store, key)
	switch {
	case errors.Is(err, ErrNotLocal):
		http.Error(w, "not owned here", http.StatusMisdirectedRequest)
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
	case !ok:
		http.Error(w, "not found", http.StatusNotFound)
	default:
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(v)
	}
}

func (r *Runner) authorized(req *http.Request) bool {
	if r.cfg.LookupSecret == "" {
		return false
	}
	got, ok := strings.CutPrefix(req.Header.Get(LookupHeader), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(r.cfg.LookupSecret)) == 1
}

// AdvertisedAddr is where this instance serves store lookups.
func (r *Runner) AdvertisedAddr() string { return r.cfg.AdvertiseAddr }

func (r *Runner) closeLookups() {
	if r.lk != nil && r.lk.cl != nil {
		r.lk.cl.Close()
	}
}
