package cli

import (
	"context"
	"crypto/tls"
	"flag"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	chsink "github.com/cratestream/cratestream/connectors/clickhouse"
	"github.com/cratestream/cratestream/connectors/redis"
	"github.com/cratestream/cratestream/internal/kafkasec"
	"github.com/cratestream/cratestream/internal/tlsfiles"
)

// Every connection a command makes to Kafka, Redis or ClickHouse is
// configured here, from flags whose defaults are the environment. Passwords
// and the lookup secret come from the environment or a file only, never a
// flag (they would show in ps and in --help).

// kafkaFlags are a command's Kafka connection: seed brokers and security.
type kafkaFlags struct {
	brokers string
	sec     kafkasec.Config
}

func (k *kafkaFlags) register(fs *flag.FlagSet, env *Env) {
	fs.StringVar(&k.brokers, "brokers", env.Getenv("CRATESTREAM_BROKERS"), "comma-separated seed brokers (env CRATESTREAM_BROKERS)")
	k.sec.Register(fs, env.Getenv)
}

// kafkaConn is a checked Kafka connection: the seeds and the options every
// client of the command uses.
type kafkaConn struct {
	brokers []string
	opts    []kgo.Opt
	sec     kafkasec.Config
}

// connect builds the client options and asks the brokers once whether they
// accept them: wrong credentials or an untrusted certificate end the
// command with a message naming the broker and the mechanism, instead of
// every client retrying them forever.
//
// Brokers that do not answer at all are no configuration error: a
// processor started during an outage waits for the cluster like any
// client does, so connect only logs it (log may be nil).
func (k *kafkaFlags) connect(ctx context.Context, log *slog.Logger) (*kafkaConn, error) {
	bs, err := splitBrokers(k.brokers)
	if err != nil {
		return nil, err
	}
	opts, err := k.sec.Opts()
	if err != nil {
		return nil, usagef("%v", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := kafkasec.Check(cctx, bs, k.sec, opts...); err != nil {
		if kafkasec.IsConfigError(err) {
			return nil, err
		}
		if log != nil {
			log.Warn("no Kafka broker answered yet; the clients keep trying", "brokers", bs, "err", err)
		}
	}
	return &kafkaConn{brokers: bs, opts: opts, sec: k.sec}, nil
}

// client is a Kafka client of the connection with extra options.
func (c *kafkaConn) client(extra ...kgo.Opt) (*kgo.Client, error) {
	opts := append([]kgo.Opt{kgo.SeedBrokers(c.brokers...)}, c.opts...)
	return kgo.NewClient(append(opts, extra...)...)
}

// endpointFlags are the address, user, password and TLS of a Redis or
// ClickHouse connection: --<name>, --<name>-user, --<name>-password-file,
// --<name>-tls, --<name>-tls-ca, --<name>-tls-cert, --<name>-tls-key,
// --<name>-tls-server-name, each defaulting to CRATESTREAM_<NAME>[_...];
// the password is CRATESTREAM_<NAME>_PASSWORD or the file's content.
type endpointFlags struct {
	name         string
	env          string
	addr         string
	user         string
	password     string
	passwordFile string
	tlsOn        bool
	tls          tlsfiles.Client
}

func (e *endpointFlags) register(fs *flag.FlagSet, env *Env, name, what string) {
	e.name = name
	e.env = "CRATESTREAM_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	get := func(suffix string) string { return env.Getenv(e.env + suffix) }
	e.password = get("_PASSWORD")
	fs.StringVar(&e.addr, name, get(""), what+" (env "+e.env+")")
	fs.StringVar(&e.user, name+"-user", get("_USER"), name+" user (env "+e.env+"_USER); the password comes from $"+e.env+"_PASSWORD or --"+name+"-password-file")
	fs.StringVar(&e.passwordFile, name+"-password-file", get("_PASSWORD_FILE"), "file holding the "+name+" password (env "+e.env+"_PASSWORD_FILE)")
	fs.BoolVar(&e.tlsOn, name+"-tls", truthy(get("_TLS")), "connect to "+name+" over TLS (env "+e.env+"_TLS; implied by the other --"+name+"-tls-* flags)")
	fs.StringVar(&e.tls.CA, name+"-tls-ca", get("_TLS_CA"), "PEM file of the CAs trusted for "+name+"'s certificate; default the system's (env "+e.env+"_TLS_CA)")
	fs.StringVar(&e.tls.Cert, name+"-tls-cert", get("_TLS_CERT"), "PEM client certificate for "+name+" (env "+e.env+"_TLS_CERT)")
	fs.StringVar(&e.tls.Key, name+"-tls-key", get("_TLS_KEY"), "PEM key of --"+name+"-tls-cert (env "+e.env+"_TLS_KEY)")
	fs.StringVar(&e.tls.ServerName, name+"-tls-server-name", get("_TLS_SERVER_NAME"), "host name to verify in "+name+"'s certificate (env "+e.env+"_TLS_SERVER_NAME)")
}

func truthy(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

func (e *endpointFlags) secret() (string, error) {
	if e.passwordFile == "" {
		return e.password, nil
	}
	b, err := os.ReadFile(e.passwordFile)
	if err != nil {
		return "", usagef("%s password file: %v", e.name, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func (e *endpointFlags) tlsConfig() (*tls.Config, error) {
	if !e.tlsOn && !e.tls.Enabled() {
		return nil, nil
	}
	tc, err := e.tls.Config()
	if err != nil {
		return nil, usagef("%s: %v", e.name, err)
	}
	return tc, nil
}

func (e *endpointFlags) redisOptions() (redis.Options, error) {
	pw, err := e.secret()
	if err != nil {
		return redis.Options{}, err
	}
	tc, err := e.tlsConfig()
	if err != nil {
		return redis.Options{}, err
	}
	return redis.Options{Addr: e.addr, Username: e.user, Password: pw, TLS: tc}, nil
}

func (e *endpointFlags) clickhouseOptions() (chsink.ConnOptions, error) {
	pw, err := e.secret()
	if err != nil {
		return chsink.ConnOptions{}, err
	}
	tc, err := e.tlsConfig()
	if err != nil {
		return chsink.ConnOptions{}, err
	}
	return chsink.ConnOptions{Addr: []string{e.addr}, Username: e.user, Password: pw, TLS: tc}, nil
}

// lookupSecret reads the store lookup secret the processor instances and
// the gateway share: CRATESTREAM_LOOKUP_SECRET or the file of
// --lookup-secret-file.
type lookupSecret struct {
	value string
	file  string
}

func (l *lookupSecret) register(fs *flag.FlagSet, env *Env) {
	l.value = env.Getenv("CRATESTREAM_LOOKUP_SECRET")
	fs.StringVar(&l.file, "lookup-secret-file", env.Getenv("CRATESTREAM_LOOKUP_SECRET_FILE"), "file holding the secret the instances and the gateway share for store lookups (or env CRATESTREAM_LOOKUP_SECRET); without one, no instance serves another's lookups")
}

func (l *lookupSecret) get() (string, error) {
	if l.file == "" {
		return l.value, nil
	}
	b, err := os.ReadFile(l.file)
	if err != nil {
		return "", usagef("lookup secret file: %v", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}
