// Package embedded starts the development stack in-process or as child
// processes: a franz-go kfake Kafka cluster, Redis and ClickHouse. It is what
// `cratestream demo` and the integration tests run on; production points the
// same code at external servers instead.
package embedded

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// KafkaOptions configures the in-process cluster.
type KafkaOptions struct {
	// Brokers is the number of brokers; default 3.
	Brokers int
	// DataDir persists the cluster (topics, offsets, transactions) so a
	// second run continues where the first stopped; empty keeps it in
	// memory.
	DataDir string
	// Ports to listen on (one per broker) on 127.0.0.1; default random
	// free ports.
	Ports []int
	// Listen is one host:port per broker, overriding Ports: the address
	// each broker listens on and advertises, so it must be one clients
	// can reach (not 0.0.0.0).
	Listen []string
	// MinSessionTimeout is group.min.session.timeout.ms: the shortest
	// session a consumer group member may ask for. Default 6s (Kafka's);
	// a development cluster lowers it so a killed member's partitions
	// move within seconds.
	MinSessionTimeout time.Duration
	// Retention bounds delete-policy topics so a long demo does not grow
	// without bound (log.retention.ms); default 6h.
	Retention time.Duration
	// RetentionBytes bounds each partition of delete-policy topics
	// (log.retention.bytes); default 256 MiB.
	RetentionBytes int64
	// CleanerInterval is how often compaction and retention run
	// (log.cleaner.backoff.ms); default 30s.
	CleanerInterval time.Duration
	// Logger receives the cluster's warnings; nil discards them.
	Logger *slog.Logger
	// SASL, when set, requires clients to authenticate as one of these
	// users (a secured development cluster, and the security tests).
	SASL []SASLUser
	// TLS, when set, serves TLS only, with this configuration.
	TLS *tls.Config
}

// SASLUser is a user of a cluster with SASL: Mechanism is PLAIN,
// SCRAM-SHA-256 or SCRAM-SHA-512.
type SASLUser struct {
	Mechanism, User, Password string
}

// Kafka is a running in-process cluster speaking the real Kafka protocol.
type Kafka struct {
	*kfake.Cluster
}

// StartKafka starts the cluster.
func StartKafka(o KafkaOptions) (*Kafka, error) {
	if o.Brokers <= 0 {
		o.Brokers = 3
	}
	if o.Retention <= 0 {
		o.Retention = 6 * time.Hour
	}
	if o.RetentionBytes <= 0 {
		o.RetentionBytes = 256 << 20
	}
	if o.CleanerInterval <= 0 {
		o.CleanerInterval = 30 * time.Second
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(o.Brokers),
		kfake.BrokerConfigs(map[string]string{
			"log.retention.ms":       strconv.FormatInt(o.Retention.Milliseconds(), 10),
			"log.retention.bytes":    strconv.FormatInt(o.RetentionBytes, 10),
			"log.cleaner.backoff.ms": strconv.FormatInt(o.CleanerInterval.Milliseconds(), 10),
			// Outputs of one poll can be large; the default 1 MB
			// batch limit would reject legitimate records.
			"message.max.bytes": strconv.Itoa(8 << 20),
		}),
	}
	switch {
	case len(o.Listen) > 0:
		lopts, err := listenOpts(o.Listen, o.Brokers)
		if err != nil {
			return nil, err
		}
		opts = append(opts, lopts...)
	case len(o.Ports) > 0:
		opts = append(opts, kfake.Ports(o.Ports...))
	}
	if o.MinSessionTimeout > 0 {
		opts = append(opts, kfake.GroupMinSessionTimeout(o.MinSessionTimeout))
	}
	if o.DataDir != "" {
		if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("kafka data dir: %w", err)
		}
		opts = append(opts, kfake.DataDir(o.DataDir))
	}
	if o.Logger != nil {
		opts = append(opts, kfake.WithLogger(slogKfake{o.Logger}))
	}
	if len(o.SASL) > 0 {
		opts = append(opts, kfake.EnableSASL())
		for _, u := range o.SASL {
			opts = append(opts, kfake.Superuser(u.Mechanism, u.User, u.Password))
		}
	}
	if o.TLS != nil {
		opts = append(opts, kfake.TLS(o.TLS))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start embedded kafka: %w", err)
	}
	return &Kafka{Cluster: c}, nil
}

// listenOpts makes broker i listen on listen[i]. kfake listens on
// 127.0.0.1:<port> for the ports it is given; its listen function swaps in
// the host configured for that port.
func listenOpts(listen []string, brokers int) ([]kfake.Opt, error) {
	if len(listen) != brokers {
		return nil, fmt.Errorf("embedded kafka: %d listen addresses for %d brokers", len(listen), brokers)
	}
	hosts := make(map[string]string, len(listen))
	ports := make([]int, len(listen))
	for i, a := range listen {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			return nil, fmt.Errorf("embedded kafka: listen address %q: %w", a, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p <= 0 || p > 65535 {
			return nil, fmt.Errorf("embedded kafka: listen address %q: want a port in 1..65535", a)
		}
		if host == "" || net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified() {
			return nil, fmt.Errorf("embedded kafka: listen address %q: a broker advertises the address it listens on, so it needs a host clients can reach (not %q)", a, host)
		}
		if _, dup := hosts[port]; dup {
			return nil, fmt.Errorf("embedded kafka: port %s listed twice", port)
		}
		hosts[port] = host
		ports[i] = p
	}
	listenFn := func(network, address string) (net.Listener, error) {
		_, port, err := net.SplitHostPort(address)
		if err != nil {
			return nil, err
		}
		if h, ok := hosts[port]; ok {
			address = net.JoinHostPort(h, port)
		}
		return net.Listen(network, address)
	}
	return []kfake.Opt{kfake.Ports(ports...), kfake.ListenFn(listenFn)}, nil
}

// Addrs are the brokers' host:port addresses.
func (k *Kafka) Addrs() []string { return k.ListenAddrs() }

type slogKfake struct{ l *slog.Logger }

func (s slogKfake) Logf(level kfake.LogLevel, msg string, args ...any) {
	switch level {
	case kfake.LogLevelError:
		s.l.Error("kfake: " + fmt.Sprintf(msg, args...))
	case kfake.LogLevelWarn:
		// kfake warns about its own slow paths ("EndTxn slow"): noise for
		// the demo, kept for debugging.
		s.l.Debug("kfake: " + fmt.Sprintf(msg, args...))
	}
}
