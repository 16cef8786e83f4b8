-- release_stats: the market processor's per-release summary
-- (release-stats.v1). Prices are minor units of `currency` (EUR).
-- A tombstone (null value) writes deleted = 1 with its own, higher offset.
CREATE TABLE IF NOT EXISTS release_stats
(
    release_id         Int64,
    listing_count      UInt32,
    min_price_minor    Int64,
    median_price_minor Int64,
    currency           String,
    last_scraped       DateTime,
    updated_at         DateTime,
    deleted            UInt8,
    version            UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY release_id;
