package cli

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/connectors/ecb"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

// loadRates reads an ECB reference-rates file, or the built-in dated table
// for "default".
func loadRates(path string) ([]*pb.FxRate, error) {
	if path == "default" {
		return ecb.Default(), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rates, err := ecb.Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(rates) == 0 {
		return nil, fmt.Errorf("%s: no rates", path)
	}
	return rates, nil
}

// produceRates writes rates to fx-rates.v1, keyed by currency.
func produceRates(ctx context.Context, prod *kgo.Client, rates []*pb.FxRate) error {
	recs := make([]*kgo.Record, 0, len(rates))
	now := time.Now().UnixMilli()
	for _, r := range rates {
		if r.EventTimeMs == 0 {
			r.EventTimeMs = now
		}
		if r.EventId == "" {
			r.EventId = "fx:" + r.Date + ":" + r.Currency
		}
		b, err := proto.Marshal(r)
		if err != nil {
			return err
		}
		recs = append(recs, &kgo.Record{Topic: topics.FxRates().Name, Key: []byte(r.Currency), Value: b})
	}
	return prod.ProduceSync(ctx, recs...).FirstErr()
}
