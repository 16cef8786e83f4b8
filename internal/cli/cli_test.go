package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cratestream/cratestream/internal/embedded"
	"github.com/cratestream/cratestream/internal/testutil"
)

var progressRE = regexp.MustCompile(`profile: (\d+) processed, (\d+) dead-lettered, 12 tasks, ready=true`)

func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestUsageAndErrors(t *testing.T) {
	out, _, code := run(t)
	if code != 0 || !strings.Contains(out, "Commands:") {
		t.Fatalf("usage: %d %q", code, out)
	}
	if _, errs, code := run(t, "nope"); code != 2 || !strings.Contains(errs, "unknown command") {
		t.Fatalf("unknown command: %d %q", code, errs)
	}
	if _, errs, code := run(t, "topics", "--brokers", "", "check"); code != 2 || !strings.Contains(errs, "no brokers") {
		t.Fatalf("missing brokers: %d %q", code, errs)
	}
	if out, _, code := run(t, "bench", "--help"); code != 0 || !strings.Contains(out, "bench=profile mode=at-least-once") {
		t.Fatalf("bench help documents its output: %d %q", code, out)
	}
	if _, errs, code := run(t, "run", "--brokers", "x:1", "nosuch"); code != 2 || !strings.Contains(errs, "unknown service") {
		t.Fatalf("unknown service: %d %q", code, errs)
	}
	// The cart builder's one result per request needs its transactions:
	// the mode flag must not silently change nothing, nor weaken it.
	if _, errs, code := run(t, "run", "--brokers", "x:1", "--http", "127.0.0.1:0", "--mode", "at-least-once", "cartbuilder"); code != 2 ||
		!strings.Contains(errs, "cartbuilder runs exactly-once only") {
		t.Fatalf("cartbuilder at-least-once: %d %q", code, errs)
	}
}

func TestTopicsCreateAndCheckDrift(t *testing.T) {
	k, err := embedded.StartKafka(embedded.KafkaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	brokers := strings.Join(k.Addrs(), ",")

	out, errs, code := run(t, "topics", "--brokers", brokers, "check")
	if code != 1 || !strings.Contains(errs, "interactions.v1: missing") {
		t.Fatalf("check before create: %d %q %q", code, out, errs)
	}
	out, errs, code = run(t, "topics", "--brokers", brokers, "create")
	if code != 0 || !strings.Contains(out, "created interactions.v1") || !strings.Contains(out, "created user-profiles.v1") {
		t.Fatalf("create: %d %q %q", code, out, errs)
	}
	out, _, code = run(t, "topics", "--brokers", brokers, "check")
	if code != 0 || !strings.Contains(out, "ok dlq.v1") {
		t.Fatalf("check after create: %d %q", code, out)
	}

	// Drift: a topic with the wrong partition count and cleanup policy.
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	if _, err := adm.DeleteTopics(ctx, "user-profiles.v1"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := adm.CreateTopic(ctx, 5, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("delete")}, "user-profiles.v1"); err != nil {
		t.Fatal(err)
	}
	out, errs, code = run(t, "topics", "--brokers", brokers, "check")
	if code != 1 || !strings.Contains(errs, "user-profiles.v1: has 5 partitions, catalogue says 12") ||
		!strings.Contains(errs, `user-profiles.v1: cleanup.policy is "delete", catalogue says "compact"`) {
		t.Fatalf("drift not reported: %d %q %q", code, out, errs)
	}
	if !strings.Contains(out, "ok interactions.v1") {
		t.Errorf("healthy topics not listed: %q", out)
	}
}

// The demo runs the embedded stack with generated traffic, prints progress,
// dead-letters the invalid share and reuses its data directory.
func TestDemoRunsAndResumes(t *testing.T) {
	dir := t.TempDir()
	for round := 0; round < 2; round++ {
		out, errs, code := run(t, "demo", "--data-dir", dir, "--http", "127.0.0.1:0", "--web", "127.0.0.1:0", "--duration", "4s",
			"--rate", "400", "--bad-rate", "0.01", "--progress", "1s")
		if code != 0 {
			t.Fatalf("demo: %d\n%s\n%s", code, out, errs)
		}
		for _, want := range []string{"kafka       3 in-process brokers", "progress: produced", "profile: ", "stopped after producing", "web ui      http://127.0.0.1:"} {
			if !strings.Contains(out, want) {
				t.Fatalf("round %d: output lacks %q:\n%s", round, want, out)
			}
		}
		if round == 1 && !strings.Contains(out, "0 created now") {
			t.Errorf("second run did not reuse the topics:\n%s", out)
		}
		m := progressRE.FindAllStringSubmatch(out, -1)
		if len(m) == 0 {
			t.Fatalf("round %d: no progress line:\n%s", round, out)
		}
		last := m[len(m)-1]
		if processed, _ := strconv.Atoi(last[1]); processed == 0 {
			t.Errorf("round %d: nothing processed:\n%s", round, out)
		}
		if dead, _ := strconv.Atoi(last[2]); dead == 0 {
			t.Errorf("round %d: invalid traffic was not dead-lettered:\n%s", round, out)
		}
	}
}

func TestScrapeParse(t *testing.T) {
	dir := testutil.SharedDir(t, "fixtures", "html", "discogs_alert_2026")
	out, errs, code := run(t, "scrape", "parse", dir+"/sell_release_2247646_real.html")
	if code != 0 {
		t.Fatalf("%d %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines:\n%s", len(lines), out)
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"listing_id", "release_id", "seller", "seller_rating", "seller_ratings_count", "media_condition",
		"sleeve_condition", "price", "shipping", "ships_from", "available"} {
		if _, ok := first[k]; !ok {
			t.Errorf("key %s missing from %s", k, lines[0])
		}
	}
	if first["seller"] != "kgrecords1976" || first["ships_from"] != "United States" {
		t.Errorf("first listing: %v", first)
	}
	if _, errs, code := run(t, "scrape", "parse", "/nonexistent.html"); code != 1 || !strings.Contains(errs, "no such file") {
		t.Errorf("missing file: %d %s", code, errs)
	}
}

func TestImportReleasesAndFX(t *testing.T) {
	dir := testutil.SharedDir(t, "fixtures", "dump_xml", "xml2db_20200806")
	out, errs, code := run(t, "import", "releases", "--dry-run", dir+"/discogs_20200806_releases.xml.gz")
	if code != 0 || !strings.Contains(out, "releases=1000 invalid=0") {
		t.Fatalf("dry run: %d %q %q", code, out, errs)
	}

	k, err := embedded.StartKafka(embedded.KafkaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	brokers := strings.Join(k.Addrs(), ",")
	if _, errs, code := run(t, "topics", "--brokers", brokers, "create"); code != 0 {
		t.Fatal(errs)
	}
	// A dump with one bad record in the middle.
	bad := filepath.Join(t.TempDir(), "discogs_20260101_releases.xml")
	body := `<releases><release id="1" status="Accepted"><title>One</title><genres><genre>Rock</genre></genres></release>` +
		`<release id="oops" status="Accepted"><title>Bad</title></release>` +
		`<release id="3" status="Accepted"><title>Three</title></release></releases>`
	if err := os.WriteFile(bad, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	progress := filepath.Join(t.TempDir(), "p")
	out, errs, code = run(t, "import", "releases", "--brokers", brokers, "--progress-file", progress, bad)
	if code != 0 || !strings.Contains(out, "releases=2 invalid=1") {
		t.Fatalf("import: %d %q %q", code, out, errs)
	}
	if _, err := os.Stat(progress); !os.IsNotExist(err) {
		t.Errorf("progress file left after a complete import: %v", err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs()...), kgo.ConsumeTopics("releases.v1", "dlq.v1"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := map[string]int{}
	deadline := time.Now().Add(10 * time.Second)
	for got["releases.v1"] < 2 || got["dlq.v1"] < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("records seen: %v", got)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got[r.Topic]++ })
		cancel()
	}

	out, errs, code = run(t, "import", "fx", "--brokers", brokers, testutil.SharedDir(t, "fixtures", "ecb")+"/eurofxref-daily-2017-03-08.xml")
	if code != 0 || !strings.Contains(out, "fx=32 date=2017-03-08") || !strings.Contains(out, "2017-03-08 USD 1.0556") {
		t.Fatalf("import fx: %d %q %q", code, out, errs)
	}
}

func TestEvalCommand(t *testing.T) {
	file := testutil.SharedDir(t, "datasets", "hetrec2011-lastfm-2k") + "/user_artists.dat"
	out, errs, code := run(t, "eval", "--ratings", file, "--model", "pop", "--seeds", "2", "--json")
	if code != 0 {
		t.Fatalf("%d %s", code, errs)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &r); err != nil {
		t.Fatalf("%v: %q", err, out)
	}
	for _, k := range []string{"model", "p_at_10", "r_at_10", "ndcg_at_10", "coverage", "train_seconds"} {
		if _, ok := r[k]; !ok {
			t.Errorf("key %s missing: %s", k, out)
		}
	}
	p := r["p_at_10"].(map[string]any)
	if m := p["mean"].(float64); m < 0.05 || m > 0.1 {
		t.Errorf("popularity P@10 on lastfm = %v, expected about 0.068", m)
	}
	if _, errs, code := run(t, "eval", "--ratings", file, "--model", "nope"); code != 2 || !strings.Contains(errs, "unknown model") {
		t.Errorf("bad model: %d %s", code, errs)
	}
}
