package embedded

import (
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/cratestream/cratestream/internal/devcert"
)

// ClickHouse is a clickhouse-server child process with a generated config.
type ClickHouse struct {
	// Addr is the native protocol address (host:port).
	Addr string
	// SecureAddr is the native protocol's TLS address when TLS was asked
	// for.
	SecureAddr string
	Dir        string
	password   string
	child      *child
}

// ClickHouseOptions configures StartClickHouse.
type ClickHouseOptions struct {
	// Dir holds the data, config and logs; a second run reuses the data.
	// Empty uses a temporary directory.
	Dir string
	// Password, when set, is the default user's.
	Password string
	// TLS, when set, also serves the native protocol over TLS with this
	// certificate (tcp_port_secure), at SecureAddr.
	TLS *devcert.Files
}

// ErrClickHouseMissing says clickhouse-server is not installed.
var ErrClickHouseMissing = fmt.Errorf("clickhouse-server not found: install it with `apt-get install clickhouse-server` (the dashboard and `cratestream query` need it; the pipeline runs without)")

// The root element <yandex> is accepted by Debian's 18.16 and by current
// servers. max_execution_time bounds queries whose client went away (a
// cancelled context does not stop the server on 18.16).
const clickhouseConfig = `<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>{{DIR}}/log/clickhouse-server.log</log>
        <errorlog>{{DIR}}/log/clickhouse-server.err.log</errorlog>
        <size>10M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>{{TCP}}</tcp_port>
    <http_port>{{HTTP}}</http_port>
    <path>{{DIR}}/data/</path>
    <tmp_path>{{DIR}}/tmp/</tmp_path>
    <user_files_path>{{DIR}}/user_files/</user_files_path>
    <format_schema_path>{{DIR}}/format_schemas/</format_schema_path>
    <users_config>{{DIR}}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <mark_cache_size>268435456</mark_cache_size>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <max_concurrent_queries>64</max_concurrent_queries>
{{TLS}}</yandex>
`

// clickhouseTLS is the secure native port; verificationMode none: clients
// are not asked for certificates (they authenticate with a password).
const clickhouseTLS = `    <tcp_port_secure>{{PORT}}</tcp_port_secure>
    <openSSL>
        <server>
            <certificateFile>{{CERT}}</certificateFile>
            <privateKeyFile>{{KEY}}</privateKeyFile>
            <verificationMode>none</verificationMode>
            <loadDefaultCAFile>false</loadDefaultCAFile>
            <cacheSessions>true</cacheSessions>
            <disableProtocols>sslv2,sslv3</disableProtocols>
            <preferServerCiphers>true</preferServerCiphers>
        </server>
    </openSSL>
`

const clickhouseUsers = `<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_execution_time>60</max_execution_time>
            <max_threads>{{THREADS}}</max_threads>
            <max_memory_usage>4000000000</max_memory_usage>
        </default>
    </profiles>
    <users>
        <default>
            <password>{{PASSWORD}}</password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas><default></default></quotas>
</yandex>
`

// StartClickHouse starts a private server on free loopback ports.
func StartClickHouse(ctx context.Context, o ClickHouseOptions) (*ClickHouse, error) {
	bin, ok := LookPath("clickhouse-server")
	if !ok {
		return nil, ErrClickHouseMissing
	}
	dir := o.Dir
	var err error
	if dir == "" {
		if dir, err = os.MkdirTemp("", "cratestream-clickhouse-"); err != nil {
			return nil, err
		}
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	for _, d := range []string{"log", "data", "tmp", "user_files", "format_schemas"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	tcp, err := freePort()
	if err != nil {
		return nil, err
	}
	httpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	tlsSection, secure := "", 0
	if o.TLS != nil {
		if secure, err = freePort(); err != nil {
			return nil, err
		}
		tlsSection = strings.NewReplacer("{{PORT}}", strconv.Itoa(secure), "{{CERT}}", o.TLS.Cert, "{{KEY}}", o.TLS.Key).Replace(clickhouseTLS)
	}
	cfg := strings.NewReplacer("{{DIR}}", dir, "{{TCP}}", strconv.Itoa(tcp), "{{HTTP}}", strconv.Itoa(httpPort), "{{TLS}}", tlsSection).Replace(clickhouseConfig)
	// 18.16 counts one core in some VMs: give queries the machine's CPUs.
	users := strings.NewReplacer("{{DIR}}", dir, "{{THREADS}}", strconv.Itoa(runtime.NumCPU()), "{{PASSWORD}}", xmlEscape(o.Password)).Replace(clickhouseUsers)
	cfgPath := filepath.Join(dir, "config.xml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "users.xml"), []byte(users), 0o600); err != nil {
		return nil, err
	}
	c, err := startChild("clickhouse-server", bin, "--config-file="+cfgPath)
	if err != nil {
		return nil, err
	}
	ch := &ClickHouse{Addr: "127.0.0.1:" + strconv.Itoa(tcp), Dir: dir, password: o.Password, child: c}
	if secure != 0 {
		ch.SecureAddr = "127.0.0.1:" + strconv.Itoa(secure)
	}
	if err := waitReady(ctx, c, 60*time.Second, ch.ping); err != nil {
		c.stop()
		return nil, err
	}
	return ch, nil
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func (ch *ClickHouse) ping(ctx context.Context) error {
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{ch.Addr}, DialTimeout: time.Second,
		Auth: clickhouse.Auth{Username: "default", Password: ch.password}})
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Ping(ctx)
}

// Close stops the server.
func (ch *ClickHouse) Close() { ch.child.stop() }
