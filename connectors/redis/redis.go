// Package redis is cratestream's Redis edge: the freshness of each release's
// marketplace listings (the authority the cart builder checks), the status
// of tracked requests (what the frontend polls), and the bookkeeping of
// profile syncs and scrapes.
package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// Key layout (all under Options.Prefix, default "cs:"):
//
//	fresh:<release>          last successful scrape, Unix ms; expires after FreshFor
//	listings:<release>       set of listing ids last seen on the release's page
//	status:<request>         RequestStatus as JSON; expires after StatusTTL
//	statusch:<request>       pub/sub channel of status updates
//	synced:<user>            last successful sync, Unix ms
//	sync:<kind>:<user>       set of release ids in the user's wantlist/collection at the last sync
//	chunks:<request>         pages fetched so far by a sync request

// Options configures a Store.
type Options struct {
	Addr string
	// Username is the ACL user (Redis 6+); empty is the default user.
	Username string
	Password string
	// TLS, when set, connects over TLS (Redis's tls-port).
	TLS    *tls.Config
	DB     int
	Prefix string
	// FreshFor is how long a scrape keeps a release fresh. Default 24h.
	FreshFor time.Duration
	// StatusTTL is how long a request's status is kept. Default 24h.
	StatusTTL time.Duration
}

// Store is a Redis connection with cratestream's key layout.
type Store struct {
	c   *goredis.Client
	opt Options
}

// Open connects and pings.
func Open(ctx context.Context, o Options) (*Store, error) {
	if o.Addr == "" {
		return nil, errors.New("redis: no address")
	}
	if o.Prefix == "" {
		o.Prefix = "cs:"
	}
	if o.FreshFor <= 0 {
		o.FreshFor = 24 * time.Hour
	}
	if o.StatusTTL <= 0 {
		o.StatusTTL = 24 * time.Hour
	}
	c := goredis.NewClient(&goredis.Options{Addr: o.Addr, Username: o.Username, Password: o.Password, DB: o.DB, TLSConfig: o.TLS,
		DialTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second})
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("redis %s: %w", o.Addr, err)
	}
	return &Store{c: c, opt: o}, nil
}

// Close closes the connection.
func (s *Store) Close() error { return s.c.Close() }

// Client is the underlying client (tests, health checks).
func (s *Store) Client() *goredis.Client { return s.c }

func (s *Store) key(parts ...string) string {
	k := s.opt.Prefix
	for i, p := range parts {
		if i > 0 {
			k += ":"
		}
		k += p
	}
	return k
}

func id(v int64) string { return strconv.FormatInt(v, 10) }

// MarkScraped records a successful scrape of release at time at; the
// release stays fresh for FreshFor.
func (s *Store) MarkScraped(ctx context.Context, release int64, at time.Time) error {
	return s.c.Set(ctx, s.key("fresh", id(release)), at.UnixMilli(), s.opt.FreshFor).Err()
}

// LastScraped returns the last successful scrape of each release that is
// still fresh; releases never scraped or stale are absent.
func (s *Store) LastScraped(ctx context.Context, releases []int64) (map[int64]time.Time, error) {
	out := make(map[int64]time.Time, len(releases))
	const chunk = 1000
	for start := 0; start < len(releases); start += chunk {
		ids := releases[start:min(start+chunk, len(releases))]
		keys := make([]string, len(ids))
		for i, r := range ids {
			keys[i] = s.key("fresh", id(r))
		}
		vals, err := s.c.MGet(ctx, keys...).Result()
		if err != nil {
			return nil, fmt.Errorf("redis freshness: %w", err)
		}
		for i, v := range vals {
			str, ok := v.(string)
			if !ok {
				continue
			}
			ms, err := strconv.ParseInt(str, 10, 64)
			if err != nil {
				continue
			}
			out[ids[i]] = time.UnixMilli(ms)
		}
	}
	return out, nil
}

// ListingIDs returns the listing ids last seen on release's page.
func (s *Store) ListingIDs(ctx context.Context, release int64) ([]int64, error) {
	vals, err := s.c.SMembers(ctx, s.key("listings", id(release))).Result()
	if err != nil {
		return nil, fmt.Errorf("redis listings of %d: %w", release, err)
	}
	out := make([]int64, 0, len(vals))
	for _, v := range vals {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			out = append(out, n)
		}
	}
	return out, nil
}

// SetListingIDs replaces the set of listing ids seen on release's page.
func (s *Store) SetListingIDs(ctx context.Context, release int64, ids []int64) error {
	k := s.key("listings", id(release))
	_, err := s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.Del(ctx, k)
		if len(ids) > 0 {
			members := make([]any, len(ids))
			for i, v := range ids {
				members[i] = id(v)
			}
			p.SAdd(ctx, k, members...)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis listings of %d: %w", release, err)
	}
	return nil
}

// SetStatus stores a request's status and publishes it to the request's
// channel.
func (s *Store) SetStatus(ctx context.Context, st *pb.RequestStatus) error {
	b, err := protojson.Marshal(st)
	if err != nil {
		return err
	}
	_, err = s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.Set(ctx, s.key("status", st.RequestId), b, s.opt.StatusTTL)
		p.Publish(ctx, s.key("statusch", st.RequestId), b)
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis status of %s: %w", st.RequestId, err)
	}
	return nil
}

// Status returns a request's last status.
func (s *Store) Status(ctx context.Context, request string) (*pb.RequestStatus, bool, error) {
	b, err := s.c.Get(ctx, s.key("status", request)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("redis status of %s: %w", request, err)
	}
	var st pb.RequestStatus
	if err := protojson.Unmarshal(b, &st); err != nil {
		return nil, false, fmt.Errorf("redis status of %s: %w", request, err)
	}
	return &st, true, nil
}

// MarkSynced records a successful profile sync of user.
func (s *Store) MarkSynced(ctx context.Context, user string, at time.Time) error {
	return s.c.Set(ctx, s.key("synced", user), at.UnixMilli(), 0).Err()
}

// LastSynced returns the last successful sync of user.
func (s *Store) LastSynced(ctx context.Context, user string) (time.Time, bool, error) {
	ms, err := s.c.Get(ctx, s.key("synced", user)).Int64()
	if errors.Is(err, goredis.Nil) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("redis last sync of %s: %w", user, err)
	}
	return time.UnixMilli(ms), true, nil
}

// SyncedReleases returns the release ids of kind ("wants", "collection") at
// user's last sync.
func (s *Store) SyncedReleases(ctx context.Context, kind, user string) (map[int64]bool, error) {
	vals, err := s.c.SMembers(ctx, s.key("sync", kind, user)).Result()
	if err != nil {
		return nil, fmt.Errorf("redis %s of %s: %w", kind, user, err)
	}
	out := make(map[int64]bool, len(vals))
	for _, v := range vals {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			out[n] = true
		}
	}
	return out, nil
}

// SetSyncedReleases replaces the release ids of kind at user's last sync.
func (s *Store) SetSyncedReleases(ctx context.Context, kind, user string, releases []int64) error {
	k := s.key("sync", kind, user)
	_, err := s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.Del(ctx, k)
		if len(releases) > 0 {
			members := make([]any, len(releases))
			for i, v := range releases {
				members[i] = id(v)
			}
			p.SAdd(ctx, k, members...)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis %s of %s: %w", kind, user, err)
	}
	return nil
}

// AddChunk counts one more fetched page of a sync request and returns the
// count.
func (s *Store) AddChunk(ctx context.Context, request string) (int64, error) {
	k := s.key("chunks", request)
	n, err := s.c.Incr(ctx, k).Result()
	if err != nil {
		return 0, fmt.Errorf("redis chunks of %s: %w", request, err)
	}
	s.c.Expire(ctx, k, s.opt.StatusTTL)
	return n, nil
}
