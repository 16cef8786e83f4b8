// Package clickhouse is cratestream's ClickHouse connector: the schema
// migrations runner, the Kafka → ClickHouse sink and the dashboard queries.
//
// Everything here speaks the native TCP protocol only and is written for
// both ClickHouse 18.16 (Debian, CI) and current releases (production); see
// shared/clickhouse.md for what that rules out. Tables are ReplacingMergeTree
// with an explicit version (the Kafka offset of the record a row came from),
// so replays and redeliveries never double count, and queries pick the
// newest version of a row themselves rather than relying on merges or FINAL.
package clickhouse

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Conn is a native-protocol ClickHouse connection pool.
type Conn = driver.Conn

// ConnOptions configures Open.
type ConnOptions struct {
	// Addr is one or more host:port native-protocol addresses.
	Addr     []string
	Database string // default "default"
	Username string // default "default"
	Password string
	// TLS, when set, connects over TLS (the server's tcp_port_secure).
	TLS *tls.Config
	// DialTimeout bounds each connection attempt; default 5s.
	DialTimeout time.Duration
	// MaxOpenConns bounds the pool; default 8 (the sink uses one, the
	// dashboard the rest).
	MaxOpenConns int
}

// Open connects with LZ4 block compression and checks the server answers.
func Open(ctx context.Context, o ConnOptions) (Conn, error) {
	if len(o.Addr) == 0 {
		return nil, errors.New("clickhouse: no address")
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 5 * time.Second
	}
	if o.MaxOpenConns <= 0 {
		o.MaxOpenConns = 8
	}
	conn, err := ch.Open(&ch.Options{
		Protocol: ch.Native,
		Addr:     o.Addr,
		Auth: ch.Auth{
			Database: o.Database,
			Username: o.Username,
			Password: o.Password,
		},
		TLS:          o.TLS,
		DialTimeout:  o.DialTimeout,
		MaxOpenConns: o.MaxOpenConns,
		MaxIdleConns: min(o.MaxOpenConns, 4),
		Compression:  &ch.Compression{Method: ch.CompressionLZ4},
	})
	if err != nil {
		return nil, fmt.Errorf("clickhouse: open %v: %w", o.Addr, err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("clickhouse: ping %v: %w", o.Addr, err)
	}
	return conn, nil
}

// withLimit returns a context that carries max_execution_time (plus any
// extra settings) and a deadline slightly past it. The setting is what
// stops the server: on 18.16 a cancelled query that streams no rows back
// (count(), quantiles) keeps running after the client gave up. (The driver
// itself rewrites max_execution_time to the time left before the deadline
// plus 5 s, which bounds the server the same way.) ch.WithSettings replaces
// the whole settings map, so every setting of a query is passed here.
func withLimit(ctx context.Context, limit time.Duration, extra ...ch.Settings) (context.Context, context.CancelFunc) {
	secs := int((limit + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	settings := ch.Settings{"max_execution_time": secs}
	for _, e := range extra {
		for k, v := range e {
			settings[k] = v
		}
	}
	ctx = ch.Context(ctx, ch.WithSettings(settings))
	return context.WithTimeout(ctx, limit+2*time.Second)
}

// batchContext returns the context for PrepareBatch ... Send, and done, to
// call once Send (or the failure) is over.
//
// It works around a race in clickhouse-go's batch.Send (open upstream as
// ClickHouse/clickhouse-go#2032): Send starts a goroutine that closes the TCP
// connection when the batch's context ends, and stops it only by closing a
// channel. A context cancelled right after Send returned (the usual defer
// cancel()) can still win that goroutine's select and close a connection
// already back in the pool; the next statement on it then fails with "use
// of closed network connection". So the batch's context is detached from
// the caller's once Send is over, and its own cancel waits a moment.
func batchContext(parent context.Context, limit time.Duration) (context.Context, func()) {
	ctx, cancel := withLimit(context.WithoutCancel(parent), limit)
	stop := context.AfterFunc(parent, cancel) // the caller gives up mid-insert
	return ctx, func() {
		stop()
		time.AfterFunc(time.Second, cancel)
	}
}

// exceptionCode returns the server error code of err, or 0.
func exceptionCode(err error) int32 {
	var ex *ch.Exception
	if errors.As(err, &ex) {
		return ex.Code
	}
	return 0
}
