package dump_test

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/cratestream/cratestream/connectors/discogs/dump"
)

// BenchmarkReleases decodes synthetic uncompressed release streams of two
// sizes, generated on the fly (nothing is stored), and reports releases/s,
// MB/s, the peak heap in use (sampled every 10,000 records) and the
// memory obtained from the OS: the same figures at both sizes show that
// memory does not depend on the file size. The gzip case decodes the real
// 2020 fixture, whose compression ratio is realistic, to include inflating
// in the read-ahead goroutine.
func BenchmarkReleases(b *testing.B) {
	for _, n := range []int{50_000, 200_000} {
		b.Run(fmt.Sprintf("plain/n=%d", n), func(b *testing.B) {
			benchDecode(b, n, func() io.Reader { return dump.NewSynthReader(n) })
		})
	}
	b.Run("gzip/fixture", func(b *testing.B) {
		gz := open(b, rel2020)
		benchDecode(b, 1000, func() io.Reader { return bytes.NewReader(gz) })
	})
}

func benchDecode(b *testing.B, n int, input func() io.Reader) {
	runtime.GC()
	var ms runtime.MemStats
	var peak uint64
	var records, bytesIn int64
	start := time.Now()
	for b.Loop() {
		d, err := dump.NewReleases(input())
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; ; i++ {
			_, err := d.NextRelease()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if i%10_000 == 0 {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
		}
		st := d.Stats()
		if st.Records != int64(n) {
			b.Fatalf("%d records, want %d", st.Records, n)
		}
		records += st.Records
		bytesIn += st.Bytes
		d.Close()
	}
	sec := time.Since(start).Seconds()
	b.ReportMetric(float64(records)/sec, "releases/s")
	b.ReportMetric(float64(bytesIn)/sec/1e6, "MB/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.Sys)/(1<<20), "sys-MiB")
}
