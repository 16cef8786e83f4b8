package clickhouse

import (
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/cratestream/cratestream/internal/testutil"
)

// benchSize reads an override of a benchmark's size from the environment,
// so the full-size runs (1M listings through Kafka, 10M for the search) use
// the same code as the modest CI defaults.
func benchSize(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkSinkThroughput: listings/s from Kafka into ClickHouse end to
// end. CLICKHOUSE_BENCH_LISTINGS sets the size (default 100,000 per b.N).
func BenchmarkSinkThroughput(b *testing.B) {
	testutil.ClickHouse(b) // skips (or fails under CI) without the server
	n := benchSize("CLICKHOUSE_BENCH_LISTINGS", 100_000)
	res, err := BenchSinkThroughput(context.Background(), SinkBenchConfig{Listings: n * b.N})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(res.RowsPerSec, "rows/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkSearch: Cheapest over 500 popular releases, on the table as
// loaded (loaded_*) and merged (p50/p99).
// CLICKHOUSE_BENCH_SEARCH_LISTINGS sets the table size (default 500,000).
func BenchmarkSearch(b *testing.B) {
	testutil.ClickHouse(b)
	res, err := BenchSearch(context.Background(), SearchBenchConfig{
		Listings: benchSize("CLICKHOUSE_BENCH_SEARCH_LISTINGS", 500_000),
		Queries:  max(b.N, 50),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(res.P50.Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(res.P99.Microseconds())/1000, "p99_ms")
	b.ReportMetric(float64(res.LoadedP50.Microseconds())/1000, "loaded_p50_ms")
	b.ReportMetric(float64(res.LoadedParts), "loaded_parts")
	b.ReportMetric(res.RowsPerQuery, "rows/query")
	b.ReportMetric(0, "ns/op")
}
