// Package topics is the catalogue of every topic cratestream reads or
// writes: name, partitions, cleanup policy, retention, key encoding and value
// type. `cratestream topics create` provisions it and `topics check` reports
// drift. The .v1 names and schemas freeze when the first wave of issues has
// landed; after that a breaking change is a new topic.
package topics

import (
	"time"

	"github.com/cratestream/cratestream/internal/stream"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// UserPartitions is the partition count of every topic keyed by user: they
// are joined (co-partitioned) by the processors.
const UserPartitions = 12

const day = 24 * time.Hour

// Interactions is interactions.v1: what collectors did (want/collect
// add/remove, ratings), keyed by user id.
func Interactions() stream.Topic[string, *pb.Interaction] {
	return stream.NewTopic(stream.TopicSpec{
		Name:        "interactions.v1",
		Partitions:  UserPartitions,
		Cleanup:     stream.CleanupDelete,
		Retention:   90 * day,
		KeyEncoding: "user id, UTF-8",
		ValueType:   "cratestream.v1.Interaction",
		Description: "collector events: wantlist/collection add/remove, ratings",
	}, stream.Codec[string](stream.StringCodec{}), stream.Codec[*pb.Interaction](stream.Proto[pb.Interaction]()))
}

// UserProfiles is user-profiles.v1: the state of each collector, the
// changelog of the profile processor's store.
func UserProfiles() stream.Topic[string, *pb.UserProfile] {
	return stream.NewTopic(stream.TopicSpec{
		Name:        "user-profiles.v1",
		Partitions:  UserPartitions,
		Cleanup:     stream.CleanupCompact,
		KeyEncoding: "user id, UTF-8",
		ValueType:   "cratestream.v1.UserProfile",
		Description: "per-user wantlist, collection and ratings (changelog of [profile])",
	}, stream.Codec[string](stream.StringCodec{}), stream.Codec[*pb.UserProfile](stream.Proto[pb.UserProfile]()))
}

// DeadLetters is dlq.v1: records no processor could handle, with the reason,
// keyed by the original key bytes.
func DeadLetters() stream.Topic[[]byte, *pb.DeadLetter] {
	return stream.NewTopic(stream.TopicSpec{
		Name:        "dlq.v1",
		Partitions:  3,
		Cleanup:     stream.CleanupDelete,
		Retention:   30 * day,
		KeyEncoding: "the original record's key bytes",
		ValueType:   "cratestream.v1.DeadLetter",
		Description: "undecodable or invalid records: original bytes, position, reason, processor",
	}, stream.Codec[[]byte](stream.BytesCodec{}), stream.Codec[*pb.DeadLetter](stream.Proto[pb.DeadLetter]()))
}

// Listings is listings.v1: marketplace listings keyed by listing id
// (decimal); a tombstone means the listing is gone.
func Listings() stream.Topic[int64, *pb.Listing] {
	return stream.NewTopic(stream.TopicSpec{
		Name:        "listings.v1",
		Partitions:  12,
		Cleanup:     stream.CleanupCompact,
		KeyEncoding: "listing id, decimal",
		ValueType:   "cratestream.v1.Listing",
		Description: "listings for sale (price, shipping, grades, seller, ships-from); tombstone = gone",
	}, stream.Codec[int64](stream.Int64Codec{}), stream.Codec[*pb.Listing](stream.Proto[pb.Listing]()))
}

// Sellers is sellers.v1: marketplace sellers keyed by username.
func Sellers() stream.Topic[string, *pb.Seller] {
	return stream.NewTopic(stream.TopicSpec{
		Name:        "sellers.v1",
		Partitions:  6,
		Cleanup:     stream.CleanupCompact,
		KeyEncoding: "seller username, UTF-8",
		ValueType:   "cratestream.v1.Seller",
		Description: "sellers: rating percent, ratings count, ships-from",
	}, stream.Codec[string](stream.StringCodec{}), stream.Codec[*pb.Seller](stream.Proto[pb.Seller]()))
}

// Releases is releases.v1: catalogue metadata keyed by release id.
func Releases() stream.Topic[int64, *pb.Release] {
	return stream.NewTopic(stream.TopicSpec{
		Name:        "releases.v1",
		Partitions:  12,
		Cleanup:     stream.CleanupCompact,
		KeyEncoding: "release id, decimal",
		ValueType:   "cratestream.v1.Release",
		Description: "release metadata from the monthly dumps: artists, labels, genres, styles, year, formats, master",
	}, stream.Codec[int64](stream.Int64Codec{}), stream.Codec[*pb.Release](stream.Proto[pb.Release]()))
}

// Masters is masters.v1: master releases keyed by master id.
func Masters() stream.Topic[int64, *pb.Master] {
	return stream.NewTopic(stream.TopicSpec{
		Name:        "masters.v1",
		Partitions:  6,
		Cleanup:     stream.CleanupCompact,
		KeyEncoding: "master id, decimal",
		ValueType:   "cratestream.v1.Master",
		Description: "master releases from the monthly dumps",
	}, stream.Codec[int64](stream.Int64Codec{}), stream.Codec[*pb.Master](stream.Proto[pb.Master]()))
}

// ReleaseStats is release-stats.v1: per-release market summary.
func ReleaseStats() stream.Topic[int64, *pb.ReleaseStats] {
	return stream.NewTopic(stream.TopicSpec{
		Name:        "release-stats.v1",
		Partitions:  12,
		Cleanup:     stream.CleanupCompact,
		KeyEncoding: "release id, decimal",
		ValueType:   "cratestream.v1.ReleaseStats",
		Description: "listing count, min and median price (EUR), last scraped",
	}, stream.Codec[int64](stream.Int64Codec{}), stream.Codec[*pb.ReleaseStats](stream.Proto[pb.ReleaseStats]()))
}

// FxRates is fx-rates.v1: ECB reference rates keyed by currency.
func FxRates() stream.Topic[string, *pb.FxRate] {
	return stream.NewTopic(stream.TopicSpec{
		Name:        "fx-rates.v1",
		Partitions:  1,
		Cleanup:     stream.CleanupCompact,
		KeyEncoding: "ISO 4217 currency code",
		ValueType:   "cratestream.v1.FxRate",
		Description: "units of currency per EUR (ECB daily reference rates)",
	}, stream.Codec[string](stream.StringCodec{}), stream.Codec[*pb.FxRate](stream.Proto[pb.FxRate]()))
}

// ScrapeRequests is scrape-requests.v1: releases to re-scrape.
func ScrapeRequests() stream.Topic[int64, *pb.ScrapeRequest] {
	return stream.NewTopic(stream.TopicSpec{
		Name:        "scrape-requests.v1",
		Partitions:  12,
		Cleanup:     stream.CleanupDelete,
		Retention:   7 * day,
		KeyEncoding: "release id, decimal",
		ValueType:   "cratestream.v1.ScrapeRequest",
		Description: "releases whose marketplace page should be scraped",
	}, stream.Codec[int64](stream.Int64Codec{}), stream.Codec[*pb.ScrapeRequest](stream.Proto[pb.ScrapeRequest]()))
}

// ScrapeDone is scrape-done.v1: finished scrapes (a broadcast input).
func ScrapeDone() stream.Topic[int64, *pb.ScrapeDone] {
	return stream.NewTopic(stream.TopicSpec{
		Name:        "scrape-done.v1",
		Partitions:  3,
		Cleanup:     stream.CleanupDelete,
		Retention:   7 * day,
		KeyEncoding: "release id, decimal",
		ValueType:   "cratestream.v1.ScrapeDone",
		Description: "finished scrapes with the listings.v1 end offsets they produced",
	}, stream.Codec[int64](stream.Int64Codec{}), stream.Codec[*pb.ScrapeDone](stream.Proto[pb.ScrapeDone]()))
}

// SyncRequests is sync-requests.v1: "bring my Discogs profile up to date".
func SyncRequests() stream.Topic[string, *pb.SyncRequest] {
	return stream.NewTopic(stream.TopicSpec{
		Name:        "sync-requests.v1",
		Partitions:  UserPartitions,
		Cleanup:     stream.CleanupDelete,
		Retention:   7 * day,
		KeyEncoding: "user id, UTF-8",
		ValueType:   "cratestream.v1.SyncRequest",
		Description: "requests to import a user's Discogs wantlist and collection",
	}, stream.Codec[string](stream.StringCodec{}), stream.Codec[*pb.SyncRequest](stream.Proto[pb.SyncRequest]()))
}

// SyncDone is sync-done.v1: finished profile syncs.
func SyncDone() stream.Topic[string, *pb.SyncDone] {
	return stream.NewTopic(stream.TopicSpec{
		Name:        "sync-done.v1",
		Partitions:  UserPartitions,
		Cleanup:     stream.CleanupDelete,
		Retention:   7 * day,
		KeyEncoding: "user id, UTF-8",
		ValueType:   "cratestream.v1.SyncDone",
		Description: "finished profile syncs (counts, skipped, error)",
	}, stream.Codec[string](stream.StringCodec{}), stream.Codec[*pb.SyncDone](stream.Proto[pb.SyncDone]()))
}

// RequestStatus is request-status.v1: stages of sync and cart requests.
func RequestStatus() stream.Topic[string, *pb.RequestStatus] {
	return stream.NewTopic(stream.TopicSpec{
		Name:        "request-status.v1",
		Partitions:  6,
		Cleanup:     stream.CleanupDelete,
		Retention:   3 * day,
		KeyEncoding: "request id, UTF-8",
		ValueType:   "cratestream.v1.RequestStatus",
		Description: "stage and progress of sync and cart requests (mirrored in Redis)",
	}, stream.Codec[string](stream.StringCodec{}), stream.Codec[*pb.RequestStatus](stream.Proto[pb.RequestStatus]()))
}

// UserCandidates is user-candidates.v1: each user's top-N recommendations
// and wantlist, written by the recommend processor.
func UserCandidates() stream.Topic[string, *pb.Candidates] {
	return stream.NewTopic(stream.TopicSpec{
		Name:        "user-candidates.v1",
		Partitions:  UserPartitions,
		Cleanup:     stream.CleanupCompact,
		KeyEncoding: "user id, UTF-8",
		ValueType:   "cratestream.v1.Candidates",
		Description: "per-user candidates: recommendations (score, model version) and wantlist",
	}, stream.Codec[string](stream.StringCodec{}), stream.Codec[*pb.Candidates](stream.Proto[pb.Candidates]()))
}

// ItemFactors is item-factors.v1: latent factors of each release per model
// version.
func ItemFactors() stream.Topic[int64, *pb.ItemFactors] {
	return stream.NewTopic(stream.TopicSpec{
		Name:        "item-factors.v1",
		Partitions:  6,
		Cleanup:     stream.CleanupCompact,
		KeyEncoding: "release id, decimal",
		ValueType:   "cratestream.v1.ItemFactors",
		Description: "item factor vectors of the trained model",
	}, stream.Codec[int64](stream.Int64Codec{}), stream.Codec[*pb.ItemFactors](stream.Proto[pb.ItemFactors]()))
}

// Models is models.v1: the manifest of each model's current version.
func Models() stream.Topic[string, *pb.ModelManifest] {
	return stream.NewTopic(stream.TopicSpec{
		Name:        "models.v1",
		Partitions:  1,
		Cleanup:     stream.CleanupCompact,
		KeyEncoding: "model name",
		ValueType:   "cratestream.v1.ModelManifest",
		Description: "model manifests: version, parameters, offline metrics, time; written after the factors",
	}, stream.Codec[string](stream.StringCodec{}), stream.Codec[*pb.ModelManifest](stream.Proto[pb.ModelManifest]()))
}

// RecOutcomes is rec-outcomes.v1: recommendations made and adopted, the
// online quality of each model version and cascade level.
func RecOutcomes() stream.Topic[string, *pb.RecOutcome] {
	return stream.NewTopic(stream.TopicSpec{
		Name:        "rec-outcomes.v1",
		Partitions:  3,
		Cleanup:     stream.CleanupDelete,
		Retention:   90 * day,
		KeyEncoding: "model version",
		ValueType:   "cratestream.v1.RecOutcome",
		Description: "recommendations made and adopted (added to wantlist or collection), per model version and level",
	}, stream.Codec[string](stream.StringCodec{}), stream.Codec[*pb.RecOutcome](stream.Proto[pb.RecOutcome]()))
}

// CartRequests is cart-requests.v1: collectors asking for carts.
func CartRequests() stream.Topic[string, *pb.CartRequest] {
	return stream.NewTopic(stream.TopicSpec{
		Name:        "cart-requests.v1",
		Partitions:  UserPartitions,
		Cleanup:     stream.CleanupDelete,
		Retention:   7 * day,
		KeyEncoding: "user id, UTF-8",
		ValueType:   "cratestream.v1.CartRequest",
		Description: "cart requests with their criteria (co-partitioned with user-candidates.v1)",
	}, stream.Codec[string](stream.StringCodec{}), stream.Codec[*pb.CartRequest](stream.Proto[pb.CartRequest]()))
}

// Carts is carts.v1: the results topic the frontend subscribes to.
func Carts() stream.Topic[string, *pb.CartResult] {
	return stream.NewTopic(stream.TopicSpec{
		Name:        "carts.v1",
		Partitions:  UserPartitions,
		Cleanup:     stream.CleanupDelete,
		Retention:   7 * day,
		KeyEncoding: "user id, UTF-8",
		ValueType:   "cratestream.v1.CartResult",
		Description: "the top carts of each request: items, seller, subtotal, shipping, total, score",
	}, stream.Codec[string](stream.StringCodec{}), stream.Codec[*pb.CartResult](stream.Proto[pb.CartResult]()))
}

// Catalogue is every topic, in the order of the README's table.
func Catalogue() []stream.TopicSpec {
	return []stream.TopicSpec{
		Interactions().TopicSpec,
		UserProfiles().TopicSpec,
		UserCandidates().TopicSpec,
		ItemFactors().TopicSpec,
		Models().TopicSpec,
		RecOutcomes().TopicSpec,
		CartRequests().TopicSpec,
		Carts().TopicSpec,
		SyncRequests().TopicSpec,
		SyncDone().TopicSpec,
		Listings().TopicSpec,
		Sellers().TopicSpec,
		Releases().TopicSpec,
		Masters().TopicSpec,
		ReleaseStats().TopicSpec,
		FxRates().TopicSpec,
		ScrapeRequests().TopicSpec,
		ScrapeDone().TopicSpec,
		RequestStatus().TopicSpec,
		DeadLetters().TopicSpec,
	}
}
