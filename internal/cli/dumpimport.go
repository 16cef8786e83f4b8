package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/connectors/discogs/dump"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

type dumpImport struct {
	kind         string // "releases" or "masters"
	path         string
	producer     *kgo.Client // nil on a dry run
	dryRun       bool
	progressFile string
	restart      bool
	every        time.Duration
}

// runDumpImport streams a dump into Kafka. The resume position is saved
// only after everything before it is acknowledged, so a crash resumes
// without a gap (and re-sends at most the records since the last save,
// which compaction makes harmless).
func runDumpImport(ctx context.Context, env *Env, o dumpImport) error {
	f, err := os.Open(o.path)
	if err != nil {
		return err
	}
	defer f.Close()
	if o.progressFile == "" {
		o.progressFile = filepath.Base(o.path) + ".progress"
	}
	opts := []dump.Option{dump.FileName(o.path)}
	if !o.dryRun && !o.restart {
		if b, err := os.ReadFile(o.progressFile); err == nil {
			var pos dump.Position
			if err := json.Unmarshal(b, &pos); err != nil {
				return fmt.Errorf("progress file %s: %w (use --restart to ignore it)", o.progressFile, err)
			}
			opts = append(opts, dump.ResumeAfter(pos))
			fmt.Fprintf(env.Stderr, "%s: resuming after record %d (offset %d) from %s\n", o.kind, pos.ID, pos.Offset, o.progressFile)
		}
	}
	var dec *dump.Decoder
	if o.kind == "releases" {
		dec, err = dump.NewReleases(f, opts...)
	} else {
		dec, err = dump.NewMasters(f, opts...)
	}
	if err != nil {
		return err
	}
	defer dec.Close()

	topic := topics.Releases().Name
	if o.kind == "masters" {
		topic = topics.Masters().Name
	}
	var (
		mu      sync.Mutex
		prodErr error
	)
	produce := func(r *kgo.Record) {
		o.producer.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				if prodErr == nil {
					prodErr = err
				}
				mu.Unlock()
			}
		})
	}
	save := func() error {
		if o.dryRun {
			return nil
		}
		pos := dec.Position()
		if err := o.producer.Flush(ctx); err != nil {
			return err
		}
		mu.Lock()
		perr := prodErr
		mu.Unlock()
		if perr != nil {
			return fmt.Errorf("produce: %w", perr)
		}
		b, _ := json.Marshal(pos)
		return os.WriteFile(o.progressFile, b, 0o644)
	}

	start := time.Now()
	lastReport, lastSave := start, start
	var lastBytes, lastRecs int64
	report := func(final bool) {
		st := dec.Stats()
		now := time.Now()
		el := now.Sub(lastReport).Seconds()
		if final {
			el = now.Sub(start).Seconds()
			lastBytes, lastRecs = 0, 0
		}
		fmt.Fprintf(env.Stderr, "%s: %d records (%.0f/s), %d invalid, %.1f MB read (%.1f MB/s)\n", o.kind, st.Records,
			float64(st.Records-lastRecs)/el, st.Bad, float64(st.Bytes)/1e6, float64(st.Bytes-lastBytes)/1e6/el)
		lastReport, lastBytes, lastRecs = now, st.Bytes, st.Records
	}
	for {
		if err := ctx.Err(); err != nil {
			if serr := save(); serr != nil {
				return serr
			}
			return err
		}
		var msg proto.Message
		var key int64
		if o.kind == "releases" {
			var r *pb.Release
			r, err = dec.NextRelease()
			if r != nil {
				msg, key = r, r.ReleaseId
			}
		} else {
			var m *pb.Master
			m, err = dec.NextMaster()
			if m != nil {
				msg, key = m, m.MasterId
			}
		}
		var re *dump.RecordError
		switch {
		case errors.Is(err, io.EOF):
			if err := save(); err != nil {
				return err
			}
			report(true)
			st := dec.Stats()
			fmt.Fprintf(env.Stdout, "%s=%d invalid=%d\n", o.kind, st.Records, st.Bad)
			if !o.dryRun {
				_ = os.Remove(o.progressFile) // done: nothing to resume
			}
			return nil
		case errors.As(err, &re):
			if !o.dryRun {
				dl, _ := proto.Marshal(&pb.DeadLetter{
					EventId: fmt.Sprintf("import-%s/%s/%d", o.kind, filepath.Base(o.path), re.Offset), EventTimeMs: time.Now().UnixMilli(),
					Topic: "file:" + o.path, Offset: re.Offset, Key: []byte(re.ID), Value: re.Raw,
					Reason: re.Reason, Processor: "import-" + o.kind, ReasonClass: "invalid",
				})
				produce(&kgo.Record{Topic: topics.DeadLetters().Name, Key: []byte(re.ID), Value: dl})
			}
		case err != nil:
			_ = save()
			return fmt.Errorf("%s: %w", o.path, err)
		default:
			if !o.dryRun {
				b, err := proto.Marshal(msg)
				if err != nil {
					return err
				}
				produce(&kgo.Record{Topic: topic, Key: []byte(strconv.FormatInt(key, 10)), Value: b})
			}
		}
		if now := time.Now(); now.Sub(lastReport) >= o.every {
			report(false)
			if now.Sub(lastSave) >= 5*time.Second {
				if err := save(); err != nil {
					return err
				}
				lastSave = now
			}
		}
	}
}
