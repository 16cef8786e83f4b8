package stream

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics of one runner. Every series carries the processor label (added by
// the registerer wrapper), so several processors share one registry.
type metrics struct {
	recordsIn     *prometheus.CounterVec
	recordsOut    *prometheus.CounterVec
	latency       prometheus.Histogram
	batch         prometheus.Histogram
	lag           *prometheus.GaugeVec
	restored      *prometheus.CounterVec
	restoreRemain *prometheus.GaugeVec
	restoreSecs   prometheus.Histogram
	dlq           *prometheus.CounterVec
	rebalances    *prometheus.CounterVec
	txns          *prometheus.CounterVec
	retries       *prometheus.CounterVec
	tasks         prometheus.Gauge
	timersFired   prometheus.Counter
	sessionFails  prometheus.Counter
	storesRebuilt prometheus.Counter
	halted        prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, processor string) *metrics {
	reg = prometheus.WrapRegistererWith(prometheus.Labels{"processor": processor}, reg)
	m := &metrics{
		recordsIn: reg1(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cratestream_records_in_total", Help: "Records consumed by the processor, by topic.",
		}, []string{"topic"})),
		recordsOut: reg1(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cratestream_records_out_total", Help: "Records produced by the processor (outputs and changelogs), by topic.",
		}, []string{"topic"})),
		latency: reg1(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cratestream_record_latency_seconds",
			Help:    "Time from a record's timestamp to the end of the processing of its batch.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		})),
		batch: reg1(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cratestream_batch_seconds",
			Help:    "Time to process one polled batch.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		})),
		lag: reg1(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cratestream_consumer_lag", Help: "High watermark minus the next offset to process, by input partition.",
		}, []string{"topic", "partition"})),
		restored: reg1(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cratestream_restore_records_total", Help: "Changelog records replayed into state stores.",
		}, []string{"store"})),
		restoreRemain: reg1(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cratestream_restore_remaining_records", Help: "Changelog records left to replay before the store's task can process input.",
		}, []string{"store"})),
		restoreSecs: reg1(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "cratestream_restore_seconds", Help: "Duration of a restore of newly assigned tasks.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		})),
		dlq: reg1(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cratestream_dlq_records_total", Help: "Records sent to the dead-letter topic, by reason class.",
		}, []string{"reason_class"})),
		rebalances: reg1(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cratestream_rebalances_total", Help: "Rebalance callbacks, by kind (assigned, revoked, lost).",
		}, []string{"kind"})),
		txns: reg1(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cratestream_commits_total", Help: "Commits (transactions in exactly-once mode), by result (committed, aborted).",
		}, []string{"result"})),
		retries: reg1(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cratestream_transient_retries_total", Help: "Transient failures that paused a partition for a retry, by topic.",
		}, []string{"topic"})),
		tasks: reg1(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cratestream_tasks", Help: "Tasks (assigned partitions) running in this instance.",
		})),
		timersFired: reg1(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cratestream_timers_fired_total", Help: "Timers whose deadline passed and whose callback ran.",
		})),
		sessionFails: reg1(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cratestream_session_failures_total", Help: "Sessions (Kafka clients and group membership) that failed and were restarted.",
		})),
		storesRebuilt: reg1(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cratestream_stores_rebuilt_total", Help: "On-disk stores found damaged at open and rebuilt from their changelogs.",
		})),
		halted: reg1(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cratestream_halted", Help: "1 when the processor halted (a dead-letter storm) and waits for a restart.",
		})),
	}
	return m
}

// reg1 registers c, or returns the collector already registered under the
// same description: two runners of one processor in a process (tests) share
// their series.
func reg1[T prometheus.Collector](reg prometheus.Registerer, c T) T {
	if err := reg.Register(c); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			if existing, ok := are.ExistingCollector.(T); ok {
				return existing
			}
		}
	}
	return c
}
