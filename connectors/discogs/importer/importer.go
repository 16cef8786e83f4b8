// Package importer is profile sync: "is this user up to date? fetch their
// wantlist and collection". It turns a user's Discogs wantlist and
// collection into interactions.v1 events — additions for what is there,
// removals for what disappeared since the last sync — reporting each stage
// of the request, and runs as a worker consuming sync-requests.v1.
package importer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/connectors/discogs/api"
	"github.com/cratestream/cratestream/connectors/redis"
	"github.com/cratestream/cratestream/internal/status"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

// Config configures an Importer.
type Config struct {
	API *api.Client
	// Redis keeps the last sync time and the lists of the last sync (for
	// removals); nil syncs without either (no skipping, no removals).
	Redis *redis.Store
	// Producer writes interactions, sync-done and request statuses.
	Producer *kgo.Client
	// MinInterval: a user synced more recently is skipped unless the
	// request forces it. Default 1h.
	MinInterval time.Duration
	Logger      *slog.Logger
	Metrics     prometheus.Registerer
	Now         func() time.Time
}

// Importer syncs users.
type Importer struct {
	cfg      Config
	reporter *status.Reporter
	synced   *prometheus.CounterVec
	events   prometheus.Counter
}

// New returns an importer.
func New(cfg Config) (*Importer, error) {
	if cfg.API == nil || cfg.Producer == nil {
		return nil, errors.New("importer: API client and producer are required")
	}
	if cfg.MinInterval <= 0 {
		cfg.MinInterval = time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Metrics == nil {
		cfg.Metrics = prometheus.NewRegistry()
	}
	im := &Importer{
		cfg:      cfg,
		reporter: &status.Reporter{Redis: cfg.Redis, Producer: cfg.Producer, Now: cfg.Now},
		synced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cratestream_importer_syncs_total", Help: "Profile syncs by result (synced, skipped, failed).",
		}, []string{"result"}),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cratestream_importer_interactions_total", Help: "Interactions produced by profile syncs.",
		}),
	}
	for _, c := range []prometheus.Collector{im.synced, im.events} {
		if err := cfg.Metrics.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
		}
	}
	return im, nil
}

func (im *Importer) report(ctx context.Context, req *pb.SyncRequest, stage string, done, total int, msg string, errText string, finished bool) {
	err := im.reporter.Report(ctx, &pb.RequestStatus{
		RequestId: req.RequestId, Kind: pb.RequestKind_REQUEST_KIND_SYNC, UserId: req.UserId,
		Stage: stage, Done: int32(done), Total: int32(total), Message: msg, Error: errText, Finished: finished,
	})
	if err != nil {
		im.cfg.Logger.Warn("report sync status", "request", req.RequestId, "err", err)
	}
}

// list is one of the two lists a sync fetches.
type list struct {
	name   string // Redis kind and status wording
	fetch  func(context.Context, string, func(api.PageResult) error) (api.Summary, error)
	remove pb.InteractionKind
}

// Sync brings one user's profile up to date and returns the sync-done
// record it also produced.
func (im *Importer) Sync(ctx context.Context, req *pb.SyncRequest) (*pb.SyncDone, error) {
	if req.Username == "" {
		req.Username = req.UserId
	}
	if req.UserId == "" {
		req.UserId = req.Username
	}
	done := &pb.SyncDone{RequestId: req.RequestId, UserId: req.UserId}
	im.report(ctx, req, "queued", 0, 0, "checking "+req.Username, "", false)
	if im.cfg.Redis != nil && !req.Force {
		last, ok, err := im.cfg.Redis.LastSynced(ctx, req.UserId)
		if err != nil {
			return nil, err
		}
		if ok && im.cfg.Now().Sub(last) < im.cfg.MinInterval {
			done.Skipped = true
			im.synced.WithLabelValues("skipped").Inc()
			im.report(ctx, req, "done", 0, 0, fmt.Sprintf("%s is up to date (synced %s ago)", req.Username, im.cfg.Now().Sub(last).Round(time.Second)), "", true)
			return done, im.emitDone(ctx, done)
		}
	}
	lists := []list{
		{"wants", im.cfg.API.Wantlist, pb.InteractionKind_INTERACTION_KIND_WANT_REMOVE},
		{"collection", im.cfg.API.Collection, pb.InteractionKind_INTERACTION_KIND_COLLECT_REMOVE},
	}
	var (
		mu         sync.Mutex
		pagesDone  int
		pagesTotal int
		produceErr error
	)
	produce := func(ev *pb.Interaction) {
		b, err := proto.Marshal(ev)
		if err != nil {
			return
		}
		im.cfg.Producer.Produce(ctx, &kgo.Record{Topic: topics.Interactions().Name, Key: []byte(ev.UserId), Value: b},
			func(_ *kgo.Record, err error) {
				if err != nil {
					mu.Lock()
					produceErr = err
					mu.Unlock()
				}
			})
		im.events.Inc()
	}
	for _, l := range lists {
		sum, err := l.fetch(ctx, req.Username, func(pr api.PageResult) error {
			for _, ev := range pr.Interactions {
				ev.UserId = req.UserId
				produce(ev)
			}
			if pr.Page == 1 {
				pagesTotal += pr.Pages
			}
			pagesDone++
			if im.cfg.Redis != nil {
				if _, err := im.cfg.Redis.AddChunk(ctx, req.RequestId); err != nil {
					return err
				}
			}
			im.report(ctx, req, "fetching", pagesDone, pagesTotal, fmt.Sprintf("fetching %s: %d/%d pages", l.name, pagesDone, pagesTotal), "", false)
			return nil
		})
		changed := errors.Is(err, api.ErrListChanged)
		if err != nil && !changed {
			return im.fail(ctx, req, done, fmt.Errorf("fetch %s of %s: %w", l.name, req.Username, err))
		}
		if l.name == "wants" {
			done.Wantlist = int32(len(sum.ReleaseIDs))
		} else {
			done.Collection = int32(len(sum.ReleaseIDs))
		}
		if im.cfg.Redis == nil || changed {
			// Without the previous lists, or with a list that moved
			// while we read it, removals cannot be trusted: the
			// next sync emits them.
			continue
		}
		prev, err := im.cfg.Redis.SyncedReleases(ctx, l.name, req.UserId)
		if err != nil {
			return im.fail(ctx, req, done, err)
		}
		now := im.cfg.Now().UnixMilli()
		current := make(map[int64]bool, len(sum.ReleaseIDs))
		for _, id := range sum.ReleaseIDs {
			current[id] = true
		}
		for id := range prev {
			if !current[id] {
				produce(&pb.Interaction{
					EventId:     "sync:" + req.RequestId + ":" + l.name + "-remove:" + strconv.FormatInt(id, 10),
					EventTimeMs: now, UserId: req.UserId, ReleaseId: id, Kind: l.remove,
					Source: pb.InteractionSource_INTERACTION_SOURCE_DISCOGS_API,
				})
			}
		}
		// The new list is recorded only once its events are durable.
		if err := im.cfg.Producer.Flush(ctx); err != nil {
			return im.fail(ctx, req, done, err)
		}
		if err := im.cfg.Redis.SetSyncedReleases(ctx, l.name, req.UserId, sum.ReleaseIDs); err != nil {
			return im.fail(ctx, req, done, err)
		}
	}
	if err := im.cfg.Producer.Flush(ctx); err != nil {
		return im.fail(ctx, req, done, err)
	}
	mu.Lock()
	perr := produceErr
	mu.Unlock()
	if perr != nil {
		return im.fail(ctx, req, done, fmt.Errorf("produce interactions: %w", perr))
	}
	if im.cfg.Redis != nil {
		if err := im.cfg.Redis.MarkSynced(ctx, req.UserId, im.cfg.Now()); err != nil {
			return im.fail(ctx, req, done, err)
		}
	}
	im.synced.WithLabelValues("synced").Inc()
	im.report(ctx, req, "done", pagesDone, pagesTotal,
		fmt.Sprintf("synced %s: %d in wantlist, %d in collection", req.Username, done.Wantlist, done.Collection), "", true)
	return done, im.emitDone(ctx, done)
}

func (im *Importer) fail(ctx context.Context, req *pb.SyncRequest, done *pb.SyncDone, err error) (*pb.SyncDone, error) {
	im.synced.WithLabelValues("failed").Inc()
	done.Error = err.Error()
	im.report(ctx, req, "failed", 0, 0, "sync failed", err.Error(), true)
	if eerr := im.emitDone(ctx, done); eerr != nil {
		im.cfg.Logger.Warn("emit sync-done", "err", eerr)
	}
	return done, err
}

func (im *Importer) emitDone(ctx context.Context, done *pb.SyncDone) error {
	done.EventTimeMs = im.cfg.Now().UnixMilli()
	done.EventId = "sync-done:" + done.RequestId
	b, err := proto.Marshal(done)
	if err != nil {
		return err
	}
	return im.cfg.Producer.ProduceSync(ctx, &kgo.Record{Topic: topics.SyncDone().Name, Key: []byte(done.UserId), Value: b}).FirstErr()
}
