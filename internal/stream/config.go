package stream

import (
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Config configures a Runner. Zero values get the defaults documented on
// each field.
type Config struct {
	// Brokers are the seed brokers.
	Brokers []string
	// InstanceID names this instance: it must be stable across restarts of
	// the same instance (it is the transactional id suffix, so a restarted
	// instance fences its crashed predecessor) and unique in the group.
	// Defaults to the host name.
	InstanceID string
	// StateDir holds on-disk stores; defaults to a temporary directory.
	StateDir string
	// CommitInterval is how often offsets and state are committed (one
	// transaction per interval in exactly-once mode). Default 100ms.
	CommitInterval time.Duration
	// MaxPollRecords bounds one polled batch. Default 20,000.
	MaxPollRecords int
	// MaxRecordBytes is the largest input record (key + value) processed;
	// larger ones go to the dead-letter topic. Default 1 MiB.
	MaxRecordBytes int
	// TransactionTimeout bounds how long a crashed instance's open
	// transaction can block read_committed consumers. Default 10s.
	TransactionTimeout time.Duration
	// DLQTopic receives dead letters. Default "dlq.v1".
	DLQTopic string
	// AdvertiseAddr is the host:port where this instance serves store
	// lookups; other instances find it in the group's client ids.
	AdvertiseAddr string
	// ReplicationFactor of internal topics; default -1 (broker default).
	ReplicationFactor int16
	// ParkedTasks is how many revoked tasks keep their stores open so a
	// reassignment replays only the changelog tail. Default 256.
	ParkedTasks int
	// RetryBackoff bounds the pause of a partition after a transient
	// failure: it doubles from Min up to Max. Default 100ms..10s.
	RetryBackoffMin, RetryBackoffMax time.Duration
	// Logger defaults to slog.Default.
	Logger *slog.Logger
	// Metrics receives the runner's metrics; nil uses a private registry.
	Metrics prometheus.Registerer
	// ClientOpts are appended to every Kafka client the runner creates.
	ClientOpts []kgo.Opt
	// ProducerLinger is the producers' linger. Default 1ms: outputs are
	// visible within milliseconds and batches still form under load.
	ProducerLinger time.Duration
	// SessionTimeout is how long the group waits for a silent member
	// before moving its partitions. Default 10s (Kafka's 45s is a long
	// outage for a killed instance that is not restarted); brokers
	// refuse less than their group.min.session.timeout.ms (6s by
	// default). Members are static (their group instance id is
	// InstanceID), so a killed instance restarted within the timeout
	// gets its partitions back at once, without a rebalance.
	SessionTimeout time.Duration
	// MaxDeadLetterRatio and DeadLetterWindow bound dead letters: when
	// more than MaxDeadLetterRatio of a window of DeadLetterWindow handled
	// records were dead-lettered, the processor halts (pauses its input,
	// turns unready, says why) until restarted. Defaults 0.5 and 1000; a
	// ratio of 1 or more disables the limit.
	MaxDeadLetterRatio float64
	DeadLetterWindow   int
	// LookupSecret is the secret shared by every instance and the gateway
	// for store lookups between them (ServeHTTP, FetchStore). Empty
	// refuses every remote lookup.
	LookupSecret string
	// Failpoints makes the process kill itself (SIGKILL) at the n-th hit
	// of a named point: "eos-before-end:3,alo-before-commit:1". For the
	// chaos suite only; empty (the default) disables them. See
	// failpoint.go for the names.
	Failpoints string
}

func (c *Config) defaults() error {
	if len(c.Brokers) == 0 {
		return errors.New("stream: no brokers configured")
	}
	if c.InstanceID == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "instance"
		}
		c.InstanceID = h
	}
	if c.CommitInterval <= 0 {
		c.CommitInterval = 100 * time.Millisecond
	}
	if c.MaxPollRecords <= 0 {
		c.MaxPollRecords = 20000
	}
	if c.MaxRecordBytes <= 0 {
		c.MaxRecordBytes = 1 << 20
	}
	if c.TransactionTimeout <= 0 {
		c.TransactionTimeout = 10 * time.Second
	}
	if c.DLQTopic == "" {
		c.DLQTopic = "dlq.v1"
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = -1
	}
	if c.ParkedTasks <= 0 {
		c.ParkedTasks = 256
	}
	if c.RetryBackoffMin <= 0 {
		c.RetryBackoffMin = 100 * time.Millisecond
	}
	if c.RetryBackoffMax <= 0 {
		c.RetryBackoffMax = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Metrics == nil {
		c.Metrics = prometheus.NewRegistry()
	}
	if c.ProducerLinger == 0 {
		c.ProducerLinger = time.Millisecond
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.MaxDeadLetterRatio <= 0 {
		c.MaxDeadLetterRatio = 0.5
	}
	if c.DeadLetterWindow <= 0 {
		c.DeadLetterWindow = 1000
	}
	return nil
}
