package cli

// Checks of the deployment files against the binary: docker-compose.yml alone
// and merged with deploy/compose/secure.yml (read with compose-go, as
// `docker compose -f ... -f ...` reads them) and deploy/k8s, the base and its
// overlays local and secure (rendered with the kustomize API, decoded into
// k8s.io/api types). What the binary
// accepts is read from its own help output through Main, so a renamed flag,
// a removed service or a flag placed after the positional arguments (where
// the flag package no longer parses it) fails here, without Docker or a
// cluster.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	composecli "github.com/compose-spec/compose-go/v2/cli"
	composetypes "github.com/compose-spec/compose-go/v2/types"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// repoRoot is where docker-compose.yml and deploy/ are (tests run in
// internal/cli).
const repoRoot = "../.."

// The binary's path in the image (deploy/Dockerfile's ENTRYPOINT) and its
// health probe (deploy/healthcheck).
const (
	imageEntrypoint = "/usr/local/bin/cratestream"
	imageProbe      = "/usr/local/bin/healthcheck"
)

// --- what the binary accepts, from its help ---------------------------------

type flagSpec struct {
	typ     string // "" for a bool flag, else the type word of PrintDefaults
	def     string // default value, "" when none is printed
	service string // the service a "service: ..." usage names, if any
}

type binarySpec struct {
	commands map[string]bool
	services map[string]bool

	mu    sync.Mutex
	flags map[string]map[string]flagSpec // by command
}

var (
	specOnce sync.Once
	specVal  *binarySpec
	specErr  error
)

// helpOf runs `cratestream args...` through Main and returns its stdout.
func helpOf(args ...string) (string, error) {
	var out, errb bytes.Buffer
	if code := Main(context.Background(), args, &out, &errb); code != 0 {
		return "", fmt.Errorf("cratestream %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
	}
	return out.String(), nil
}

func loadBinarySpec(t *testing.T) *binarySpec {
	t.Helper()
	specOnce.Do(func() {
		s := &binarySpec{commands: map[string]bool{}, services: map[string]bool{}, flags: map[string]map[string]flagSpec{}}
		top, err := helpOf("help")
		if err != nil {
			specErr = err
			return
		}
		in := false
		for _, line := range strings.Split(top, "\n") {
			switch {
			case strings.TrimSpace(line) == "Commands:":
				in = true
			case in && strings.HasPrefix(line, "  "):
				s.commands[strings.Fields(line)[0]] = true
			case in:
				in = false
			}
		}
		runHelp, err := helpOf("run", "--help")
		if err != nil {
			specErr = err
			return
		}
		for _, line := range strings.Split(runHelp, "\n") {
			if rest, ok := strings.CutPrefix(line, "Services: "); ok {
				for _, n := range strings.Split(rest, ",") {
					s.services[strings.TrimSpace(n)] = true
				}
			}
		}
		if len(s.commands) == 0 || len(s.services) == 0 {
			specErr = fmt.Errorf("no commands (%v) or services (%v) in the help output", s.commands, s.services)
		}
		specVal = s
	})
	if specErr != nil {
		t.Fatal(specErr)
	}
	return specVal
}

var (
	flagLine    = regexp.MustCompile(`^  -([^\s=]+)(?: (\S+))?(?:\t(.*))?$`)
	defaultPart = regexp.MustCompile(`\(default (.*)\)$`)
	servicePart = regexp.MustCompile(`^([a-z][a-z-]*): `)
)

// flagsOf parses the "Flags:" section of `cratestream <cmd> --help`
// (flag.PrintDefaults' format).
func (s *binarySpec) flagsOf(cmd string) (map[string]flagSpec, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if fs, ok := s.flags[cmd]; ok {
		return fs, nil
	}
	help, err := helpOf(cmd, "--help")
	if err != nil {
		return nil, err
	}
	_, section, ok := strings.Cut(help, "\nFlags:\n")
	if !ok {
		return nil, fmt.Errorf("cratestream %s --help has no Flags: section", cmd)
	}
	fs := map[string]flagSpec{}
	var last string
	sc := bufio.NewScanner(strings.NewReader(section))
	for sc.Scan() {
		line := sc.Text()
		if m := flagLine.FindStringSubmatch(line); m != nil {
			last = m[1]
			fs[last] = flagSpec{typ: m[2]}
			if m[3] != "" {
				line = "\t" + m[3]
			} else {
				continue
			}
		}
		usage := strings.TrimSpace(line)
		if last == "" || usage == "" {
			continue
		}
		f := fs[last]
		if m := defaultPart.FindStringSubmatch(usage); m != nil {
			f.def = m[1]
			if uq, err := strconv.Unquote(m[1]); err == nil {
				f.def = uq
			}
		}
		if m := servicePart.FindStringSubmatch(usage); m != nil && s.services[m[1]] && f.service == "" {
			f.service = m[1]
		}
		fs[last] = f
	}
	if len(fs) == 0 {
		return nil, fmt.Errorf("cratestream %s --help lists no flags", cmd)
	}
	s.flags[cmd] = fs
	return fs, nil
}

// invocation is a command line our image runs, parsed the way the flag
// package parses it.
type invocation struct {
	command string
	flags   map[string]string
	args    []string // positional arguments after the flags
}

// parseInvocation checks argv (without the binary) against the binary's
// commands and flags. Like flag.FlagSet.Parse it stops at the first
// non-flag argument: a flag after it is a positional argument, which the
// per-command checks then reject.
func (s *binarySpec) parseInvocation(argv []string) (invocation, []string) {
	var errs []string
	if len(argv) == 0 {
		return invocation{}, []string{"no command (the image's default is `help`)"}
	}
	inv := invocation{command: argv[0], flags: map[string]string{}}
	if !s.commands[inv.command] {
		return inv, []string{fmt.Sprintf("%q is not a cratestream command (have %s)", inv.command, keys(s.commands))}
	}
	fs, err := s.flagsOf(inv.command)
	if err != nil {
		return inv, []string{err.Error()}
	}
	rest := argv[1:]
	for len(rest) > 0 {
		a := rest[0]
		if a == "--" {
			rest = rest[1:]
			break
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
		rest = rest[1:]
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		name, value, hasValue := strings.Cut(name, "=")
		f, ok := fs[name]
		if !ok {
			errs = append(errs, fmt.Sprintf("%s: flag -%s does not exist (have %s)", inv.command, name, keys(fs)))
			continue
		}
		if !hasValue {
			if f.typ == "" {
				value = "true"
			} else if len(rest) == 0 {
				errs = append(errs, fmt.Sprintf("%s: flag -%s needs a value", inv.command, name))
				continue
			} else {
				value, rest = rest[0], rest[1:]
			}
		}
		if err := checkValue(f.typ, value); err != nil {
			errs = append(errs, fmt.Sprintf("%s: flag -%s=%q: %v", inv.command, name, value, err))
		}
		inv.flags[name] = value
	}
	inv.args = rest
	switch inv.command {
	case "run":
		if len(inv.args) == 0 {
			errs = append(errs, "run: names no service")
		}
		for _, a := range inv.args {
			if !s.services[a] {
				errs = append(errs, fmt.Sprintf("run: %q is not a service (have %s); flags go before the services", a, keys(s.services)))
			}
		}
		for name := range inv.flags {
			if svc := fs[name].service; svc != "" && !slices.Contains(inv.args, svc) {
				errs = append(errs, fmt.Sprintf("run: flag -%s is %s's, which this instance does not run", name, svc))
			}
		}
	case "topics":
		if len(inv.args) != 1 || !slices.Contains([]string{"create", "check", "list"}, inv.args[0]) {
			errs = append(errs, fmt.Sprintf("topics: want exactly one of create, check, list after the flags, got %q", inv.args))
		}
	}
	return inv, errs
}

func checkValue(typ, v string) error {
	var err error
	switch typ {
	case "":
		_, err = strconv.ParseBool(v)
	case "int":
		_, err = strconv.ParseInt(v, 0, 64)
	case "uint":
		_, err = strconv.ParseUint(v, 0, 64)
	case "float":
		_, err = strconv.ParseFloat(v, 64)
	case "duration":
		_, err = time.ParseDuration(v)
	}
	return err
}

// opsAddr is the ops listen address of a `run` invocation: --http, else
// CRATESTREAM_HTTP, else the flag's default.
func (s *binarySpec) opsAddr(inv invocation, env map[string]string) string {
	if v, ok := inv.flags["http"]; ok {
		return v
	}
	if v := env["CRATESTREAM_HTTP"]; v != "" {
		return v
	}
	fs, _ := s.flagsOf("run")
	return fs["http"].def
}

func (s *binarySpec) flagOrEnv(inv invocation, env map[string]string, flagName, envName string) string {
	if v, ok := inv.flags[flagName]; ok {
		return v
	}
	if v := env[envName]; v != "" {
		return v
	}
	fs, _ := s.flagsOf(inv.command)
	return fs[flagName].def
}

func portOf(addr string) int {
	i := strings.LastIndex(addr, ":")
	if i < 0 {
		return 0
	}
	p, _ := strconv.Atoi(addr[i+1:])
	return p
}

// knownEnv are the environment variables the binary reads: string literals
// of the non-test sources of this package and of the code it runs
// (connectors, processors, internal).
func knownEnv(t *testing.T) map[string]bool {
	t.Helper()
	re := regexp.MustCompile(`"((?:CRATESTREAM|DISCOGS)_[A-Z0-9_]+)"`)
	out := map[string]bool{}
	for _, m := range literals(t, re, "internal", "connectors", "processors", "cmd") {
		out[m] = true
	}
	if !out["CRATESTREAM_BROKERS"] {
		t.Fatal("found no CRATESTREAM_BROKERS literal in the sources")
	}
	// Flags whose environment is built from a prefix (the Redis and
	// ClickHouse connections) document it in their help: "(env NAME)".
	envInHelp := regexp.MustCompile(`\(env ((?:CRATESTREAM|DISCOGS)_[A-Z0-9_]+)`)
	for _, cmd := range []string{"run", "query", "topics", "demo"} {
		help, err := helpOf(cmd, "--help")
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range envInHelp.FindAllStringSubmatch(help, -1) {
			out[m[1]] = true
		}
	}
	if !out["CRATESTREAM_REDIS_PASSWORD_FILE"] {
		t.Fatal("found no CRATESTREAM_REDIS_PASSWORD_FILE in run's help")
	}
	return out
}

// literals are the first submatches of re in the repository's non-test Go
// sources under dirs.
func literals(t *testing.T, re *regexp.Regexp, dirs ...string) []string {
	t.Helper()
	var out []string
	for _, dir := range dirs {
		err := filepath.WalkDir(filepath.Join(repoRoot, dir), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range re.FindAllSubmatch(b, -1) {
				out = append(out, string(m[1]))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// servicePorts are the ports a `run` instance listens on besides the ops
// server: fakemarket's --fakemarket-listen and the gateway's
// CRATESTREAM_GATEWAY_LISTEN (default :8080, gateway.ConfigFromEnv).
func (s *binarySpec) servicePorts(inv invocation, env map[string]string) map[int]bool {
	out := map[int]bool{}
	if slices.Contains(inv.args, "fakemarket") {
		out[portOf(s.flagOrEnv(inv, env, "fakemarket-listen", "CRATESTREAM_FAKEMARKET_LISTEN"))] = true
	}
	if slices.Contains(inv.args, "gateway") {
		addr := env["CRATESTREAM_GATEWAY_LISTEN"]
		if addr == "" {
			addr = ":8080"
		}
		out[portOf(addr)] = true
	}
	return out
}

// processors with on-disk stores: a --on-disk-cache > 0 instance needs a
// persistent state directory.
func onDisk(inv invocation) bool {
	v, ok := inv.flags["on-disk-cache"]
	n, _ := strconv.ParseInt(v, 0, 64)
	return ok && n > 0
}

// What each worker needs besides Kafka (the services' summaries say so).
var needs = map[string][]string{
	"cartbuilder":     {"CRATESTREAM_REDIS"},
	"scraper":         {"CRATESTREAM_REDIS"},
	"importer":        {"CRATESTREAM_REDIS"},
	"clickhouse-sink": {"CRATESTREAM_CLICKHOUSE"},
	"gateway":         {"CRATESTREAM_REDIS"},
}

var envFlag = map[string]string{
	"CRATESTREAM_BROKERS":    "brokers",
	"CRATESTREAM_REDIS":      "redis",
	"CRATESTREAM_CLICKHOUSE": "clickhouse",
}

func keys[V any](m map[string]V) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

// --- docker-compose.yml -------------------------------------------------------

// composeTestEnv stands for the environment `docker compose` runs with:
// the variables a compose variant requires, each with a recognisable value,
// so the test sees where every value ends up (and that none is written in
// the files themselves). Nothing else of this machine's environment is used:
// ${VAR:-default} takes its default.
var composeTestEnv = map[string]string{
	"CRATESTREAM_LOOKUP_SECRET": "lookup-secret-value-from-the-environment",
	"GRAFANA_ADMIN_PASSWORD":    "grafana-password-value-from-the-environment",
}

// A compose variant: the files `docker compose -f ... -f ...` merges.
type composeVariant struct {
	name   string
	files  []string
	secure bool // deploy/compose/secure.yml: SASL_SSL Kafka, passwords
}

var composeVariants = []composeVariant{
	{name: "base", files: []string{"docker-compose.yml"}},
	{name: "secure", files: []string{"docker-compose.yml", "deploy/compose/secure.yml"}, secure: true},
}

func loadCompose(t *testing.T, files []string, env map[string]string) (*composetypes.Project, error) {
	t.Helper()
	var paths, kv []string
	for _, f := range files {
		paths = append(paths, filepath.Join(repoRoot, f))
	}
	for k, v := range env {
		kv = append(kv, k+"="+v)
	}
	opts, err := composecli.NewProjectOptions(paths,
		composecli.WithWorkingDirectory(repoRoot),
		composecli.WithEnv(kv),
		composecli.WithProfiles([]string{"*"}),
	)
	if err != nil {
		t.Fatal(err)
	}
	return opts.LoadProject(context.Background())
}

func ourImage(svc composetypes.ServiceConfig) bool {
	if svc.Build != nil && filepath.Base(svc.Build.Dockerfile) == "Dockerfile" && strings.Contains(svc.Build.Dockerfile, "deploy") {
		return true
	}
	return imageRepo(svc.Image) == "cratestream"
}

// imageRepo is an image reference's last path element without tag/digest.
func imageRepo(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		ref = ref[i+1:]
	}
	ref, _, _ = strings.Cut(ref, ":")
	return ref
}

// The lookup secret is required: without CRATESTREAM_LOOKUP_SECRET the
// compose files do not load (`${VAR:?message}`), so no stack starts with
// instances that answer no store lookup.
func TestDeployComposeNeedsLookupSecret(t *testing.T) {
	for _, v := range composeVariants {
		env := maps.Clone(composeTestEnv)
		delete(env, "CRATESTREAM_LOOKUP_SECRET")
		_, err := loadCompose(t, v.files, env)
		if err == nil || !strings.Contains(err.Error(), "CRATESTREAM_LOOKUP_SECRET") {
			t.Errorf("%s without CRATESTREAM_LOOKUP_SECRET: err %v, want a required-variable error naming it", v.name, err)
		}
	}
}

func TestDeployCompose(t *testing.T) {
	for _, v := range composeVariants {
		t.Run(v.name, func(t *testing.T) {
			p, err := loadCompose(t, v.files, composeTestEnv)
			if err != nil {
				t.Fatalf("%s: %v", strings.Join(v.files, " + "), err)
			}
			checkCompose(t, p, v)
		})
	}
}

func checkCompose(t *testing.T, p *composetypes.Project, v composeVariant) {
	spec := loadBinarySpec(t)
	envs := knownEnv(t)

	ran := map[string][]string{}  // binary service -> compose services running it
	opsPorts := map[string]int{}  // compose service -> ops port
	lookup := map[string]string{} // compose service -> where its lookup secret comes from
	kafka := checkComposeKafka(t, p, v)
	var topicsJob string
	for name, svc := range p.Services {
		if !ourImage(svc) {
			continue
		}
		t.Run(name, func(t *testing.T) {
			if len(svc.Entrypoint) > 0 && !slices.Equal([]string(svc.Entrypoint), []string{imageEntrypoint}) {
				t.Errorf("entrypoint %q overrides the image's", svc.Entrypoint)
			}
			inv, errs := spec.parseInvocation(svc.Command)
			for _, e := range errs {
				t.Errorf("command %q: %s", svc.Command, e)
			}
			env := map[string]string{}
			for k, v := range svc.Environment {
				if v != nil {
					env[k] = *v
				}
				if (strings.HasPrefix(k, "CRATESTREAM_") || strings.HasPrefix(k, "DISCOGS_")) && !envs[k] {
					t.Errorf("environment %s is not read by the binary", k)
				}
			}
			checkSecretFlags(t, inv)
			if inv.command == "run" || inv.command == "topics" {
				addr := spec.flagOrEnv(inv, env, "brokers", "CRATESTREAM_BROKERS")
				checkComposeAddr(t, p, name, "brokers", addr)
				kafka.checkClient(t, addr, env)
				if v.secure {
					checkComposeSecureClient(t, p, svc, env, kafka)
				}
			}
			if inv.command == "topics" {
				if slices.Equal(inv.args, []string{"create"}) {
					topicsJob = name
				}
				if svc.Restart != "" && svc.Restart != "no" {
					t.Errorf("one-shot job with restart %q", svc.Restart)
				}
				return
			}
			if inv.command != "run" {
				return
			}
			for _, s := range inv.args {
				ran[s] = append(ran[s], name)
				for _, need := range needs[s] {
					addr := spec.flagOrEnv(inv, env, envFlag[need], need)
					if addr == "" {
						t.Errorf("runs %s without %s (or --%s)", s, need, envFlag[need])
						continue
					}
					checkComposeAddr(t, p, name, envFlag[need], addr)
				}
			}

			// Replicas: nothing may pin a container's identity.
			if svc.ContainerName != "" || svc.Hostname != "" {
				t.Errorf("container_name %q / hostname %q: replicas need their own (the instance id defaults to the hostname)", svc.ContainerName, svc.Hostname)
			}
			if _, ok := inv.flags["instance-id"]; ok || env["CRATESTREAM_INSTANCE_ID"] != "" {
				t.Errorf("fixed instance id: replicas would share a transactional id")
			}
			for _, port := range svc.Ports {
				if port.Published != "" && !strings.Contains(port.Published, "-") {
					t.Errorf("publishes host port %s: a second replica could not start", port.Published)
				}
			}

			ops := portOf(spec.opsAddr(inv, env))
			if ops == 0 {
				t.Fatalf("no ops port in %q", spec.opsAddr(inv, env))
			}
			opsPorts[name] = ops
			checkOpsAddr(t, inv, env)
			for _, port := range svc.Ports {
				if int(port.Target) == ops {
					t.Errorf("publishes the ops port %d on the host (%s): it stays inside the compose network, where Prometheus and the other instances reach it", ops, port.Published)
				}
			}
			lookup[name] = composeLookupSource(t, p, svc, env)
			allowed := spec.servicePorts(inv, env)
			allowed[ops] = true
			exposed := map[int]bool{}
			for _, e := range svc.Expose {
				n, _ := strconv.Atoi(e)
				exposed[n] = true
				if !allowed[n] {
					t.Errorf("exposes %s: nothing listens there (ops %d)", e, ops)
				}
			}
			for _, port := range svc.Ports {
				exposed[int(port.Target)] = true
				if !allowed[int(port.Target)] {
					t.Errorf("port %d: nothing listens there (ops %d)", port.Target, ops)
				}
			}
			if !exposed[ops] {
				t.Errorf("ops port %d is not exposed (Prometheus scrapes it)", ops)
			}

			hc := svc.HealthCheck
			if hc == nil || hc.Disable || len(hc.Test) == 0 {
				t.Fatalf("no health check")
			}
			test := []string(hc.Test)
			if len(test) != 3 || test[0] != "CMD" || test[1] != imageProbe {
				t.Fatalf("health check %q: want [CMD %s http://127.0.0.1:%d/readyz] (the image has no shell)", test, imageProbe, ops)
			}
			u, err := url.Parse(test[2])
			if err != nil {
				t.Fatalf("health check URL: %v", err)
			}
			if h := u.Hostname(); h != "127.0.0.1" && h != "localhost" {
				t.Errorf("health check host %q: want the container's own ops server", h)
			}
			if portOf(u.Host) != ops {
				t.Errorf("health check %s: port %d, the ops server listens on %d", test[2], portOf(u.Host), ops)
			}
			if u.Path != "/readyz" && u.Path != "/healthz" {
				t.Errorf("health check path %q: want /readyz or /healthz", u.Path)
			}
		})
	}
	if topicsJob == "" {
		t.Fatal("no service runs `topics create`")
	}

	// Every service of the binary runs somewhere, each in one compose service
	// (scaling one processor must not scale another).
	for s := range spec.services {
		if len(ran[s]) != 1 {
			t.Errorf("binary service %s runs in compose services %v, want exactly one", s, ran[s])
		}
	}

	// Start ordering.
	for name, svc := range p.Services {
		for dep, d := range svc.DependsOn {
			target, ok := p.Services[dep]
			if !ok {
				t.Errorf("%s depends on unknown service %s", name, dep)
				continue
			}
			switch d.Condition {
			case composetypes.ServiceConditionHealthy:
				if target.HealthCheck == nil || target.HealthCheck.Disable {
					t.Errorf("%s waits for %s to be healthy, which has no health check", name, dep)
				}
			case composetypes.ServiceConditionCompletedSuccessfully:
				if target.Restart != "" && target.Restart != "no" {
					t.Errorf("%s waits for %s to complete, which restarts (%s)", name, dep, target.Restart)
				}
			}
		}
		if ourImage(svc) && name != topicsJob && len(svc.Profiles) == 0 {
			if d, ok := svc.DependsOn[topicsJob]; !ok || d.Condition != composetypes.ServiceConditionCompletedSuccessfully {
				t.Errorf("%s does not wait for %s (service_completed_successfully)", name, topicsJob)
			}
		}
	}
	if kafka, ok := p.Services[topicsJob].DependsOn["kafka"]; !ok || kafka.Condition != composetypes.ServiceConditionHealthy {
		t.Errorf("%s does not wait for a healthy kafka", topicsJob)
	}

	checkPrometheus(t, opsPorts)
	checkGrafana(t)

	// One lookup secret for all: every instance and the gateway (which
	// reads recommendations from the recommend instances through lookups)
	// take it from the same place.
	sources := map[string][]string{}
	for svc, src := range lookup {
		sources[src] = append(sources[src], svc)
	}
	if len(sources) != 1 {
		t.Errorf("the instances take the lookup secret from different places: %v", sources)
	}
	for _, s := range []string{"gateway", "recommend"} {
		for _, svc := range ran[s] {
			if lookup[svc] == "" {
				t.Errorf("%s (runs %s) has no lookup secret", svc, s)
			}
		}
	}
	checkComposeSecretValues(t, p, v)
	if v.secure {
		checkComposeGrafanaSecure(t, p)
	}
}

// checkComposeGrafanaSecure: with ClickHouse's `default` user gone, Grafana's
// ClickHouse datasource logs in as ClickHouse's user with the password file
// of the same compose secret; the datasource uids stay the dashboards'.
func checkComposeGrafanaSecure(t *testing.T, p *composetypes.Project) {
	t.Helper()
	g := p.Services["grafana"]
	const target = "/etc/grafana/provisioning/datasources/datasources.yml"
	src := bindSourceAt(g, target)
	if src == "" {
		t.Errorf("grafana: no datasources file mounted at %s for the ClickHouse user", target)
		return
	}
	var prov struct {
		Datasources []struct {
			UID      string `json:"uid"`
			Type     string `json:"type"`
			JSONData struct {
				Username string `json:"username"`
			} `json:"jsonData"`
			Secure struct {
				Password string `json:"password"`
			} `json:"secureJsonData"`
		} `json:"datasources"`
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &prov); err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	types := map[string]string{}
	cs := p.Services["clickhouse"]
	for _, d := range prov.Datasources {
		types[d.UID] = d.Type
		if d.Type != "grafana-clickhouse-datasource" {
			continue
		}
		if u := cs.Environment["CLICKHOUSE_USER"]; u == nil || *u != d.JSONData.Username {
			t.Errorf("%s: ClickHouse datasource user %q, ClickHouse's is %v", src, d.JSONData.Username, u)
		}
		file, ok := strings.CutPrefix(d.Secure.Password, "$__file{")
		file = strings.TrimSuffix(file, "}")
		secret, mounted := composeSecretAt(p, g, file)
		if _, chToo := composeSecretAt(p, cs, file); !ok || !mounted || !chToo {
			t.Errorf("%s: ClickHouse password %q is not $__file{} of a secret grafana and clickhouse both mount (%s)", src, d.Secure.Password, secret)
		}
	}
	if types["prometheus"] != "prometheus" || types["clickhouse"] != "grafana-clickhouse-datasource" {
		t.Errorf("%s: datasources %v: the dashboards use uids prometheus and clickhouse", src, types)
	}
}

// composeKafka is the broker of a compose variant as the apache/kafka
// image configures it from the environment.
type composeKafka struct {
	listeners  map[string]string // advertised host:port -> listener name
	protocol   map[string]string // listener name -> security protocol
	mechanisms []string          // KAFKA_SASL_ENABLED_MECHANISMS
	scramUser  string            // the user the SCRAM job creates
	scramFrom  string            // the compose secret of its password
}

// checkComposeKafka reads the kafka service's listeners and checks them the
// way the apache/kafka 3.9 image's scripts use them: KAFKA_* variables
// become properties (a value holding "=" is dropped); an advertised
// "SSL://" listener needs KAFKA_SSL_KEYSTORE_FILENAME, _KEYSTORE_CREDENTIALS
// and _KEY_CREDENTIALS, files in /etc/kafka/secrets; an advertised "SASL_"
// one needs KAFKA_OPTS naming a JAAS file. In the secure variant every
// listener bound beyond the broker's loopback is SASL_SSL.
func checkComposeKafka(t *testing.T, p *composetypes.Project, v composeVariant) *composeKafka {
	t.Helper()
	svc, ok := p.Services["kafka"]
	if !ok {
		t.Fatal("no kafka service")
	}
	env := map[string]string{}
	for k, val := range svc.Environment {
		if val != nil {
			env[k] = *val
		}
	}
	// The image's properties spec leaves these out of the properties.
	notProps := []string{"KAFKA_VERSION", "KAFKA_HEAP_OPT", "KAFKA_LOG4J_OPTS", "KAFKA_OPTS", "KAFKA_JMX_OPTS",
		"KAFKA_JVM_PERFORMANCE_OPTS", "KAFKA_GC_LOG_OPTS", "KAFKA_LOG4J_ROOT_LOGLEVEL", "KAFKA_LOG4J_LOGGERS", "KAFKA_TOOLS_LOG4J_LOGLEVEL"}
	for k, val := range env {
		if strings.HasPrefix(k, "KAFKA_") && !slices.Contains(notProps, k) && strings.Contains(val, "=") {
			t.Errorf("kafka: %s holds \"=\": the apache/kafka image drops such a variable instead of making it a property", k)
		}
	}
	k := &composeKafka{listeners: map[string]string{}, protocol: map[string]string{}}
	for _, e := range strings.Split(env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"], ",") {
		name, proto, _ := strings.Cut(strings.TrimSpace(e), ":")
		k.protocol[name] = proto
	}
	loopback := func(addr string) bool {
		host := addr[:max(strings.LastIndex(addr, ":"), 0)]
		return host == "127.0.0.1" || host == "localhost" || host == "[::1]"
	}
	bound := map[string]string{} // listener name -> listen address
	for _, e := range strings.Split(env["KAFKA_LISTENERS"], ",") {
		name, addr, _ := strings.Cut(strings.TrimSpace(e), "://")
		bound[name] = addr
		if k.protocol[name] == "" {
			t.Errorf("kafka: listener %s has no security protocol in KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", name)
		}
		if v.secure && !loopback(addr) && k.protocol[name] != "SASL_SSL" {
			t.Errorf("kafka: listener %s://%s is %s beyond the broker's loopback, want SASL_SSL", name, addr, k.protocol[name])
		}
	}
	for _, e := range strings.Split(env["KAFKA_ADVERTISED_LISTENERS"], ",") {
		name, addr, _ := strings.Cut(strings.TrimSpace(e), "://")
		k.listeners[addr] = name
		if b, ok := bound[name]; !ok || portOf(b) != portOf(addr) {
			t.Errorf("kafka: advertised listener %s://%s is not bound on that port (KAFKA_LISTENERS %q)", name, addr, env["KAFKA_LISTENERS"])
		}
	}
	advertised := env["KAFKA_ADVERTISED_LISTENERS"]
	if strings.Contains(advertised, "SSL://") {
		for _, need := range []string{"KAFKA_SSL_KEYSTORE_FILENAME", "KAFKA_SSL_KEYSTORE_CREDENTIALS", "KAFKA_SSL_KEY_CREDENTIALS"} {
			if env[need] == "" {
				t.Errorf("kafka: an SSL listener is advertised but %s is not set (the image's configure script exits)", need)
			}
		}
		if vol := volumeAt(svc, "/etc/kafka/secrets"); vol == "" {
			t.Errorf("kafka: no volume at /etc/kafka/secrets, where the image reads the keystore")
		} else if composeInitWriting(p, "kafka", vol) == "" {
			t.Errorf("kafka: nothing it waits for (service_completed_successfully) writes the volume %s of its keystore", vol)
		}
	}
	if strings.Contains(advertised, "SASL_") {
		_, jaas, ok := strings.Cut(env["KAFKA_OPTS"], "-Djava.security.auth.login.config=")
		jaas, _, _ = strings.Cut(jaas, " ")
		if !ok || jaas == "" {
			t.Errorf("kafka: a SASL listener is advertised but KAFKA_OPTS names no JAAS file (java.security.auth.login.config)")
		} else if src := bindSourceAt(svc, jaas); src == "" {
			t.Errorf("kafka: the JAAS file %s is not mounted from the repository", jaas)
		} else if b, err := os.ReadFile(src); err != nil || !strings.Contains(string(b), "ScramLoginModule") || !strings.Contains(string(b), "KafkaServer") {
			t.Errorf("kafka: JAAS file %s: want a KafkaServer entry with the ScramLoginModule (%v)", src, err)
		}
		k.mechanisms = strings.Split(env["KAFKA_SASL_ENABLED_MECHANISMS"], ",")
		// The job that creates the SCRAM user reaches the broker on its
		// loopback listener by sharing its network namespace; the topics
		// job waits for it.
		entity := regexp.MustCompile(`--entity-name (\S+)`)
		for name, job := range p.Services {
			script := strings.Join(append(append([]string{}, job.Entrypoint...), job.Command...), " ")
			m := entity.FindStringSubmatch(script)
			if m == nil || !strings.Contains(script, "kafka-configs.sh") || !strings.Contains(script, "SCRAM-SHA-512=") {
				continue
			}
			k.scramUser = m[1]
			if job.NetworkMode != "service:kafka" {
				t.Errorf("%s: creates SCRAM users without sharing kafka's network namespace (network_mode: service:kafka): the loopback listener is out of its reach", name)
			}
			for _, s := range job.Secrets {
				if strings.Contains(script, "/run/secrets/"+s.Source) {
					k.scramFrom = s.Source
				}
			}
			if d, ok := p.Services["topics"].DependsOn[name]; !ok || d.Condition != composetypes.ServiceConditionCompletedSuccessfully {
				t.Errorf("topics does not wait for %s, which creates the SCRAM user", name)
			}
		}
		if k.scramUser == "" || k.scramFrom == "" {
			t.Errorf("kafka: SASL listeners, but no service creates a SCRAM-SHA-512 user (kafka-configs.sh --entity-name ...) from a compose secret")
		}
	}
	return k
}

// checkClient: a client's seed brokers are advertised listeners; a
// PLAINTEXT one gets no SASL or TLS settings, a SASL_SSL one a mechanism
// the broker enables.
func (k *composeKafka) checkClient(t *testing.T, brokers string, env map[string]string) {
	t.Helper()
	for _, b := range strings.Split(brokers, ",") {
		name, ok := k.listeners[strings.TrimSpace(b)]
		if !ok {
			t.Errorf("broker %s is no advertised listener of kafka (%v)", b, k.listeners)
			continue
		}
		mech := env["CRATESTREAM_KAFKA_SASL_MECHANISM"]
		switch proto := k.protocol[name]; proto {
		case "PLAINTEXT":
			if mech != "" || env["CRATESTREAM_KAFKA_TLS_CA"] != "" {
				t.Errorf("broker %s is a PLAINTEXT listener, the client speaks SASL %q / TLS", b, mech)
			}
		case "SASL_SSL":
			if !slices.Contains(k.mechanisms, mech) {
				t.Errorf("broker %s (SASL_SSL) enables %v, the client uses SASL %q", b, k.mechanisms, mech)
			}
		default:
			t.Errorf("broker %s: listener %s with protocol %q", b, name, proto)
		}
	}
}

// checkComposeSecureClient: in the secure variant a cratestream service
// carries every setting of the secured connections, each password as the
// file of a compose secret that the server it logs in to is configured
// from (so both sides hold the same one), the CA from the volume the
// certificates' init service writes.
func checkComposeSecureClient(t *testing.T, p *composetypes.Project, svc composetypes.ServiceConfig, env map[string]string, k *composeKafka) {
	t.Helper()
	for _, need := range []string{"CRATESTREAM_KAFKA_SASL_MECHANISM", "CRATESTREAM_KAFKA_USERNAME", "CRATESTREAM_KAFKA_PASSWORD_FILE",
		"CRATESTREAM_KAFKA_TLS_CA", "CRATESTREAM_REDIS_USER", "CRATESTREAM_REDIS_PASSWORD_FILE",
		"CRATESTREAM_CLICKHOUSE_USER", "CRATESTREAM_CLICKHOUSE_PASSWORD_FILE"} {
		if env[need] == "" {
			t.Errorf("secure variant without %s", need)
		}
	}
	for _, lit := range []string{"CRATESTREAM_KAFKA_PASSWORD", "CRATESTREAM_REDIS_PASSWORD", "CRATESTREAM_CLICKHOUSE_PASSWORD"} {
		if env[lit] != "" {
			t.Errorf("%s set: passwords come from files here (%s_FILE)", lit, lit)
		}
	}
	secretOf := func(envName string) string {
		f := env[envName]
		src, ok := composeSecretAt(p, svc, f)
		if !ok {
			t.Errorf("%s %s is no compose secret this service mounts", envName, f)
			return ""
		}
		if file := p.Secrets[src].File; !strings.Contains(filepath.ToSlash(file), "/deploy/compose/secrets/") {
			t.Errorf("compose secret %s comes from %q, not a file under deploy/compose/secrets/ (git-ignored)", src, file)
		}
		return src
	}
	if s := secretOf("CRATESTREAM_KAFKA_PASSWORD_FILE"); s != "" && s != k.scramFrom {
		t.Errorf("Kafka password from secret %s, the SCRAM user is created from %q", s, k.scramFrom)
	}
	if u := env["CRATESTREAM_KAFKA_USERNAME"]; u != k.scramUser {
		t.Errorf("Kafka user %s, the SCRAM user created is %q", u, k.scramUser)
	}
	if ca := env["CRATESTREAM_KAFKA_TLS_CA"]; ca != "" {
		if vol := volumeAt(svc, filepath.Dir(ca)); vol == "" {
			t.Errorf("CRATESTREAM_KAFKA_TLS_CA %s: no volume mounted at %s", ca, filepath.Dir(ca))
		} else if composeInitWriting(p, "kafka", vol) == "" {
			t.Errorf("CRATESTREAM_KAFKA_TLS_CA %s: volume %s is not written by what kafka waits for", ca, vol)
		}
	}
	// Redis: its ACL file is made from the same secret for the same user,
	// the default user off.
	if s := secretOf("CRATESTREAM_REDIS_PASSWORD_FILE"); s != "" {
		rs := p.Services["redis"]
		script := strings.Join(append(append([]string{}, rs.Entrypoint...), rs.Command...), " ")
		if _, ok := composeSecretAt(p, rs, "/run/secrets/"+s); !ok || !strings.Contains(script, "/run/secrets/"+s) ||
			!strings.Contains(script, "user "+env["CRATESTREAM_REDIS_USER"]+" on >") || !strings.Contains(script, "user default off") {
			t.Errorf("redis is not configured with user %s and the password of secret %s (default user off): %q", env["CRATESTREAM_REDIS_USER"], s, script)
		}
	}
	// ClickHouse: CLICKHOUSE_USER with CLICKHOUSE_PASSWORD read from the
	// same secret.
	if s := secretOf("CRATESTREAM_CLICKHOUSE_PASSWORD_FILE"); s != "" {
		cs := p.Services["clickhouse"]
		script := strings.Join(append(append([]string{}, cs.Entrypoint...), cs.Command...), " ")
		if _, ok := composeSecretAt(p, cs, "/run/secrets/"+s); !ok || !strings.Contains(script, `CLICKHOUSE_PASSWORD="$(cat /run/secrets/`+s+`)"`) {
			t.Errorf("clickhouse does not take CLICKHOUSE_PASSWORD from secret %s: %q", s, script)
		}
		if u := cs.Environment["CLICKHOUSE_USER"]; u == nil || *u != env["CRATESTREAM_CLICKHOUSE_USER"] {
			t.Errorf("clickhouse CLICKHOUSE_USER %v, the clients log in as %s", u, env["CRATESTREAM_CLICKHOUSE_USER"])
		}
		if v := cs.Environment["CLICKHOUSE_SKIP_USER_SETUP"]; v != nil && *v == "1" {
			t.Errorf("clickhouse: CLICKHOUSE_SKIP_USER_SETUP=1 skips making the user")
		}
	}
}

// volumeAt is the named volume a service mounts at target ("" if none).
func volumeAt(svc composetypes.ServiceConfig, target string) string {
	for _, m := range svc.Volumes {
		if m.Type == composetypes.VolumeTypeVolume && filepath.Clean(m.Target) == filepath.Clean(target) {
			return m.Source
		}
	}
	return ""
}

// bindSourceAt is the host file a service bind-mounts at target.
func bindSourceAt(svc composetypes.ServiceConfig, target string) string {
	for _, m := range svc.Volumes {
		if m.Type == composetypes.VolumeTypeBind && filepath.Clean(m.Target) == filepath.Clean(target) {
			return m.Source
		}
	}
	return ""
}

// composeInitWriting: a one-shot service that service waits for
// (service_completed_successfully) and that mounts volume writable.
func composeInitWriting(p *composetypes.Project, service, volume string) string {
	for dep, d := range p.Services[service].DependsOn {
		if d.Condition != composetypes.ServiceConditionCompletedSuccessfully {
			continue
		}
		for _, m := range p.Services[dep].Volumes {
			if m.Type == composetypes.VolumeTypeVolume && m.Source == volume && !m.ReadOnly {
				return dep
			}
		}
	}
	return ""
}

// checkOpsAddr: the ops address is set explicitly (--http or
// CRATESTREAM_HTTP), not left to the binary's default, and on all
// interfaces: probes from outside the container (the kubelet) and
// Prometheus reach it there.
func checkOpsAddr(t *testing.T, inv invocation, env map[string]string) {
	t.Helper()
	addr, ok := inv.flags["http"]
	if !ok {
		addr = env["CRATESTREAM_HTTP"]
	}
	if addr == "" {
		t.Errorf("the ops address is left to the binary's default: set CRATESTREAM_HTTP (or --http) explicitly")
		return
	}
	host := addr[:max(strings.LastIndex(addr, ":"), 0)]
	if host != "" && host != "0.0.0.0" && host != "[::]" {
		t.Errorf("ops address %q listens on %s only: probes and Prometheus come from outside the container", addr, host)
	}
}

// checkSecretFlags: no password, secret or token on a command line (ps,
// docker inspect, the pod spec): only the flags naming a file.
func checkSecretFlags(t *testing.T, inv invocation) {
	t.Helper()
	for name := range inv.flags {
		l := strings.ToLower(name)
		if (strings.Contains(l, "password") || strings.Contains(l, "secret") || strings.Contains(l, "token")) && !strings.HasSuffix(l, "-file") {
			t.Errorf("flag --%s puts a secret on the command line: use its environment variable or a -file flag", name)
		}
	}
}

// composeLookupSource is where a `run` service's lookup secret comes from:
// the variable CRATESTREAM_LOOKUP_SECRET of the environment compose runs
// in, or a file of a compose secret. Empty (an error) when it has none.
func composeLookupSource(t *testing.T, p *composetypes.Project, svc composetypes.ServiceConfig, env map[string]string) string {
	t.Helper()
	if f := env["CRATESTREAM_LOOKUP_SECRET_FILE"]; f != "" {
		src, ok := composeSecretAt(p, svc, f)
		if !ok {
			t.Errorf("CRATESTREAM_LOOKUP_SECRET_FILE %s is no compose secret this service mounts", f)
			return ""
		}
		return "compose secret " + src
	}
	switch v := env["CRATESTREAM_LOOKUP_SECRET"]; v {
	case "":
		t.Errorf("no lookup secret (CRATESTREAM_LOOKUP_SECRET or CRATESTREAM_LOOKUP_SECRET_FILE): it would answer no store lookup, and the gateway could not read recommendations")
		return ""
	case composeTestEnv["CRATESTREAM_LOOKUP_SECRET"]:
		return "$CRATESTREAM_LOOKUP_SECRET"
	default:
		t.Errorf("CRATESTREAM_LOOKUP_SECRET is written in the compose file, not taken from the environment")
		return ""
	}
}

// composeSecretAt: the compose secret a service mounts at path, by its
// top-level name.
func composeSecretAt(p *composetypes.Project, svc composetypes.ServiceConfig, path string) (string, bool) {
	for _, s := range svc.Secrets {
		target := s.Target
		if target == "" {
			target = s.Source
		}
		if !filepath.IsAbs(target) {
			target = "/run/secrets/" + target
		}
		if target == path {
			_, ok := p.Secrets[s.Source]
			return s.Source, ok
		}
	}
	return "", false
}

var secretEnvName = regexp.MustCompile(`(?i)(PASSWORD|SECRET|TOKEN)`)

// checkComposeSecretValues: a secret reaches a container from the
// environment compose runs in or from a file, never from the compose files.
// Every environment variable named like a password, secret or token is
// empty, a value of composeTestEnv (so `${VAR...}` in the file) or names a
// file (_FILE); those values appear in no command, entrypoint, health check
// or label; and no command line carries a password after a flag.
func checkComposeSecretValues(t *testing.T, p *composetypes.Project, v composeVariant) {
	t.Helper()
	fromEnv := map[string]bool{}
	for _, val := range composeTestEnv {
		fromEnv[val] = true
	}
	passArg := regexp.MustCompile(`(?i)(?:--?[a-z-]*pass(?:word)?|requirepass)(?:=|\s+)("?[^\s"]*)`)
	for name, svc := range p.Services {
		// Grafana's admin password defaults to "admin" in the plain
		// variant (a local convenience); the secure one requires it.
		for k, val := range svc.Environment {
			if val == nil || *val == "" || strings.HasSuffix(k, "_FILE") || !secretEnvName.MatchString(k) {
				continue
			}
			if !ourImage(svc) && !v.secure {
				continue
			}
			if !fromEnv[*val] {
				t.Errorf("%s: %s has a value written in the compose files: take it from the environment (${VAR:?...}) or a secret file (%s_FILE)", name, k, k)
			}
		}
		var lines []string
		lines = append(lines, svc.Command...)
		lines = append(lines, svc.Entrypoint...)
		if svc.HealthCheck != nil {
			lines = append(lines, svc.HealthCheck.Test...)
		}
		for k, val := range svc.Labels {
			lines = append(lines, k+"="+val)
		}
		for _, l := range lines {
			for val := range fromEnv {
				if strings.Contains(l, val) {
					t.Errorf("%s: a secret's value is on a command line, entrypoint, health check or label: %q", name, l)
				}
			}
			for _, m := range passArg.FindAllStringSubmatch(l, -1) {
				if arg := strings.TrimPrefix(m[1], `"`); !strings.HasPrefix(arg, "$") && !strings.HasPrefix(arg, "/run/secrets/") {
					t.Errorf("%s: a password on a command line: %q", name, l)
				}
			}
		}
	}
}

// checkComposeAddr: a host:port list naming compose services, and each of
// them depended on (started first).
func checkComposeAddr(t *testing.T, p *composetypes.Project, service, what, addrs string) {
	t.Helper()
	if addrs == "" {
		t.Errorf("no %s address", what)
		return
	}
	for _, a := range strings.Split(addrs, ",") {
		host, _, _ := strings.Cut(strings.TrimSpace(a), ":")
		if _, ok := p.Services[host]; !ok {
			t.Errorf("%s %q: no compose service %q", what, a, host)
			continue
		}
		if _, ok := p.Services[service].DependsOn[host]; !ok && service != "" {
			// Processors reach Kafka through the topics job's dependency.
			if host != "kafka" {
				t.Errorf("%s uses %s at %s but does not depend on it", service, what, a)
			}
		}
	}
}

// Prometheus must scrape every compose service that runs a `run` instance,
// at its ops port.
func checkPrometheus(t *testing.T, opsPorts map[string]int) {
	t.Helper()
	var cfg struct {
		ScrapeConfigs []struct {
			JobName     string `json:"job_name"`
			MetricsPath string `json:"metrics_path"`
			DNSSD       []struct {
				Names []string `json:"names"`
				Type  string   `json:"type"`
				Port  int      `json:"port"`
			} `json:"dns_sd_configs"`
			Static []struct {
				Targets []string `json:"targets"`
			} `json:"static_configs"`
		} `json:"scrape_configs"`
	}
	b, err := os.ReadFile(filepath.Join(repoRoot, "deploy/prometheus/prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("prometheus.yml: %v", err)
	}
	scraped := map[string]int{}
	for _, sc := range cfg.ScrapeConfigs {
		if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
			continue
		}
		for _, d := range sc.DNSSD {
			for _, n := range d.Names {
				scraped[n] = d.Port
			}
		}
		for _, s := range sc.Static {
			for _, tg := range s.Targets {
				h, _, _ := strings.Cut(tg, ":")
				scraped[h] = portOf(tg)
			}
		}
	}
	for svc, port := range opsPorts {
		if got, ok := scraped[svc]; !ok {
			t.Errorf("prometheus.yml does not scrape %s", svc)
		} else if got != port {
			t.Errorf("prometheus.yml scrapes %s on port %d, its ops server listens on %d", svc, got, port)
		}
	}
}

// Grafana: dashboards use provisioned datasources, Prometheus panels use
// metric names the code registers, ClickHouse panels use tables of
// schemas/clickhouse.
func checkGrafana(t *testing.T) {
	t.Helper()
	var prov struct {
		Datasources []struct {
			UID  string `json:"uid"`
			Type string `json:"type"`
		} `json:"datasources"`
	}
	b, err := os.ReadFile(filepath.Join(repoRoot, "deploy/grafana/provisioning/datasources/datasources.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &prov); err != nil {
		t.Fatal(err)
	}
	dsType := map[string]string{}
	for _, d := range prov.Datasources {
		dsType[d.UID] = d.Type
	}
	if dsType["clickhouse"] != "grafana-clickhouse-datasource" || dsType["prometheus"] != "prometheus" {
		t.Errorf("provisioned datasources %v: want uid prometheus and uid clickhouse (grafana-clickhouse-datasource)", dsType)
	}

	metrics := registeredMetrics(t)
	tables := clickhouseTables(t)
	dashboards, err := filepath.Glob(filepath.Join(repoRoot, "deploy/grafana/dashboards/*.json"))
	if err != nil || len(dashboards) == 0 {
		t.Fatalf("no dashboards (%v)", err)
	}
	metricRef := regexp.MustCompile(`\bcratestream_[a-z0-9_]+`)
	tableRef := regexp.MustCompile(`(?i)\b(?:FROM|JOIN)\s+([a-z_][a-z0-9_]*)`)
	for _, f := range dashboards {
		var d struct {
			UID    string      `json:"uid"`
			Panels []dashPanel `json:"panels"`
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if d.UID == "" {
			t.Errorf("%s: no uid", f)
		}
		n := 0
		for _, p := range d.Panels {
			if p.Type == "row" {
				continue
			}
			n++
			for _, tg := range p.Targets {
				ds := tg.Datasource.UID
				if ds == "" {
					ds = p.Datasource.UID
				}
				typ, ok := dsType[ds]
				if !ok {
					t.Errorf("%s: panel %q uses datasource %q, which is not provisioned", filepath.Base(f), p.Title, ds)
				}
				switch typ {
				case "prometheus":
					for _, m := range metricRef.FindAllString(tg.Expr, -1) {
						base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_count"), "_sum")
						if !metrics[m] && !metrics[base] {
							t.Errorf("%s: panel %q: metric %s is not registered anywhere in the code", filepath.Base(f), p.Title, m)
						}
					}
					if tg.Expr == "" {
						t.Errorf("%s: panel %q: empty PromQL", filepath.Base(f), p.Title)
					}
				case "grafana-clickhouse-datasource":
					if tg.RawSQL == "" {
						t.Errorf("%s: panel %q: empty SQL", filepath.Base(f), p.Title)
					}
					for _, m := range tableRef.FindAllStringSubmatch(tg.RawSQL, -1) {
						if !tables[m[1]] {
							t.Errorf("%s: panel %q reads table %s, which schemas/clickhouse does not create", filepath.Base(f), p.Title, m[1])
						}
					}
				}
			}
		}
		if n == 0 {
			t.Errorf("%s: no panels", f)
		}
	}
}

type dashPanel struct {
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		Expr   string `json:"expr"`
		RawSQL string `json:"rawSql"`
	} `json:"targets"`
}

// registeredMetrics are the "cratestream_..." string literals of the
// repository's non-test Go sources (metric names are literals in the code).
func registeredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, m := range literals(t, regexp.MustCompile(`"(cratestream_[a-z0-9_]+)"`), "internal", "connectors", "processors") {
		out[m] = true
	}
	return out
}

func clickhouseTables(t *testing.T) map[string]bool {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(repoRoot, "schemas/clickhouse/*.sql"))
	re := regexp.MustCompile(`(?i)CREATE TABLE (?:IF NOT EXISTS )?([a-z_][a-z0-9_]*)`)
	out := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllSubmatch(b, -1) {
			out[string(m[1])] = true
		}
	}
	if len(out) == 0 {
		t.Fatal("no tables in schemas/clickhouse")
	}
	return out
}

// --- deploy/k8s -----------------------------------------------------------------

type k8sObjects struct {
	deployments  []appsv1.Deployment
	statefulSets []appsv1.StatefulSet
	jobs         []batchv1.Job
	services     []corev1.Service
	configMaps   map[string]corev1.ConfigMap
	secrets      map[string]corev1.Secret
}

func renderKustomize(t *testing.T, dir string) *k8sObjects {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(repoRoot, dir))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	objs := &k8sObjects{configMaps: map[string]corev1.ConfigMap{}, secrets: map[string]corev1.Secret{}}
	for _, r := range m.Resources() {
		b, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		id := r.CurId().String()
		decode := func(into any) {
			t.Helper()
			if err := yaml.UnmarshalStrict(b, into); err != nil {
				t.Fatalf("%s: %s: %v", dir, id, err)
			}
		}
		switch r.GetKind() {
		case "Deployment":
			var d appsv1.Deployment
			decode(&d)
			objs.deployments = append(objs.deployments, d)
		case "StatefulSet":
			var s appsv1.StatefulSet
			decode(&s)
			objs.statefulSets = append(objs.statefulSets, s)
		case "Job":
			var j batchv1.Job
			decode(&j)
			objs.jobs = append(objs.jobs, j)
		case "Service":
			var s corev1.Service
			decode(&s)
			objs.services = append(objs.services, s)
		case "ConfigMap":
			var c corev1.ConfigMap
			decode(&c)
			objs.configMaps[c.Name] = c
		case "Secret":
			var s corev1.Secret
			decode(&s)
			objs.secrets[s.Name] = s
		case "Namespace":
			var n corev1.Namespace
			decode(&n)
		default:
			t.Errorf("%s: unexpected resource %s", dir, id)
		}
	}
	return objs
}

// workload is a pod template with what owns it.
type workload struct {
	kind, name string
	pod        corev1.PodTemplateSpec
	claims     []corev1.PersistentVolumeClaim
}

func (o *k8sObjects) workloads() []workload {
	var ws []workload
	for _, d := range o.deployments {
		ws = append(ws, workload{kind: "Deployment", name: d.Name, pod: d.Spec.Template})
	}
	for _, s := range o.statefulSets {
		ws = append(ws, workload{kind: "StatefulSet", name: s.Name, pod: s.Spec.Template, claims: s.Spec.VolumeClaimTemplates})
	}
	for _, j := range o.jobs {
		ws = append(ws, workload{kind: "Job", name: j.Name, pod: j.Spec.Template})
	}
	return ws
}

// containerEnv resolves a container's literal environment, with envFrom
// ConfigMaps; values from the downward API or secrets are "<from ...>".
func (o *k8sObjects) containerEnv(t *testing.T, c corev1.Container) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef == nil {
			continue
		}
		cm, ok := o.configMaps[ef.ConfigMapRef.Name]
		if !ok {
			if ef.ConfigMapRef.Optional == nil || !*ef.ConfigMapRef.Optional {
				t.Errorf("container %s: envFrom ConfigMap %q does not exist", c.Name, ef.ConfigMapRef.Name)
			}
			continue
		}
		for k, v := range cm.Data {
			env[ef.Prefix+k] = v
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.FieldRef != nil:
			env[e.Name] = "<from " + e.ValueFrom.FieldRef.FieldPath + ">"
		case e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = "<secret " + e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key + ">"
		default:
			env[e.Name] = "<from elsewhere>"
		}
	}
	return env
}

// probePort resolves a probe's port against the container's ports.
func probePort(c corev1.Container, p *corev1.Probe) (int, string) {
	if p == nil || p.HTTPGet == nil {
		return 0, ""
	}
	port := p.HTTPGet.Port
	if port.StrVal == "" {
		return int(port.IntVal), p.HTTPGet.Path
	}
	for _, cp := range c.Ports {
		if cp.Name == port.StrVal {
			return int(cp.ContainerPort), p.HTTPGet.Path
		}
	}
	return -1, p.HTTPGet.Path
}

// The kustomizations checked: the base, and overlays on it.
var kustomizeDirs = []string{"deploy/k8s/base", "deploy/k8s/overlays/local", "deploy/k8s/overlays/secure"}

// secureKustomize: the overlays whose clients use SASL_SSL and passwords.
var secureKustomize = map[string]bool{"deploy/k8s/overlays/secure": true}

// operatorSecrets are the Secrets the manifests reference and do not
// contain: the operator creates them (README, "Kubernetes", lists each with
// its keys). Optional ones may be absent.
var operatorSecrets = map[string][]string{
	"cratestream-lookup":  {"secret"},
	"cratestream-gateway": {"session-secret"},
	"cratestream-discogs": {"token", "consumer-key", "consumer-secret"},
	// overlays/secure
	"cratestream-kafka":      {"password", "ca.pem"},
	"cratestream-redis":      {"password"},
	"cratestream-clickhouse": {"password"},
}

func TestDeployKustomize(t *testing.T) {
	spec := loadBinarySpec(t)
	envs := knownEnv(t)
	for _, dir := range kustomizeDirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			objs := renderKustomize(t, dir)
			checkK8sSecrets(t, objs, dir)
			ran := map[string][]string{}
			lookup := map[string]string{} // workload -> its lookup secret's reference
			var topicsJob bool
			for _, w := range objs.workloads() {
				pod := w.pod.Spec
				containers := append(append([]corev1.Container(nil), pod.InitContainers...), pod.Containers...)
				for i, c := range containers {
					if imageRepo(c.Image) != "cratestream" {
						continue
					}
					init := i < len(pod.InitContainers)
					where := fmt.Sprintf("%s/%s container %s", w.kind, w.name, c.Name)
					if len(c.Command) > 0 && !slices.Equal(c.Command, []string{imageEntrypoint}) {
						t.Errorf("%s: command %q overrides the image's entrypoint", where, c.Command)
					}
					inv, errs := spec.parseInvocation(c.Args)
					for _, e := range errs {
						t.Errorf("%s: args %q: %s", where, c.Args, e)
					}
					checkSecretFlags(t, inv)
					env := objs.containerEnv(t, c)
					for k := range env {
						if (strings.HasPrefix(k, "CRATESTREAM_") || strings.HasPrefix(k, "DISCOGS_")) && !envs[k] {
							t.Errorf("%s: environment %s is not read by the binary", where, k)
						}
					}
					if inv.command == "run" || inv.command == "topics" {
						if spec.flagOrEnv(inv, env, "brokers", "CRATESTREAM_BROKERS") == "" {
							t.Errorf("%s: no brokers", where)
						}
						if secureKustomize[dir] {
							checkK8sSecureClient(t, where, w, c, env)
						}
					}
					if inv.command == "topics" && slices.Equal(inv.args, []string{"create"}) {
						if w.kind != "Job" {
							t.Errorf("%s: topics create outside a Job", where)
						}
						topicsJob = true
					}
					if inv.command != "run" {
						continue
					}
					if init {
						t.Errorf("%s: `run` in an init container never finishes", where)
						continue
					}
					if w.kind == "Job" {
						t.Errorf("%s: `run` in a Job", where)
					}
					for _, s := range inv.args {
						ran[s] = append(ran[s], w.kind+"/"+w.name)
						for _, need := range needs[s] {
							if spec.flagOrEnv(inv, env, envFlag[need], need) == "" {
								t.Errorf("%s: runs %s without %s", where, s, need)
							}
						}
					}
					if id, ok := env["CRATESTREAM_INSTANCE_ID"]; ok && id != "<from metadata.name>" {
						t.Errorf("%s: CRATESTREAM_INSTANCE_ID %q: replicas need distinct ids (the pod name)", where, id)
					}
					if _, ok := inv.flags["instance-id"]; ok {
						t.Errorf("%s: fixed --instance-id", where)
					}

					ops := portOf(spec.opsAddr(inv, env))
					checkOpsAddr(t, inv, env)
					if v := env["CRATESTREAM_LOOKUP_SECRET"]; strings.HasPrefix(v, "<secret ") {
						lookup[w.kind+"/"+w.name] = v
					} else if env["CRATESTREAM_LOOKUP_SECRET_FILE"] != "" {
						lookup[w.kind+"/"+w.name] = "file " + env["CRATESTREAM_LOOKUP_SECRET_FILE"]
					} else {
						t.Errorf("%s: no lookup secret from a Secret (CRATESTREAM_LOOKUP_SECRET from secretKeyRef): it would answer no store lookup, and the gateway could not read recommendations", where)
					}
					hasPort := false
					listens := spec.servicePorts(inv, env)
					for _, cp := range c.Ports {
						if int(cp.ContainerPort) == ops {
							hasPort = true
						} else if !listens[int(cp.ContainerPort)] {
							t.Errorf("%s: container port %d (%s): nothing listens there (ops %d)", where, cp.ContainerPort, cp.Name, ops)
						}
					}
					if !hasPort {
						t.Errorf("%s: no container port %d (the ops server, %q)", where, ops, spec.opsAddr(inv, env))
					}
					if port, path := probePort(c, c.LivenessProbe); port != ops || path != "/healthz" {
						t.Errorf("%s: liveness probe GET %s on port %d, want /healthz on the ops port %d", where, path, port, ops)
					}
					if port, path := probePort(c, c.ReadinessProbe); port != ops || path != "/readyz" {
						t.Errorf("%s: readiness probe GET %s on port %d, want /readyz on the ops port %d", where, path, port, ops)
					}
					if c.StartupProbe != nil {
						if port, path := probePort(c, c.StartupProbe); port != ops || (path != "/healthz" && path != "/readyz") {
							t.Errorf("%s: startup probe GET %s on port %d, want /healthz on %d", where, path, port, ops)
						}
					}
					if v := w.pod.Annotations["prometheus.io/port"]; v != strconv.Itoa(ops) || w.pod.Annotations["prometheus.io/scrape"] != "true" {
						t.Errorf("%s: prometheus.io/port %q (scrape %q), the ops server listens on %d", where, v, w.pod.Annotations["prometheus.io/scrape"], ops)
					}
					if p := w.pod.Annotations["prometheus.io/path"]; p != "" && p != "/metrics" {
						t.Errorf("%s: prometheus.io/path %s, the ops server serves /metrics", where, p)
					}

					// State: on-disk stores need a persistent volume per
					// replica at the state directory; a read-only root
					// filesystem needs a volume there anyway.
					stateDir := spec.flagOrEnv(inv, env, "state-dir", "CRATESTREAM_STATE_DIR")
					var mount *corev1.VolumeMount
					for i := range c.VolumeMounts {
						if filepath.Clean(c.VolumeMounts[i].MountPath) == filepath.Clean(stateDir) {
							mount = &c.VolumeMounts[i]
						}
					}
					if !filepath.IsAbs(stateDir) {
						t.Errorf("%s: relative state dir %q", where, stateDir)
					}
					if onDisk(inv) {
						if w.kind != "StatefulSet" {
							t.Errorf("%s: on-disk stores (--on-disk-cache) in a %s: want a StatefulSet", where, w.kind)
						}
						claimed := false
						for _, pvc := range w.claims {
							if mount != nil && pvc.Name == mount.Name {
								claimed = true
							}
						}
						if !claimed {
							t.Errorf("%s: on-disk stores at %s without a volumeClaimTemplate mounted there", where, stateDir)
						}
					} else if w.kind == "StatefulSet" {
						t.Errorf("%s: a StatefulSet for in-memory stores", where)
					}
					if c.SecurityContext != nil && c.SecurityContext.ReadOnlyRootFilesystem != nil && *c.SecurityContext.ReadOnlyRootFilesystem && mount == nil {
						t.Errorf("%s: read-only root filesystem and no volume at the state dir %s", where, stateDir)
					}
				}
			}
			if !topicsJob {
				t.Errorf("no Job runs `topics create`")
			}
			for s := range spec.services {
				if len(ran[s]) != 1 {
					t.Errorf("binary service %s runs in %v, want exactly one workload", s, ran[s])
				}
			}
			sources := map[string][]string{}
			for w, src := range lookup {
				sources[src] = append(sources[src], w)
			}
			if len(sources) != 1 {
				t.Errorf("the workloads take the lookup secret from different places: %v", sources)
			}
			checkK8sServices(t, objs)
		})
	}
}

// checkK8sSecrets: secrets reach the pods only by reference. The base
// and every overlay but local contain no Secret; no environment variable
// named like a password, secret or token has a literal value (only
// secretKeyRef, or _FILE naming a file); every Secret referenced is either
// in the rendered output with the key (local's generated one) or one the
// operator creates (operatorSecrets, each listed with its keys in the
// README).
func checkK8sSecrets(t *testing.T, objs *k8sObjects, dir string) {
	t.Helper()
	if dir != "deploy/k8s/overlays/local" {
		for name := range objs.secrets {
			t.Errorf("renders Secret %s: the values of secrets are not part of these manifests (only references)", name)
		}
	}
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	ref := func(where, name, key string, optional bool) {
		if s, ok := objs.secrets[name]; ok {
			if _, ok := s.Data[key]; !ok {
				if _, ok := s.StringData[key]; !ok {
					t.Errorf("%s: Secret %s has no key %s", where, name, key)
				}
			}
			return
		}
		keys, ok := operatorSecrets[name]
		switch {
		case !ok:
			t.Errorf("%s: Secret %s is neither rendered nor one the operator is told to create (operatorSecrets)", where, name)
		case !slices.Contains(keys, key):
			t.Errorf("%s: key %s of Secret %s is not among the keys the operator is told about %v", where, key, name, keys)
		case !optional && !readmeListsSecret(readme, name, keys):
			t.Errorf("%s: README.md has no line naming Secret `%s` with its keys %v", where, name, keys)
		}
	}
	for _, w := range objs.workloads() {
		pod := w.pod.Spec
		for _, c := range append(append([]corev1.Container(nil), pod.InitContainers...), pod.Containers...) {
			where := fmt.Sprintf("%s/%s container %s", w.kind, w.name, c.Name)
			for _, e := range c.Env {
				if secretEnvName.MatchString(e.Name) && !strings.HasSuffix(e.Name, "_FILE") && e.Value != "" {
					t.Errorf("%s: %s has a literal value in the manifests: use a secretKeyRef or %s_FILE", where, e.Name, e.Name)
				}
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					r := e.ValueFrom.SecretKeyRef
					ref(where, r.Name, r.Key, r.Optional != nil && *r.Optional)
				}
			}
			for _, ef := range c.EnvFrom {
				if ef.SecretRef != nil {
					t.Errorf("%s: envFrom Secret %s: name the keys (secretKeyRef or a mounted file)", where, ef.SecretRef.Name)
				}
			}
			for k, v := range objs.containerEnv(t, c) {
				if secretEnvName.MatchString(k) && !strings.HasSuffix(k, "_FILE") && v != "" && !strings.HasPrefix(v, "<secret ") {
					t.Errorf("%s: %s = literal value (from a ConfigMap?): secrets come from Secrets", where, k)
				}
			}
		}
		for _, vol := range pod.Volumes {
			where := fmt.Sprintf("%s/%s volume %s", w.kind, w.name, vol.Name)
			if vol.Secret != nil {
				for _, it := range vol.Secret.Items {
					ref(where, vol.Secret.SecretName, it.Key, vol.Secret.Optional != nil && *vol.Secret.Optional)
				}
			}
			if vol.Projected != nil {
				for _, src := range vol.Projected.Sources {
					if src.Secret == nil {
						continue
					}
					for _, it := range src.Secret.Items {
						ref(where, src.Secret.Name, it.Key, src.Secret.Optional != nil && *src.Secret.Optional)
					}
				}
			}
		}
	}
}

// checkK8sSecureClient: in a secure overlay a container that talks to Kafka
// (every `run` and `topics`) carries every setting of the secured
// connections, and each password and the CA are files of Secrets mounted
// there, with the keys the operator is told about.
func checkK8sSecureClient(t *testing.T, where string, w workload, c corev1.Container, env map[string]string) {
	t.Helper()
	for _, need := range []string{"CRATESTREAM_KAFKA_SASL_MECHANISM", "CRATESTREAM_KAFKA_USERNAME",
		"CRATESTREAM_REDIS_USER", "CRATESTREAM_CLICKHOUSE_USER"} {
		if env[need] == "" {
			t.Errorf("%s: secure overlay without %s", where, need)
		}
	}
	if m := env["CRATESTREAM_KAFKA_SASL_MECHANISM"]; m != "" && !strings.HasPrefix(m, "SCRAM-") {
		t.Errorf("%s: SASL %s: the secure overlay uses SCRAM (PLAIN sends the password itself)", where, m)
	}
	files := map[string]string{ // setting -> the Secret it must come from
		"CRATESTREAM_KAFKA_PASSWORD_FILE":      "cratestream-kafka",
		"CRATESTREAM_KAFKA_TLS_CA":             "cratestream-kafka",
		"CRATESTREAM_REDIS_PASSWORD_FILE":      "cratestream-redis",
		"CRATESTREAM_CLICKHOUSE_PASSWORD_FILE": "cratestream-clickhouse",
	}
	for setting, want := range files {
		path := env[setting]
		if path == "" {
			t.Errorf("%s: secure overlay without %s", where, setting)
			continue
		}
		secret, key, ok := secretFileAt(w.pod.Spec, c, path)
		switch {
		case !ok:
			t.Errorf("%s: %s %s is no file of a Secret mounted in the container and readable by the pod's user", where, setting, path)
		case secret != want || !slices.Contains(operatorSecrets[secret], key):
			t.Errorf("%s: %s is key %s of Secret %s, want one of %v of %s", where, setting, key, secret, operatorSecrets[want], want)
		}
	}
	for _, lit := range []string{"CRATESTREAM_KAFKA_PASSWORD", "CRATESTREAM_REDIS_PASSWORD", "CRATESTREAM_CLICKHOUSE_PASSWORD"} {
		if env[lit] != "" {
			t.Errorf("%s: %s set: the secure overlay reads passwords from files (%s_FILE)", where, lit, lit)
		}
	}
}

// secretFileAt: the Secret and key a path of a container's mounts is (a
// secret or projected volume), and whether the pod's user can read it.
func secretFileAt(pod corev1.PodSpec, c corev1.Container, path string) (secret, key string, ok bool) {
	for _, m := range c.VolumeMounts {
		rel, found := strings.CutPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/")
		if !found || m.SubPath != "" {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name != m.Name {
				continue
			}
			readable := func(mode *int32) bool {
				return mode == nil || *mode&0o004 != 0 || (pod.SecurityContext != nil && pod.SecurityContext.FSGroup != nil && *mode&0o040 != 0)
			}
			if v.Secret != nil && readable(v.Secret.DefaultMode) {
				for _, it := range v.Secret.Items {
					if it.Path == rel {
						return v.Secret.SecretName, it.Key, true
					}
				}
				if len(v.Secret.Items) == 0 {
					return v.Secret.SecretName, rel, true
				}
			}
			if v.Projected != nil && readable(v.Projected.DefaultMode) {
				for _, src := range v.Projected.Sources {
					if src.Secret == nil {
						continue
					}
					for _, it := range src.Secret.Items {
						if it.Path == rel {
							return src.Secret.Name, it.Key, true
						}
					}
				}
			}
		}
	}
	return "", "", false
}

// readmeListsSecret: a line of the README names the Secret (in backquotes)
// and each of its keys.
func readmeListsSecret(readme []byte, name string, keys []string) bool {
	for _, line := range strings.Split(string(readme), "\n") {
		if !strings.Contains(line, "`"+name+"`") {
			continue
		}
		all := true
		for _, k := range keys {
			all = all && strings.Contains(line, "`"+k+"`")
		}
		if all {
			return true
		}
	}
	return false
}

// Every Service selects the pods of a workload and targets their ports;
// none publishes the ops port outside the cluster.
func checkK8sServices(t *testing.T, objs *k8sObjects) {
	t.Helper()
	for _, svc := range objs.services {
		if svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
			for _, sp := range svc.Spec.Ports {
				if sp.Port == 9464 || sp.TargetPort.StrVal == "ops" || sp.TargetPort.IntVal == 9464 {
					t.Errorf("Service %s (%s) publishes the ops port outside the cluster", svc.Name, svc.Spec.Type)
				}
			}
		}
		var matched []workload
		for _, w := range objs.workloads() {
			if w.kind == "Job" || len(svc.Spec.Selector) == 0 {
				continue
			}
			ok := true
			for k, v := range svc.Spec.Selector {
				if w.pod.Labels[k] != v {
					ok = false
				}
			}
			if ok {
				matched = append(matched, w)
			}
		}
		if len(matched) != 1 {
			t.Errorf("Service %s selects %d workloads, want 1", svc.Name, len(matched))
			continue
		}
		w := matched[0]
		for _, sp := range svc.Spec.Ports {
			found := false
			for _, c := range w.pod.Spec.Containers {
				for _, cp := range c.Ports {
					if (sp.TargetPort.StrVal != "" && cp.Name == sp.TargetPort.StrVal) ||
						(sp.TargetPort.StrVal == "" && int32(sp.TargetPort.IntVal) == cp.ContainerPort) ||
						(sp.TargetPort.StrVal == "" && sp.TargetPort.IntVal == 0 && sp.Port == cp.ContainerPort) {
						found = true
					}
				}
			}
			if !found {
				t.Errorf("Service %s port %s targets %s, which %s %s does not have", svc.Name, sp.Name, sp.TargetPort.String(), w.kind, w.name)
			}
		}
		if w.kind == "StatefulSet" {
			for _, s := range objs.statefulSets {
				if s.Name == w.name && s.Spec.ServiceName != svc.Name {
					t.Errorf("StatefulSet %s: serviceName %q, its Service is %s", s.Name, s.Spec.ServiceName, svc.Name)
				}
			}
		}
	}
}
