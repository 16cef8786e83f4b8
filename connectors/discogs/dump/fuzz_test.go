package dump_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/connectors/discogs/dump"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// The seeds decode without a bad record: they are worth something only
// while they reach the end of the decoder.
func TestFuzzSeedsDecode(t *testing.T) {
	seeds, err := filepath.Glob("testdata/seeds/*.xml")
	if err != nil || len(seeds) == 0 {
		t.Fatalf("no seeds in testdata/seeds: %v", err)
	}
	for _, name := range seeds {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		masters := strings.Contains(filepath.Base(name), "masters")
		newDecoder := dump.NewReleases
		if masters {
			newDecoder = dump.NewMasters
		}
		d, err := newDecoder(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			var err error
			if masters {
				_, err = d.NextMaster()
			} else {
				_, err = d.NextRelease()
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			n++
		}
		d.Close()
		if n == 0 {
			t.Errorf("%s: no record", name)
		}
	}
}

// FuzzReleases feeds arbitrary documents to both decoders: they must not
// panic or loop, must make progress on every call, and every record they
// return must be marshalable (valid UTF-8).
func FuzzReleases(f *testing.F) {
	// Small seeds: the fuzzer minimises every input that finds new
	// coverage, which takes long on records of several kB. They are real
	// records cut from discogs-xml2db's test data (Apache-2.0, see
	// testdata/seeds/NOTICE), in the repository so that the target runs
	// without ../shared.
	seeds, err := filepath.Glob("testdata/seeds/*.xml")
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seeds in testdata/seeds: %v", err)
	}
	for _, name := range seeds {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	var gz bytes.Buffer // the gzip path, with its read-ahead goroutine
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`<releases><release id="1"><title>x</title></release></releases>`))
	zw.Close()
	f.Add(gz.Bytes())
	f.Add([]byte(`<releases><release id="1"><title>a &amp; b &#x263A; <![CDATA[<x>]]></title></release><release id="x"/><release id="3"><a></b></release></releases>`))

	f.Fuzz(func(t *testing.T, data []byte) {
		for _, masters := range []bool{false, true} {
			var d *dump.Decoder
			var err error
			if masters {
				d, err = dump.NewMasters(bytes.NewReader(data), dump.MaxRecordSize(4096), dump.MaxRawBytes(512))
			} else {
				d, err = dump.NewReleases(bytes.NewReader(data), dump.MaxRecordSize(4096), dump.MaxRawBytes(512))
			}
			if err != nil {
				continue // a broken gzip header
			}
			last := int64(-1)
			for calls := 0; ; calls++ {
				if calls > len(data)+2 {
					t.Fatalf("no progress after %d calls", calls)
				}
				var m proto.Message
				if masters {
					m, err = d.NextMaster()
				} else {
					m, err = d.NextRelease()
				}
				if err == io.EOF {
					break
				}
				var re *dump.RecordError
				if errors.As(err, &re) {
					if re.Offset <= last || len(re.Raw) > 512 {
						t.Fatalf("record error at %d after %d, raw %d bytes", re.Offset, last, len(re.Raw))
					}
					last = re.Offset
					continue
				}
				if err != nil {
					if !errors.Is(err, dump.ErrTruncated) && !errors.Is(err, dump.ErrMalformed) && !strings.HasPrefix(err.Error(), "dump:") {
						t.Fatalf("unexpected error %v", err)
					}
					break
				}
				if p := d.Position(); p.Offset <= last {
					t.Fatalf("position %d after %d", p.Offset, last)
				} else {
					last = p.Offset
				}
				if _, err := proto.Marshal(m); err != nil {
					t.Fatalf("record does not marshal: %v", err)
				}
				switch r := m.(type) {
				case *pb.Release:
					if r.ReleaseId <= 0 {
						t.Fatalf("release id %d", r.ReleaseId)
					}
				case *pb.Master:
					if r.MasterId <= 0 {
						t.Fatalf("master id %d", r.MasterId)
					}
				}
			}
			d.Close()
		}
	})
}
