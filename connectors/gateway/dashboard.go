package gateway

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	chsink "github.com/cratestream/cratestream/connectors/clickhouse"
)

// The dashboard endpoints. Market and recommendation quality come from
// ClickHouse (the clickhouse-sink's tables, through chsink.Queries); the
// pipeline view comes from the Prometheus registry of the gateway's own
// process (Config.Metrics), which holds the series of every stream
// processor running in that process: the demo and `cratestream run gateway
// <processors...>` see their processors there, a gateway running alone sees
// none (its dashboard is then Grafana's, on the Prometheus that scrapes
// every instance).

// Dashboard is what the dashboard needs of ClickHouse (a *chsink.Queries).
type Dashboard interface {
	MarketOverview(ctx context.Context) (*chsink.MarketOverview, error)
	PriceDistribution(ctx context.Context, release int64) (*chsink.PriceDistribution, error)
	RecQuality(ctx context.Context, since time.Time) ([]chsink.RecQuality, error)
}

const noClickHouse = "the dashboard needs ClickHouse and none is configured (run the clickhouse-sink and give the gateway --clickhouse / CRATESTREAM_CLICKHOUSE)"

// dashboard returns the ClickHouse queries or writes the 503.
func (s *Server) dashboard(w http.ResponseWriter) (Dashboard, bool) {
	if s.cfg.Dashboard == nil {
		writeError(w, http.StatusServiceUnavailable, noClickHouse, "")
		return nil, false
	}
	return s.cfg.Dashboard, true
}

// dashboardErr writes a query's error: 400 for bad parameters, 503 when
// ClickHouse failed (it is down, or the sink has not created the tables).
func (s *Server) dashboardErr(w http.ResponseWriter, what string, err error) {
	if errors.Is(err, chsink.ErrBadQuery) {
		writeError(w, http.StatusBadRequest, err.Error(), "")
		return
	}
	s.cfg.Logger.Warn("dashboard query", "query", what, "err", err)
	writeError(w, http.StatusServiceUnavailable, "ClickHouse query failed: "+err.Error(), "")
}

func (s *Server) dashMarket(w http.ResponseWriter, r *http.Request, _ string) {
	q, ok := s.dashboard(w)
	if !ok {
		return
	}
	m, err := q.MarketOverview(r.Context())
	if err != nil {
		s.dashboardErr(w, "market overview", err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

func (s *Server) dashPrices(w http.ResponseWriter, r *http.Request, _ string) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("release id %q: want a positive integer", r.PathValue("id")), "id")
		return
	}
	q, ok := s.dashboard(w)
	if !ok {
		return
	}
	p, err := q.PriceDistribution(r.Context(), id)
	if err != nil {
		s.dashboardErr(w, "price distribution", err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// RecQualityView is the online recommendation quality.
type RecQualityView struct {
	// Since is the start of the window (RFC 3339), empty for all time.
	Since string              `json:"since,omitempty"`
	Rows  []chsink.RecQuality `json:"rows"`
}

func (s *Server) dashRecQuality(w http.ResponseWriter, r *http.Request, _ string) {
	var since time.Time
	if v := r.URL.Query().Get("since"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("since %q: want a positive duration (24h, 90m)", v), "since")
			return
		}
		since = s.cfg.Now().Add(-d)
	}
	q, ok := s.dashboard(w)
	if !ok {
		return
	}
	rows, err := q.RecQuality(r.Context(), since)
	if err != nil {
		s.dashboardErr(w, "rec quality", err)
		return
	}
	v := RecQualityView{Rows: rows}
	if rows == nil {
		v.Rows = []chsink.RecQuality{}
	}
	if !since.IsZero() {
		v.Since = since.UTC().Format(time.RFC3339)
	}
	writeJSON(w, http.StatusOK, v)
}

// PipelineView is the stream processors' throughput, lag and dead letters.
type PipelineView struct {
	// Source says where the numbers come from.
	Source     string          `json:"source"`
	Time       string          `json:"time"`
	Processors []ProcessorView `json:"processors"`
	// History is the samples taken by earlier calls (at most one a
	// second, the last pipelineHistory of them), oldest first: the charts
	// of throughput and lag.
	History []PipelineSample `json:"history"`
}

// ProcessorView is one processor's counters.
type ProcessorView struct {
	Processor string `json:"processor"`
	// RecordsIn and RecordsOut are totals since the process started.
	RecordsIn  float64 `json:"records_in"`
	RecordsOut float64 `json:"records_out"`
	// InPerSec is the input rate between the two latest samples (0 until
	// there are two).
	InPerSec    float64 `json:"in_per_sec"`
	Lag         float64 `json:"lag"`
	DeadLetters float64 `json:"dead_letters"`
	Tasks       float64 `json:"tasks"`
}

// PipelineSample is one sample of every processor's rate and lag.
type PipelineSample struct {
	Time     string             `json:"time"`
	InPerSec map[string]float64 `json:"in_per_sec"`
	Lag      map[string]float64 `json:"lag"`
}

const pipelineHistory = 120

// pipelineState keeps the samples between calls.
type pipelineState struct {
	mu      sync.Mutex
	samples []pipelineSample
}

type pipelineSample struct {
	at   time.Time
	in   map[string]float64
	lag  map[string]float64
	rate map[string]float64
}

func (s *Server) dashPipeline(w http.ResponseWriter, r *http.Request, _ string) {
	if s.cfg.Metrics == nil {
		writeError(w, http.StatusServiceUnavailable, "no metrics registry: the pipeline view reads the Prometheus registry of the processors running in the gateway's process", "")
		return
	}
	procs, err := gatherPipeline(s.cfg.Metrics)
	if err != nil {
		writeErr(w, fmt.Errorf("gather metrics: %w", err))
		return
	}
	now := s.cfg.Now()
	ps := &s.pipeline
	ps.mu.Lock()
	cur := pipelineSample{at: now, in: map[string]float64{}, lag: map[string]float64{}, rate: map[string]float64{}}
	for _, p := range procs {
		cur.in[p.Processor] = p.RecordsIn
		cur.lag[p.Processor] = p.Lag
	}
	n := len(ps.samples)
	if n > 0 {
		prev := ps.samples[n-1]
		if dt := now.Sub(prev.at).Seconds(); dt >= 1 {
			for name, v := range cur.in {
				cur.rate[name] = math.Max(0, v-prev.in[name]) / dt
			}
		} else {
			cur.rate = prev.rate // too soon for a new sample: the last rate
		}
	}
	if n == 0 || now.Sub(ps.samples[n-1].at) >= time.Second {
		ps.samples = append(ps.samples, cur)
		if len(ps.samples) > pipelineHistory {
			ps.samples = append(ps.samples[:0], ps.samples[len(ps.samples)-pipelineHistory:]...)
		}
	}
	v := PipelineView{Source: "prometheus registry of the gateway's process", Time: now.UTC().Format(time.RFC3339Nano),
		Processors: procs, History: make([]PipelineSample, 0, len(ps.samples))}
	for i, smp := range ps.samples {
		if i == 0 {
			continue // no rate yet
		}
		v.History = append(v.History, PipelineSample{Time: smp.at.UTC().Format(time.RFC3339Nano), InPerSec: round2(smp.rate), Lag: smp.lag})
	}
	for i := range v.Processors {
		v.Processors[i].InPerSec = math.Round(cur.rate[v.Processors[i].Processor]*100) / 100
	}
	ps.mu.Unlock()
	writeJSON(w, http.StatusOK, v)
}

func round2(m map[string]float64) map[string]float64 {
	out := make(map[string]float64, len(m))
	for k, v := range m {
		out[k] = math.Round(v*100) / 100
	}
	return out
}

// gatherPipeline sums the stream runtime's series (internal/stream/metrics.go)
// by processor label.
func gatherPipeline(g prometheus.Gatherer) ([]ProcessorView, error) {
	mfs, err := g.Gather()
	if err != nil {
		return nil, err
	}
	// (No dto import: go.mod has client_model only indirectly.)
	by := map[string]*ProcessorView{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "processor" {
					name = l.GetValue()
				}
			}
			if name == "" {
				continue
			}
			p := by[name]
			if p == nil {
				p = &ProcessorView{Processor: name}
				by[name] = p
			}
			var field *float64
			switch mf.GetName() {
			case "cratestream_records_in_total":
				field = &p.RecordsIn
			case "cratestream_records_out_total":
				field = &p.RecordsOut
			case "cratestream_consumer_lag":
				field = &p.Lag
			case "cratestream_dlq_records_total":
				field = &p.DeadLetters
			case "cratestream_tasks":
				field = &p.Tasks
			default:
				continue
			}
			*field += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	out := make([]ProcessorView, 0, len(by))
	for _, p := range by {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Processor < out[j].Processor })
	return out, nil
}
