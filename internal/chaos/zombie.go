package chaos

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// transactionTimeout is the runtime's default transaction timeout
// (stream.Config.TransactionTimeout): the broker aborts a transaction left
// open longer.
const transactionTimeout = 10 * time.Second

// zombie runs the counter (exactly-once) on two instances and, round after
// round, freezes one with SIGSTOP in the middle of its work. The other takes
// its partitions once the session timeout passes, then the zombie is
// thawed with SIGCONT and carries on from where it stopped: its open
// transaction, its late outputs and its offset commit must all be refused
// (fenced), and nothing it did may show up downstream, which the final check
// of every output proves.
//
// A round holds the zombie until the other instance has taken over, and at
// least the session timeout plus 2s. When the zombie's open transaction holds
// a changelog partition, the takeover itself lasts until the broker aborts
// that transaction at its timeout (a read_committed restore cannot read past
// it), and the zombie wakes up fenced by the epoch bump (PRODUCER_FENCED);
// otherwise it wakes up inside the transaction timeout and the group fences
// it (its generation is gone: UNKNOWN_MEMBER_ID). With --duration every
// other round holds it past the transaction timeout in any case.
func (s *scen) zombie(ctx context.Context) error {
	if err := s.startCluster(ctx); err != nil {
		return err
	}
	if err := s.createCounterTopics(ctx); err != nil {
		return err
	}
	for _, id := range []string{"a", "b"} {
		if err := s.newInstance(CounterName, s.name+"-"+id, "--mode", "exactly-once").start(""); err != nil {
			return err
		}
	}
	if err := s.waitGroupFormed(ctx, CounterPartitions); err != nil {
		return err
	}
	f, err := startFeeder(s.cluster.Brokers(), s.cfg.Rate, func(n int64) *kgo.Record {
		return &kgo.Record{Topic: CounterIn.Name, Key: []byte(fmt.Sprintf("k%d", n%1000)), Value: fmt.Appendf(nil, "%d", n)}
	})
	if err != nil {
		return err
	}
	adm, closeAdm, err := s.admin()
	if err != nil {
		return err
	}
	defer closeAdm()
	rounds, fenced, openRecords := 0, 0, int64(0)
	hard := s.hardDeadline()
	for !s.due(rounds) {
		if time.Now().After(hard) {
			_, _ = f.stop(ctx)
			return fmt.Errorf("only %d zombie rounds by the hard deadline", rounds)
		}
		if err := sleep(ctx, s.between(time.Second, 3*time.Second)); err != nil {
			return err
		}
		if err := s.reap(); err != nil {
			return err
		}
		long := s.cfg.Duration > 0 && rounds%2 == 1
		open, wasFenced, err := s.zombieRound(ctx, adm, long)
		if err != nil {
			_, _ = f.stop(ctx)
			return err
		}
		rounds++
		openRecords += open
		if wasFenced {
			fenced++
		}
	}
	verdict, err := s.finish(ctx, f, checkArgs{kind: KindCounter, mode: "exactly-once"})
	s.res.add("mode", "exactly-once")
	s.killFields(len(s.insts))
	s.res.add("zombie_rounds", rounds)
	s.res.add("zombie_fenced", fenced)
	s.res.add("zombie_open_records", openRecords)
	if verdict != nil {
		s.report(verdict)
	}
	if err == nil && fenced == 0 {
		s.problem("no round showed the zombie being fenced (no aborted transaction after its SIGCONT): the scenario proved nothing")
	}
	s.seconds()
	return err
}

func (s *scen) admin() (*kadm.Client, func(), error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.cluster.Brokers()...))
	if err != nil {
		return nil, nil, err
	}
	return kadm.NewClient(cl), cl.Close, nil
}

// zombieRound freezes one instance, waits for the other to take over,
// thaws it and waits for the evidence that it was fenced: a transaction it
// aborted (or a session it had to restart). It returns how many of its
// records sat in open transactions while it was frozen.
func (s *scen) zombieRound(ctx context.Context, adm *kadm.Client, long bool) (int64, bool, error) {
	victim := s.insts[s.rng.IntN(len(s.insts))]
	before, err := victim.metrics(ctx)
	if err != nil {
		return 0, false, err
	}
	if err := victim.proc.Pause(); err != nil {
		return 0, false, err
	}
	paused := time.Now()
	s.log.Info("SIGSTOP", "instance", victim.id, "long", long)
	// Its open transaction holds its output partitions' last stable
	// offsets: partitions that stay open while the other instance commits
	// every commit interval are the zombie's.
	open := map[int32]int64{}
	for i := range 4 {
		if err := sleep(ctx, 150*time.Millisecond); err != nil {
			return 0, false, err
		}
		ends, err := TopicEnds(ctx, adm, CounterOut.Name)
		if err != nil {
			continue
		}
		now := map[int32]int64{}
		for _, p := range ends.OpenPartitions() {
			now[p] = ends.HWM[p] - ends.LSO[p]
		}
		if i == 0 {
			open = now
			continue
		}
		for p := range open {
			if _, still := now[p]; !still {
				delete(open, p)
			}
		}
	}
	var openRecords int64
	for _, n := range open {
		openRecords += n
	}
	took, err := s.waitTakeover(ctx, victim, CounterPartitions)
	if err != nil {
		_ = victim.proc.Resume()
		return 0, false, err
	}
	if took {
		s.takeovers++
	}
	// Stay frozen past the session timeout in any case; past the
	// transaction timeout in a long round.
	hold := s.cfg.SessionTimeout + 2*time.Second
	if long {
		hold = transactionTimeout + 3*time.Second
	}
	if d := hold - time.Since(paused); d > 0 {
		if err := sleep(ctx, d); err != nil {
			return 0, false, err
		}
	}
	if err := victim.proc.Resume(); err != nil {
		return 0, false, err
	}
	s.log.Info("SIGCONT", "instance", victim.id, "stopped_for", time.Since(paused).Round(time.Millisecond), "open_records", openRecords)
	// The zombie must find out it is one: its transaction aborted (or
	// failed to end) rather than committed.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if victim.proc.Exited() {
			return openRecords, false, s.reap() // a crash is reported by reap
		}
		after, err := victim.metrics(ctx)
		if err == nil && after.sum("cratestream_commits_total", `result="aborted"`) > before.sum("cratestream_commits_total", `result="aborted"`) {
			s.log.Info("zombie fenced", "instance", victim.id)
			return openRecords, true, nil
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return 0, false, err
		}
	}
	s.log.Warn("no aborted transaction after SIGCONT", "instance", victim.id, "open_records", openRecords)
	return openRecords, false, nil
}
