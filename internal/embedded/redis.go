package embedded

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/cratestream/cratestream/internal/devcert"
	"github.com/cratestream/cratestream/internal/tlsfiles"
)

// Redis is a running Redis server: a redis-server child process, or, for
// the demo only, an in-process miniredis.
type Redis struct {
	Addr string
	// Kind says what runs: "redis-server" or "miniredis (in-process)".
	Kind  string
	child *child
	mini  *miniredis.Miniredis
}

// RedisOptions configures StartRedis.
type RedisOptions struct {
	// Dir keeps the server's dump so a second run reuses the data; empty
	// uses a temporary directory and no persistence.
	Dir string
	// AllowInProcess falls back to miniredis when redis-server is not
	// installed (the demo). Tests leave it false: they need the real one.
	AllowInProcess bool
	// User and Password, when set, require them: an ACL user with every
	// permission (Password alone protects the default user).
	User, Password string
	// TLS, when set, serves TLS only, with this certificate (Addr is then
	// the TLS port).
	TLS *devcert.Files
}

// ErrRedisMissing says redis-server is not installed.
var ErrRedisMissing = fmt.Errorf("redis-server not found on PATH: install it with `apt-get install redis-server`")

// StartRedis starts Redis on a free loopback port.
func StartRedis(ctx context.Context, o RedisOptions) (*Redis, error) {
	bin, ok := LookPath("redis-server")
	if !ok {
		if !o.AllowInProcess {
			return nil, ErrRedisMissing
		}
		m := miniredis.NewMiniRedis()
		if err := m.Start(); err != nil {
			return nil, fmt.Errorf("start in-process redis: %w", err)
		}
		return &Redis{Addr: m.Addr(), Kind: "miniredis (in-process)", mini: m}, nil
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir := o.Dir
	save := []string{"--save", "", "--appendonly", "no"}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "cratestream-redis-"); err != nil {
			return nil, err
		}
	} else {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		save = []string{"--save", "60 1", "--appendonly", "no"}
	}
	args := append([]string{"--bind", "127.0.0.1", "--dir", dir,
		"--daemonize", "no", "--protected-mode", "yes", "--loglevel", "warning"}, save...)
	popts := &redis.Options{DialTimeout: time.Second, Username: o.User, Password: o.Password}
	if o.TLS != nil {
		args = append(args, "--port", "0", "--tls-port", strconv.Itoa(port), "--tls-cert-file", o.TLS.Cert,
			"--tls-key-file", o.TLS.Key, "--tls-ca-cert-file", o.TLS.CA, "--tls-auth-clients", "no")
		tc, err := tlsfiles.Client{CA: o.TLS.CA}.Config()
		if err != nil {
			return nil, err
		}
		popts.TLSConfig = tc
	} else {
		args = append(args, "--port", strconv.Itoa(port))
	}
	switch {
	case o.User != "":
		// ACL rules: on, the password, every key and channel, every command.
		args = append(args, "--user", o.User, "on", ">"+o.Password, "~*", "&*", "+@all", "--user", "default", "off")
	case o.Password != "":
		args = append(args, "--requirepass", o.Password)
	}
	c, err := startChild("redis-server", bin, args...)
	if err != nil {
		return nil, err
	}
	r := &Redis{Addr: "127.0.0.1:" + strconv.Itoa(port), Kind: "redis-server", child: c}
	popts.Addr = r.Addr
	cl := redis.NewClient(popts)
	defer cl.Close()
	if err := waitReady(ctx, c, 15*time.Second, func(ctx context.Context) error { return cl.Ping(ctx).Err() }); err != nil {
		c.stop()
		return nil, err
	}
	return r, nil
}

// Close stops the server.
func (r *Redis) Close() {
	if r.child != nil {
		r.child.stop()
	}
	if r.mini != nil {
		r.mini.Close()
	}
}
