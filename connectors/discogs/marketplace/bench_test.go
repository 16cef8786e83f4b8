package marketplace

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// BenchmarkParse measures the largest real pages, and a rendered page of
// 250 rows, the most Discogs shows at once.
func BenchmarkParse(b *testing.B) {
	type input struct {
		name string
		html []byte
		opts Options
	}
	inputs := []input{
		{"227772_table_25rows", readFixture(b, "discoring_2024", "sell_release_227772_table_2024-11.html"), Options{}},
		{"2247646_full_page", readFixture(b, "discogs_alert_2026", "sell_release_2247646_real.html"), Options{}},
		{"1164485_table_17rows", readFixture(b, "discoring_2024", "sell_release_1164485_table_2024-11.html"), Options{}},
	}
	rng := rand.New(rand.NewPCG(9, 9))
	sellers := genSellers(rng, 200)
	var buf bytes.Buffer
	if err := Render(&buf, RenderPage{ReleaseID: 9, Listings: genListings(rng, 9, 250, sellers), Sellers: sellers, Page: 1, Limit: 250, Total: 612}); err != nil {
		b.Fatal(err)
	}
	inputs = append(inputs, input{"rendered_250rows", buf.Bytes(), Options{}})

	for _, in := range inputs {
		b.Run(in.name, func(b *testing.B) {
			in.opts.Now = testNow
			p, err := Parse(bytes.NewReader(in.html), in.opts)
			if err != nil {
				b.Fatal(err)
			}
			rows := len(p.Listings)
			b.SetBytes(int64(len(in.html)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(bytes.NewReader(in.html), in.opts); err != nil {
					b.Fatal(err)
				}
			}
			s := b.Elapsed().Seconds()
			if s > 0 {
				b.ReportMetric(float64(b.N)/s, "pages/s")
				b.ReportMetric(float64(b.N*rows)/s, "listings/s")
			}
		})
	}
}
