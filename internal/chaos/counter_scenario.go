package chaos

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cratestream/cratestream/internal/stream"
)

type counterVariant struct {
	mode        string
	keys        int
	onDisk      bool // stores in Pebble, corrupted now and then
	brokerKills bool // the cluster is killed too
}

// onDiskCache is the Pebble block cache of the on-disk variants: small, so
// reads go to the files.
const onDiskCache = 4 << 20

// createCounterTopics creates the counter's input and output topics.
func (s *scen) createCounterTopics(ctx context.Context) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.cluster.Brokers()...))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err = stream.CreateTopics(ctx, kadm.NewClient(cl), []stream.TopicSpec{CounterIn.TopicSpec, CounterOut.TopicSpec}, -1)
	return err
}

// counter runs the counter under kills: the scenarios counter, broker,
// pebble and at-least-once.
func (s *scen) counter(ctx context.Context, v counterVariant) error {
	if err := s.startCluster(ctx); err != nil {
		return err
	}
	if err := s.createCounterTopics(ctx); err != nil {
		return err
	}
	extra := []string{"--mode", v.mode}
	if v.onDisk {
		extra = append(extra, "--on-disk-cache", strconv.Itoa(onDiskCache))
	}
	for _, id := range []string{"a", "b"} {
		in := s.newInstance(CounterName, s.name+"-"+id, extra...)
		if err := in.start(""); err != nil {
			return err
		}
	}
	if err := s.waitGroupFormed(ctx, CounterPartitions); err != nil {
		return err
	}
	keys := int64(v.keys)
	f, err := startFeeder(s.cluster.Brokers(), s.cfg.Rate, func(n int64) *kgo.Record {
		return &kgo.Record{Topic: CounterIn.Name, Key: []byte("k" + strconv.FormatInt(n%keys, 10)), Value: strconv.AppendInt(nil, n, 10)}
	})
	if err != nil {
		return err
	}
	plan := killPlan{
		partitions: CounterPartitions, failpoints: failpointsOf(v.mode), fpProb: 0.3, takeoverProb: 0.25,
		gapMin: 500 * time.Millisecond, gapMax: 3 * time.Second,
	}
	if v.brokerKills {
		plan.brokerProb, plan.takeoverProb = 0.6, 0.1
		plan.gapMin, plan.gapMax = 2*time.Second, 5*time.Second
	}
	if v.onDisk {
		plan.corruptProb = 0.3
		plan.storeDir = func(in *instance) string { return filepath.Join(in.stateDir, CounterName, "counts") }
	}
	if err := s.chaos(ctx, plan); err != nil {
		_, _ = f.stop(ctx)
		return err
	}
	verdict, err := s.finish(ctx, f, checkArgs{kind: KindCounter, mode: v.mode})
	s.res.add("mode", v.mode)
	s.killFields(len(s.insts))
	if v.brokerKills {
		s.res.add("broker_restarts", s.brokerRestarts)
		// Every broker lives in the one dev kafka process.
		s.res.add("outage", "whole-cluster")
	}
	if v.onDisk {
		s.res.add("stores_corrupted", len(s.corrupted))
		s.res.add("stores_rebuilt", s.countLogs(storeRebuiltPattern))
	}
	s.restoreFields(ctx, CounterName+"-counts-changelog")
	if verdict != nil {
		s.report(verdict)
		if v.mode == "at-least-once" {
			s.res.add("count_gaps", verdict.CountGaps)
		}
	}
	s.seconds()
	return err
}

// restoreFields report the changelog records the instances replayed on
// their (re)starts next to the changelog's size (its end offsets, records
// and transaction markers): with in-memory stores
// every start replays its tasks' whole changelog, with checkpointed Pebble
// stores only the tail since the checkpoint.
func (s *scen) restoreFields(ctx context.Context, changelog string) {
	s.res.add("restored_records", s.restored)
	adm, closeAdm, err := s.admin()
	if err != nil {
		return
	}
	defer closeAdm()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if ends, err := TopicEnds(ctx, adm, changelog); err == nil {
		var n int64
		for _, h := range ends.HWM {
			n += h
		}
		s.res.add("changelog_offsets", n)
	}
}

// storeRebuiltPattern is what the runtime logs when it finds an on-disk
// store damaged at open and rebuilds it from its changelog (the count of
// cratestream_stores_rebuilt_total, which dies with each killed process).
const storeRebuiltPattern = "on-disk store damaged; rebuilding"

// countLogs counts the lines of the instances' logs containing pattern.
func (s *scen) countLogs(pattern string) int {
	n := 0
	for _, in := range s.insts {
		b, err := os.ReadFile(in.logPath)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, pattern) {
				n++
			}
		}
	}
	return n
}

// corruptStore damages one file of a Pebble store under dir while its
// process is down: a table file when there is one (its blocks fail their
// checksums when read), else the manifest or the write-ahead log. It
// returns the file's path.
func corruptStore(dir string, rng *rand.Rand) (string, error) {
	var ssts, others []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name := d.Name()
		switch {
		case strings.HasSuffix(name, ".sst"):
			ssts = append(ssts, path)
		case strings.HasPrefix(name, "MANIFEST-"), strings.HasSuffix(name, ".log"):
			others = append(others, path)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	pick := ssts
	if len(pick) == 0 {
		pick = others
	}
	if len(pick) == 0 {
		return "", fmt.Errorf("no store files under %s", dir)
	}
	path := pick[rng.IntN(len(pick))]
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	if st.Size() < 64 {
		return "", fmt.Errorf("%s has only %d bytes", path, st.Size())
	}
	// Garbage over a stretch in the middle: past any header, before any
	// footer.
	n := min(st.Size()/4, 4096)
	off := st.Size()/2 - n/2
	junk := make([]byte, n)
	for i := range junk {
		junk[i] = byte(rng.IntN(256))
	}
	if _, err := f.WriteAt(junk, off); err != nil {
		return "", err
	}
	return path, f.Sync()
}
