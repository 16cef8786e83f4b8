package clickhouse

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// badRecord is a record that can never be inserted: it goes to the
// dead-letter topic and its offset is committed with the batch.
type badRecord struct {
	class string // "decode" or "invalid", as pb.DeadLetter.reason_class
	err   error
}

func (e *badRecord) Error() string { return e.err.Error() }
func (e *badRecord) Unwrap() error { return e.err }

func decodeErr(err error) error { return &badRecord{class: "decode", err: err} }
func invalidf(format string, args ...any) error {
	return &badRecord{class: "invalid", err: fmt.Errorf(format, args...)}
}

func reasonClass(err error) string {
	var br *badRecord
	if errors.As(err, &br) {
		return br.class
	}
	return "invalid"
}

// version is what orders the rows of one key: the record's offset. Every
// topic the sink reads is keyed by the row's identity, so all versions of a
// row are in one partition, where offsets only grow; a replay or a
// redelivery carries the same offset and so collapses with the first copy.
// Event times are not used because tombstones carry none and producers'
// clocks may disagree. (A recreated topic restarts offsets at 0: truncate
// the tables when that happens.)
func version(rec *kgo.Record) uint64 { return uint64(rec.Offset) }

// rowTime picks the first usable of the given Unix-ms times, else the
// record's timestamp, and checks it fits a DateTime.
func rowTime(rec *kgo.Record, ms ...int64) (time.Time, error) {
	t := rec.Timestamp
	for _, m := range ms {
		if m != 0 {
			t = time.UnixMilli(m)
			break
		}
	}
	if s := t.Unix(); s < 0 || s > maxDateTime {
		return time.Time{}, invalidf("time %v outside 1970..2106", t)
	}
	return t, nil
}

// listingRow converts a listings.v1 record (not a tombstone).
func listingRow(rec *kgo.Record, key int64, l *pb.Listing, sd *side) (ListingRow, error) {
	var r ListingRow
	if l.ListingId != 0 && l.ListingId != key {
		return r, invalidf("listing id %d differs from key %d", l.ListingId, key)
	}
	if l.Price == nil {
		return r, invalidf("listing %d has no price", key)
	}
	seen, err := rowTime(rec, l.SeenAtMs, l.EventTimeMs)
	if err != nil {
		return r, err
	}
	r = ListingRow{
		ListingID:     key,
		ReleaseID:     l.ReleaseId,
		Seller:        l.Seller,
		SellerID:      l.SellerId,
		PriceMinor:    l.Price.AmountMinor,
		Currency:      l.Price.Currency,
		ShippingState: clampEnum(int32(l.ShippingState)),
		MediaGrade:    clampEnum(int32(l.Media)),
		SleeveGrade:   clampEnum(int32(l.Sleeve)),
		ShipsFrom:     normCountry(l.ShipsFrom),
		Available:     l.Available,
		SeenAt:        seen,
		Version:       version(rec),
	}
	if l.SellerId < 0 {
		return r, invalidf("listing %d: seller id %d is negative", key, l.SellerId)
	}
	if s := l.Shipping; s != nil {
		if s.Currency != "" && s.Currency != l.Price.Currency {
			return r, invalidf("listing %d: shipping in %s but price in %s", key, s.Currency, l.Price.Currency)
		}
		r.ShippingMinor = s.AmountMinor
	} else if l.ShippingState == pb.ShippingState_SHIPPING_STATE_PRICED {
		return r, invalidf("listing %d: shipping priced but not given", key)
	}
	if err := r.Validate(); err != nil {
		return r, &badRecord{class: "invalid", err: err}
	}
	if r.Currency == "EUR" {
		r.PriceEURMinor = r.PriceMinor
	} else if rate, ok := sd.rate(r.Currency); ok {
		if eur, err := rate.toEUR(r.PriceMinor); err == nil {
			r.PriceEURMinor = eur
		}
	}
	r.SellerRating = sd.ratings[r.Seller]
	return r, nil
}

// clampEnum maps an enum number outside 0..255 to 255, which Validate
// rejects: a uint8 conversion alone would wrap 257 to a valid grade.
func clampEnum(v int32) uint8 {
	if v < 0 || v > 255 {
		return 255
	}
	return uint8(v)
}

func sellerRow(rec *kgo.Record, key string, s *pb.Seller) ([]any, error) {
	if s.Username != "" && s.Username != key {
		return nil, invalidf("seller %q differs from key %q", s.Username, key)
	}
	switch {
	case key == "":
		return nil, invalidf("seller without username")
	case s.SellerId < 0:
		return nil, invalidf("seller %q: negative id %d", key, s.SellerId)
	case math.IsNaN(s.RatingPercent) || s.RatingPercent < 0 || s.RatingPercent > 100:
		return nil, invalidf("seller %q: rating %v outside 0..100", key, s.RatingPercent)
	case s.RatingsCount < 0:
		return nil, invalidf("seller %q: negative ratings count %d", key, s.RatingsCount)
	}
	at, err := rowTime(rec, s.EventTimeMs)
	if err != nil {
		return nil, err
	}
	return []any{key, s.SellerId, s.RatingPercent, b2u(s.HasRating), s.RatingsCount, normCountry(s.ShipsFrom), at, uint8(0), version(rec)}, nil
}

func sellerTombstone(rec *kgo.Record, key string) ([]any, error) {
	at, err := rowTime(rec)
	if err != nil {
		return nil, err
	}
	return []any{key, int64(0), float64(0), uint8(0), int64(0), "", at, uint8(1), version(rec)}, nil
}

func releaseRow(rec *kgo.Record, key int64, r *pb.Release) ([]any, error) {
	if r.ReleaseId != 0 && r.ReleaseId != key {
		return nil, invalidf("release id %d differs from key %d", r.ReleaseId, key)
	}
	switch {
	case key <= 0:
		return nil, invalidf("release id %d is not positive", key)
	case r.Year < 0 || r.Year > math.MaxUint16:
		return nil, invalidf("release %d: year %d out of range", key, r.Year)
	case r.MasterId < 0:
		return nil, invalidf("release %d: negative master id", key)
	}
	at, err := rowTime(rec, r.EventTimeMs)
	if err != nil {
		return nil, err
	}
	artists, artistIDs := make([]string, 0, len(r.Artists)), make([]int64, 0, len(r.Artists))
	for _, a := range r.Artists {
		if a == nil {
			continue
		}
		artists, artistIDs = append(artists, a.Name), append(artistIDs, a.ArtistId)
	}
	labels, labelIDs, catnos := make([]string, 0, len(r.Labels)), make([]int64, 0, len(r.Labels)), make([]string, 0, len(r.Labels))
	for _, l := range r.Labels {
		if l == nil {
			continue
		}
		labels, labelIDs, catnos = append(labels, l.Name), append(labelIDs, l.LabelId), append(catnos, l.Catno)
	}
	formats, descs := make([]string, 0, len(r.Formats)), []string{}
	for _, f := range r.Formats {
		if f == nil {
			continue
		}
		formats = append(formats, f.Name)
		for _, d := range f.Descriptions {
			if !contains(descs, d) {
				descs = append(descs, d)
			}
		}
	}
	return []any{key, r.Title, artists, artistIDs, labels, labelIDs, catnos, nonNil(r.Genres), nonNil(r.Styles),
		uint16(r.Year), r.Released, formats, descs, r.MasterId, r.Country, at, uint8(0), version(rec)}, nil
}

func releaseTombstone(rec *kgo.Record, key int64) ([]any, error) {
	at, err := rowTime(rec)
	if err != nil {
		return nil, err
	}
	e := []string{}
	return []any{key, "", e, []int64{}, e, []int64{}, e, e, e, uint16(0), "", e, e, int64(0), "", at, uint8(1), version(rec)}, nil
}

func statsRow(rec *kgo.Record, key int64, s *pb.ReleaseStats) ([]any, error) {
	if s.ReleaseId != 0 && s.ReleaseId != key {
		return nil, invalidf("release id %d differs from key %d", s.ReleaseId, key)
	}
	if key <= 0 {
		return nil, invalidf("release id %d is not positive", key)
	}
	if s.ListingCount < 0 {
		return nil, invalidf("release %d: negative listing count", key)
	}
	var minP, medP int64
	var cur string
	for _, m := range []*pb.Money{s.MinPrice, s.MedianPrice} {
		if m == nil {
			continue
		}
		if m.AmountMinor < 0 || m.AmountMinor > maxMinor {
			return nil, invalidf("release %d: price %d out of range", key, m.AmountMinor)
		}
		if cur != "" && m.Currency != cur {
			return nil, invalidf("release %d: min and median in different currencies", key)
		}
		cur = m.Currency
	}
	if s.MinPrice != nil {
		minP = s.MinPrice.AmountMinor
	}
	if s.MedianPrice != nil {
		medP = s.MedianPrice.AmountMinor
	}
	if s.LastScrapedMs < 0 || s.LastScrapedMs/1000 > maxDateTime {
		return nil, invalidf("release %d: last scraped %d out of range", key, s.LastScrapedMs)
	}
	at, err := rowTime(rec, s.EventTimeMs)
	if err != nil {
		return nil, err
	}
	return []any{key, uint32(s.ListingCount), minP, medP, cur, time.UnixMilli(s.LastScrapedMs), at, uint8(0), version(rec)}, nil
}

func statsTombstone(rec *kgo.Record, key int64) ([]any, error) {
	at, err := rowTime(rec)
	if err != nil {
		return nil, err
	}
	return []any{key, uint32(0), int64(0), int64(0), "", time.Unix(0, 0), at, uint8(1), version(rec)}, nil
}

func profileRowsOf(rec *kgo.Record, key string, p *pb.UserProfile) (*profileRows, error) {
	if key == "" {
		return nil, invalidf("profile without user id")
	}
	if p == nil { // tombstone: the user is gone, so is the wantlist
		at, err := rowTime(rec)
		if err != nil {
			return nil, err
		}
		return &profileRows{version: version(rec), at: at}, nil
	}
	if p.UserId != "" && p.UserId != key {
		return nil, invalidf("profile user %q differs from key %q", p.UserId, key)
	}
	at, err := rowTime(rec, p.EventTimeMs)
	if err != nil {
		return nil, err
	}
	out := &profileRows{version: version(rec), at: at, releases: make([]int64, 0, len(p.Items)), wanted: make([]bool, 0, len(p.Items))}
	for _, it := range p.Items {
		if it == nil {
			continue
		}
		if it.ReleaseId <= 0 {
			return nil, invalidf("profile %q: release id %d is not positive", key, it.ReleaseId)
		}
		out.releases = append(out.releases, it.ReleaseId)
		out.wanted = append(out.wanted, it.Wanted)
	}
	return out, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// recOutcomeColumns are rec_outcomes' columns in recOutcomeRow's order.
const recOutcomeColumns = "event_id, user_id, model_version, level, recommended, adopted, event_time, version"

func recOutcomeRow(rec *kgo.Record, o *pb.RecOutcome) ([]any, error) {
	switch {
	case o.EventId == "":
		return nil, invalidf("rec outcome without event id")
	case o.Recommended < 0 || o.Adopted < 0:
		return nil, invalidf("rec outcome %s: negative count", o.EventId)
	case o.Recommended == 0 && o.Adopted == 0:
		return nil, invalidf("rec outcome %s: neither recommended nor adopted", o.EventId)
	}
	at, err := rowTime(rec, o.EventTimeMs)
	if err != nil {
		return nil, err
	}
	return []any{o.EventId, o.UserId, o.ModelVersion, o.Level, uint32(o.Recommended), uint32(o.Adopted), at, version(rec)}, nil
}
