-- sellers: marketplace sellers (sellers.v1), newest version per username.
-- version is the record's offset in its sellers.v1 partition (keyed by
-- username, so one seller's updates are ordered by it).
-- A tombstone (null value) writes deleted = 1 with its own, higher offset.
CREATE TABLE IF NOT EXISTS sellers
(
    username       String,
    seller_id      Int64,
    rating_percent Float64,
    has_rating     UInt8,
    ratings_count  Int64,
    ships_from     String,
    updated_at     DateTime,
    deleted        UInt8,
    version        UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY username;
