package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/internal/devcert"
	"github.com/cratestream/cratestream/internal/embedded"
	"github.com/cratestream/cratestream/internal/kafkasec"
	"github.com/cratestream/cratestream/internal/testutil"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

const kafkaSecret = "scram-Pa55-for-the-test"

// lockedBuffer is a log the test reads while a command writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// fakeDiscogs serves one collector's wantlist (the importer's sync).
func fakeDiscogs(wants []int64) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Discogs-Ratelimit-Remaining", "59")
		var items []map[string]any
		key := "releases"
		if strings.HasSuffix(r.URL.Path, "/wants") {
			key = "wants"
			for _, id := range wants {
				items = append(items, map[string]any{"id": id, "date_added": "2024-03-01T10:00:00-08:00",
					"basic_information": map[string]any{"id": id, "title": "Release " + strconv.FormatInt(id, 10)}})
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"pagination": map[string]any{"page": 1, "pages": 1, "per_page": 100, "items": len(items), "urls": map[string]any{}},
			key:          items,
		})
	}))
}

// A processor, the importer and the gateway run as `cratestream run`
// against a cluster that requires SCRAM-SHA-512 over TLS, configured only
// through the environment; a wrong password or an untrusted certificate
// ends a command at once with a message naming the broker and the
// mechanism.
func TestSCRAMOverTLSEndToEnd(t *testing.T) {
	redisAddr := testutil.Redis(t)
	dir := t.TempDir()
	ca, err := devcert.NewAuthority("kafka test CA")
	if err != nil {
		t.Fatal(err)
	}
	files, err := ca.Issue(dir, "broker", "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	srvTLS, err := devcert.ServerTLS(files)
	if err != nil {
		t.Fatal(err)
	}
	k, err := embedded.StartKafka(embedded.KafkaOptions{Brokers: 1, TLS: srvTLS,
		SASL: []embedded.SASLUser{{Mechanism: kafkasec.ScramSHA512, User: "app", Password: kafkaSecret}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	brokers := strings.Join(k.Addrs(), ",")
	discogs := fakeDiscogs([]int64{101, 102, 103})
	t.Cleanup(discogs.Close)

	env := map[string]string{
		"CRATESTREAM_BROKERS":        brokers,
		kafkasec.EnvMechanism:        kafkasec.ScramSHA512,
		kafkasec.EnvUsername:         "app",
		kafkasec.EnvPassword:         kafkaSecret,
		kafkasec.EnvTLSCA:            files.CA,
		"CRATESTREAM_REDIS":          redisAddr,
		"CRATESTREAM_LOOKUP_SECRET":  "lookup secret of the test",
		"CRATESTREAM_GATEWAY_LISTEN": "127.0.0.1:0",
		"CRATESTREAM_DEMO_USER":      "collector",
		"CRATESTREAM_GATEWAY_TITLES": "off",
		"DISCOGS_API_URL":            discogs.URL,
		"DISCOGS_TOKEN":              "token",
		"CRATESTREAM_LOG_LEVEL":      "info",
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	if _, errs, code := run(t, "topics", "create"); code != 0 {
		t.Fatalf("topics create over SCRAM/TLS: exit %d: %s", code, errs)
	}

	// One attempt, a clear refusal, no password.
	otherCA, _ := devcert.NewAuthority("someone else")
	other, err := otherCA.Issue(dir, "other", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, key, value, want string
	}{
		{"wrong password", kafkasec.EnvPassword, "not-" + kafkaSecret, "SASL_AUTHENTICATION_FAILED"},
		{"untrusted certificate", kafkasec.EnvTLSCA, other.CA, "certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(tc.key, tc.value)
			for _, args := range [][]string{{"topics", "check"}, {"run", "--http", "127.0.0.1:0", "--state-dir", t.TempDir(), "profile"}} {
				start := time.Now()
				_, errs, code := run(t, args...)
				if code != 1 || !strings.Contains(errs, k.Addrs()[0]) || !strings.Contains(errs, kafkasec.ScramSHA512) || !strings.Contains(errs, tc.want) {
					t.Fatalf("%s: exit %d, stderr %q: want exit 1 naming the broker, the mechanism and %q", args[0], code, errs, tc.want)
				}
				if strings.Contains(errs, kafkaSecret) {
					t.Errorf("stderr carries the password: %q", errs)
				}
				t.Logf("%s refused after %s: %s", args[0], time.Since(start).Round(time.Millisecond), strings.TrimSpace(errs))
			}
		})
	}

	ctx, cancel := context.WithCancel(context.Background())
	logs := &lockedBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"run", "--http", "127.0.0.1:0", "--instance-id", "secure", "--state-dir", t.TempDir(),
			"profile", "importer", "gateway"}, &lockedBuffer{}, logs)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("run did not stop")
		}
	})
	if strings.Contains(logs.String(), kafkaSecret) {
		t.Error("the log carries the password")
	}

	// The importer syncs the collector (its wantlist becomes interactions)
	// and the profile processor folds them: both through SCRAM over TLS.
	cl := secureClient(t, brokers, files.CA)
	req, _ := proto.Marshal(&pb.SyncRequest{RequestId: "sync-1", UserId: "collector", Username: "collector", Force: true})
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topics.SyncRequests().Name, Key: []byte("collector"), Value: req}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	prof := waitRecord(t, cl, topics.UserProfiles().Name, func(r *kgo.Record) bool {
		var p pb.UserProfile
		return proto.Unmarshal(r.Value, &p) == nil && p.UserId == "collector" && len(p.Items) == 3
	}, func() string { return logs.String() })
	t.Logf("profile of collector at offset %d", prof.Offset)

	// The gateway logs in the demo user and queues a cart request: its
	// producer is a SCRAM/TLS client too.
	demoLink := regexp.MustCompile(`url="?(http://[^"\s]+/auth/demo\?token=[0-9a-f]+)`)
	link := demoLink.FindStringSubmatch(logs.String())
	for deadline := time.Now().Add(30 * time.Second); link == nil && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		link = demoLink.FindStringSubmatch(logs.String())
	}
	if link == nil {
		t.Fatalf("the gateway printed no demo link:\n%s", logs.String())
	}
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := hc.Get(link[1])
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	base := link[1][:strings.Index(link[1], "/auth/")]
	resp, err = hc.Post(base+"/api/v1/carts", "application/json", strings.NewReader(`{"budget": "50 EUR"}`))
	if err != nil {
		t.Fatal(err)
	}
	var accepted struct {
		RequestID string `json:"request_id"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&accepted)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || accepted.RequestID == "" {
		t.Fatalf("POST /api/v1/carts = %d %+v", resp.StatusCode, accepted)
	}
	waitRecord(t, cl, topics.CartRequests().Name, func(r *kgo.Record) bool {
		var cr pb.CartRequest
		return proto.Unmarshal(r.Value, &cr) == nil && cr.RequestId == accepted.RequestID
	}, func() string { return logs.String() })
}

func secureClient(t *testing.T, brokers, ca string) *kgo.Client {
	t.Helper()
	sec := kafkasec.Config{Mechanism: kafkasec.ScramSHA512, Username: "app", CAFile: ca}
	sec.SetPassword(kafkaSecret)
	opts, err := sec.Opts()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers(strings.Split(brokers, ",")...))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// waitRecord reads topic from the start until a record matches.
func waitRecord(t *testing.T, cl *kgo.Client, topic string, match func(*kgo.Record) bool, logs func() string) *kgo.Record {
	t.Helper()
	opts := cl.Opts()
	rd, err := kgo.NewClient(append(opts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		var hit *kgo.Record
		rd.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if hit == nil && match(r) {
				hit = r
			}
		})
		if hit != nil {
			return hit
		}
	}
	t.Fatalf("no matching record on %s\n%s", topic, logs())
	return nil
}
