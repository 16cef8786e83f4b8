package cli

// Checks of the deployment files against the binary: docker-compose.yml (read
// with compose-go, as `docker compose` reads it) and deploy/k8s (rendered
// with the kustomize API, decoded into k8s.io/api types). What the binary
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

func loadCompose(t *testing.T) *composetypes.Project {
	t.Helper()
	opts, err := composecli.NewProjectOptions(
		[]string{filepath.Join(repoRoot, "docker-compose.yml")},
		composecli.WithWorkingDirectory(repoRoot),
		composecli.WithEnv(nil), // defaults of ${VAR:-default}, not this machine's environment
		composecli.WithProfiles([]string{"*"}),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return p
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

func TestDeployCompose(t *testing.T) {
	spec := loadBinarySpec(t)
	envs := knownEnv(t)
	p := loadCompose(t)

	ran := map[string][]string{} // binary service -> compose services running it
	opsPorts := map[string]int{} // compose service -> ops port
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
			if inv.command == "run" || inv.command == "topics" {
				addr := spec.flagOrEnv(inv, env, "brokers", "CRATESTREAM_BROKERS")
				checkComposeAddr(t, p, name, "brokers", addr)
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

func TestDeployKustomize(t *testing.T) {
	spec := loadBinarySpec(t)
	envs := knownEnv(t)
	for _, dir := range []string{"deploy/k8s/base", "deploy/k8s/overlays/local"} {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			objs := renderKustomize(t, dir)
			ran := map[string][]string{}
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
					if v := w.pod.Annotations["prometheus.io/port"]; v != "" && v != strconv.Itoa(ops) {
						t.Errorf("%s: prometheus.io/port %s, the ops server listens on %d", where, v, ops)
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
			checkK8sServices(t, objs)
		})
	}
}

// Every Service selects the pods of a workload and targets their ports.
func checkK8sServices(t *testing.T, objs *k8sObjects) {
	t.Helper()
	for _, svc := range objs.services {
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
