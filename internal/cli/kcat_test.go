package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/internal/stream"
	"github.com/cratestream/cratestream/internal/testutil"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

// librdkafka's isolation.level values. Its default is read_committed
// (unlike the Java client's and franz-go's), so the test names both.
const (
	readCommitted   = "read_committed"
	readUncommitted = "read_uncommitted"
)

// kcatTimeout bounds one kcat run: metadata and a few produce or fetch round
// trips to brokers on localhost.
const kcatTimeout = 15 * time.Second

// kcatFormat prints each message as a text header with the key and value
// lengths (-1 for NULL), then the key and value bytes as they are: binary
// safe, since protobuf values hold newlines and any other byte.
const kcatFormat = `%t %p %o %K %S\n%k%s`

// kcat runs Debian's kcat (librdkafka, C): the client in another language
// that the topics must serve.
type kcat struct {
	bin     string
	brokers string
	dir     string // the files of produced messages
}

// run runs kcat against the brokers and returns its standard output.
func (k *kcat) run(ctx context.Context, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, kcatTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, k.bin, append([]string{"-b", k.brokers}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = time.Second // a killed kcat's pipes must not hold us
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("kcat %s: %w (stderr: %s)", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// produce sends each message, in order, as one record keyed by key. kcat
// sends a file named on its command line as one message, bytes as they are;
// its stdin mode would split the protobuf bytes at the delimiter. Two
// settings matter: librdkafka's default partitioner (consistent_random,
// CRC32 of the key) is not Kafka's, and would put the user's records in
// another partition than franz-go's and the Java client's murmur2, which
// the co-partitioned processors rely on; idempotence keeps the order even
// on retries.
func (k *kcat) produce(ctx context.Context, topic, key string, msgs ...proto.Message) error {
	args := []string{"-P", "-t", topic, "-k", key, "-X", "partitioner=murmur2_random", "-X", "enable.idempotence=true"}
	for _, m := range msgs {
		b, err := proto.Marshal(m)
		if err != nil {
			return fmt.Errorf("marshal for kcat: %w", err)
		}
		f, err := os.CreateTemp(k.dir, "msg-*")
		if err != nil {
			return fmt.Errorf("message file: %w", err)
		}
		_, err = f.Write(b)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("message file: %w", err)
		}
		args = append(args, f.Name())
	}
	_, err := k.run(ctx, args...)
	return err
}

// kcatRecord is one message as kcat printed it.
type kcatRecord struct {
	Topic      string
	Partition  int32
	Offset     int64
	Key, Value []byte
}

// consume reads every partition of topic from the beginning to its end (for
// read_committed: the last stable offset) at isolation level iso. librdkafka
// sees a partition's end only in a fetch response, which the broker holds
// for fetch.wait.max.ms (500ms by default) when the partition has nothing
// new: most of the twelve are empty, and a read took 1-1.5s instead of
// 150ms.
func (k *kcat) consume(ctx context.Context, topic, iso string) ([]kcatRecord, error) {
	out, err := k.run(ctx, "-C", "-t", topic, "-o", "beginning", "-e", "-X", "isolation.level="+iso,
		"-X", "fetch.wait.max.ms=50", "-f", kcatFormat)
	if err != nil {
		return nil, err
	}
	return parseKcat(out)
}

// until reads topic (read_committed) again and again until done accepts
// what it holds or ctx ends.
func (k *kcat) until(ctx context.Context, topic string, done func([]kcatRecord) bool) error {
	for {
		recs, err := k.consume(ctx, topic, readCommitted)
		if err != nil {
			return err
		}
		if done(recs) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("reading %s with kcat: %w", topic, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// parseKcat splits the output of kcatFormat into records.
func parseKcat(out []byte) ([]kcatRecord, error) {
	var recs []kcatRecord
	for len(out) > 0 {
		header, rest, ok := bytes.Cut(out, []byte{'\n'})
		if !ok {
			return nil, fmt.Errorf("kcat output: unterminated header %q", out)
		}
		f := strings.Fields(string(header))
		if len(f) != 5 {
			return nil, fmt.Errorf("kcat output: header %q: want topic, partition, offset and two lengths", header)
		}
		var r kcatRecord
		var nums [4]int64
		for i, s := range f[1:] {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("kcat output: header %q: %w", header, err)
			}
			nums[i] = n
		}
		r.Topic, r.Partition, r.Offset = f[0], int32(nums[0]), nums[1]
		var err error
		if r.Key, rest, err = takeKcat(rest, nums[2]); err != nil {
			return nil, fmt.Errorf("kcat output: key of %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
		}
		if r.Value, rest, err = takeKcat(rest, nums[3]); err != nil {
			return nil, fmt.Errorf("kcat output: value of %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
		}
		recs = append(recs, r)
		out = rest
	}
	return recs, nil
}

// takeKcat splits n bytes off b; kcat prints -1, and no bytes, for NULL.
func takeKcat(b []byte, n int64) (field, rest []byte, err error) {
	switch {
	case n == -1:
		return nil, b, nil
	case n < 0 || n > int64(len(b)):
		return nil, nil, fmt.Errorf("%d bytes announced, %d left", n, len(b))
	}
	return b[:n:n], b[n:], nil
}

func TestParseKcat(t *testing.T) {
	for _, tc := range []struct {
		name string
		out  string
		want []kcatRecord
		err  bool
	}{
		{name: "empty", out: ""},
		{name: "binary value with newlines and spaces", out: "carts.v1 3 7 5 6\nalice\n\x00 \n1 ",
			want: []kcatRecord{{"carts.v1", 3, 7, []byte("alice"), []byte("\n\x00 \n1 ")}}},
		{name: "null key, empty value, two records", out: "t 0 0 -1 0\nt 1 5 1 -1\nk",
			want: []kcatRecord{{"t", 0, 0, nil, []byte{}}, {"t", 1, 5, []byte("k"), nil}}},
		{name: "value shorter than announced", out: "t 0 0 1 4\nkab", err: true},
		{name: "header without newline", out: "t 0 0 1 4", err: true},
		{name: "header not numeric", out: "t 0 x 1 1\nkv", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseKcat([]byte(tc.out))
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if !slices.EqualFunc(got, tc.want, func(a, b kcatRecord) bool {
				return a.Topic == b.Topic && a.Partition == b.Partition && a.Offset == b.Offset &&
					bytes.Equal(a.Key, b.Key) && (a.Key == nil) == (b.Key == nil) &&
					bytes.Equal(a.Value, b.Value) && (a.Value == nil) == (b.Value == nil)
			}) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// produceAborted writes m to topic in a transaction and aborts it: the
// record stays in the log, marked aborted.
func produceAborted(ctx context.Context, brokers []string, topic, key string, m proto.Message) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("marshal: %w", err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID("kcat-test-aborted"))
	if err != nil {
		return fmt.Errorf("transactional client: %w", err)
	}
	defer cl.Close()
	if err := cl.BeginTransaction(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(key), Value: b}).FirstErr(); err != nil {
		return errors.Join(fmt.Errorf("produce in transaction: %w", err), cl.EndTransaction(ctx, kgo.TryAbort))
	}
	if err := cl.EndTransaction(ctx, kgo.TryAbort); err != nil {
		return fmt.Errorf("abort transaction: %w", err)
	}
	return nil
}

// A frontend or a scraper in another language can use the topics: Debian's
// kcat (librdkafka, C) writes a wantlist to interactions.v1 and a cart
// request to cart-requests.v1, protobuf bytes as they are, and reads the
// answer from carts.v1 in read_committed mode, past a transaction aborted on
// that topic, which the same read in read_uncommitted mode shows.
func TestExternalClientKcat(t *testing.T) {
	bin := testutil.Binary(t, "kcat")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e := newCartEnv(ctx, t)
	kc := &kcat{bin: bin, brokers: strings.Join(e.k, ","), dir: t.TempDir()}

	// The user's partition under librdkafka's default partitioner must
	// differ from Kafka's, or the partition checks could not catch a kcat
	// run without -X partitioner=murmur2_random.
	const user = "alice"
	part := stream.PartitionFor([]byte(user), topics.UserPartitions)
	if crc32.ChecksumIEEE([]byte(user))%topics.UserPartitions == uint32(part) {
		t.Fatalf("%s is in partition %d under both partitioners: pick another user", user, part)
	}

	// The wantlist, written by kcat and read back by kcat: in the
	// partition Kafka's partitioner picks, in order, byte for byte.
	busiest := e.busiest(8)
	ins := wantAdds(user, busiest)
	if err := kc.produce(ctx, topics.Interactions().Name, user, protoMessages(ins)...); err != nil {
		t.Fatal(err)
	}
	recs, err := kc.consume(ctx, topics.Interactions().Name, readCommitted)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(ins) {
		t.Fatalf("kcat read %d interactions back, wrote %d", len(recs), len(ins))
	}
	for i, r := range recs {
		var in pb.Interaction
		if err := proto.Unmarshal(r.Value, &in); err != nil || !proto.Equal(&in, ins[i]) || string(r.Key) != user || r.Partition != part {
			t.Fatalf("interaction %d read back as %q in partition %d: %v (%v), want %v in %d", i, r.Key, r.Partition, &in, err, ins[i], part)
		}
	}

	_, stop := e.start(ctx, "profile", "recommend", "scraper", "cartbuilder")
	defer stop()

	// The profile processor applied them: the user's profile (read by kcat
	// too) wants exactly those releases.
	var profile *pb.UserProfile
	err = kc.until(ctx, topics.UserProfiles().Name, func(recs []kcatRecord) bool {
		for _, r := range recs {
			var p pb.UserProfile
			if string(r.Key) == user && proto.Unmarshal(r.Value, &p) == nil {
				profile = &p
			}
		}
		var wants []int64
		for _, it := range profile.GetItems() {
			if it.Wanted {
				wants = append(wants, it.ReleaseId)
			}
		}
		return slices.Equal(wants, slices.Sorted(slices.Values(busiest)))
	})
	if err != nil {
		t.Fatalf("profile of %s: %v, want the releases %v: %v", user, profile, busiest, err)
	}
	e.waitCandidates(ctx, user, len(busiest))

	// An aborted answer to the request, on carts.v1 in the user's
	// partition, before the real one: what read_committed must hide.
	const id = "kcat-cart-1"
	const abortedMark = "aborted by the test"
	if err := produceAborted(ctx, e.k, topics.Carts().Name, user, &pb.CartResult{RequestId: id, UserId: user, Error: abortedMark}); err != nil {
		t.Fatal(err)
	}
	if err := kc.produce(ctx, topics.CartRequests().Name, user, cartRequest(id, user)); err != nil {
		t.Fatal(err)
	}
	answered := func(recs []kcatRecord) bool {
		for _, r := range recs {
			var res pb.CartResult
			if proto.Unmarshal(r.Value, &res) == nil && res.RequestId == id {
				return true
			}
		}
		return false
	}
	if err := kc.until(ctx, topics.Carts().Name, answered); err != nil {
		t.Fatalf("no answer to %s on carts.v1: %v", id, err)
	}
	// A duplicate would follow soon after the first answer: the cart
	// builder commits every 30ms.
	time.Sleep(time.Second)

	wanted := map[int64]bool{}
	for _, r := range busiest {
		wanted[r] = true
	}
	for _, tc := range []struct {
		iso     string
		aborted int // records of the aborted transaction seen
		exact   bool
	}{
		{iso: readCommitted, aborted: 0, exact: true},
		// The control: the aborted record is in the log, so it is the
		// isolation level that hides it above. More than one answer is
		// possible here (the cart builder's own aborted retries).
		{iso: readUncommitted, aborted: 1},
	} {
		t.Run(tc.iso, func(t *testing.T) {
			recs, err := kc.consume(ctx, topics.Carts().Name, tc.iso)
			if err != nil {
				t.Fatal(err)
			}
			var answers []*pb.CartResult
			aborted := 0
			for _, r := range recs {
				var res pb.CartResult
				if err := proto.Unmarshal(r.Value, &res); err != nil {
					t.Fatalf("carts.v1/%d@%d: %v", r.Partition, r.Offset, err)
				}
				if res.RequestId != id {
					continue
				}
				if string(r.Key) != user || r.Partition != part {
					t.Errorf("answer keyed %q in partition %d, want %s in %d", r.Key, r.Partition, user, part)
				}
				if res.Error == abortedMark {
					aborted++
				} else {
					answers = append(answers, &res)
				}
			}
			if aborted != tc.aborted {
				t.Errorf("%d aborted records, want %d", aborted, tc.aborted)
			}
			if len(answers) == 0 || tc.exact && len(answers) != 1 {
				t.Fatalf("%d answers to %s, want one (exactly: %v)", len(answers), id, tc.exact)
			}
			res := answers[0]
			if res.Error != "" || len(res.Carts) == 0 {
				t.Fatalf("answer to %s: %v", id, res)
			}
			for _, c := range res.Carts {
				for _, it := range c.Items {
					if !wanted[it.ReleaseId] || it.Source != "wantlist" {
						t.Errorf("cart %d holds release %d from %q: not the wantlist kcat wrote", c.Rank, it.ReleaseId, it.Source)
					}
				}
			}
		})
	}
}

// protoMessages widens a slice of messages for kcat.produce.
func protoMessages[M proto.Message](ms []M) []proto.Message {
	out := make([]proto.Message, len(ms))
	for i, m := range ms {
		out[i] = m
	}
	return out
}
