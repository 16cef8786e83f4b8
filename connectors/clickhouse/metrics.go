package clickhouse

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics of the sink. Every series is labelled by table (or topic), so one
// registry can serve several sinks only if they are wrapped with distinct
// constant labels by the caller.
type metrics struct {
	rows          *prometheus.CounterVec
	insertSecs    *prometheus.HistogramVec
	batchRows     *prometheus.HistogramVec
	retries       *prometheus.CounterVec
	failures      *prometheus.CounterVec
	dlq           *prometheus.CounterVec
	commitErrors  prometheus.Counter
	paused        prometheus.Gauge
	fxRates       prometheus.Gauge
	sellersCached prometheus.Gauge
	sideInvalid   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	return &metrics{
		rows: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cratestream_clickhouse_rows_inserted_total", Help: "Rows ClickHouse acknowledged, by table.",
		}, []string{"table"})),
		insertSecs: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cratestream_clickhouse_insert_seconds", Help: "Duration of one successful INSERT batch, by table.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"table"})),
		batchRows: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cratestream_clickhouse_batch_rows", Help: "Rows per INSERT batch, by table.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10),
		}, []string{"table"})),
		retries: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cratestream_clickhouse_insert_retries_total", Help: "INSERT batches retried after a failure, by table.",
		}, []string{"table"})),
		failures: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cratestream_clickhouse_insert_failures_total", Help: "Failed INSERT (or dead-letter) attempts, by table.",
		}, []string{"table"})),
		dlq: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cratestream_clickhouse_dlq_records_total", Help: "Records sent to the dead-letter topic, by topic and reason class.",
		}, []string{"topic", "reason_class"})),
		commitErrors: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cratestream_clickhouse_commit_errors_total", Help: "Offset commits that failed after a successful insert (the rows are replayed, not lost).",
		})),
		paused: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cratestream_clickhouse_sink_paused", Help: "1 while fetching is paused because inserts are failing.",
		})),
		fxRates: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cratestream_clickhouse_fx_rates", Help: "Currencies with a known EUR rate.",
		})),
		sellersCached: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cratestream_clickhouse_sellers_cached", Help: "Sellers whose rating is known to the sink.",
		})),
		sideInvalid: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cratestream_clickhouse_side_invalid_total", Help: "fx-rates.v1 / sellers.v1 records skipped as invalid, by topic.",
		}, []string{"topic"})),
	}
}

// register registers c, or returns the collector already registered under
// the same descriptor, so a second sink on one registry shares the series.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}
