-- releases: catalogue metadata (releases.v1), newest version per release.
-- Credits are kept as parallel arrays (artists[i] has artist_ids[i]; labels,
-- label_ids and catnos likewise) so genre/style/artist filters can use
-- has()/arrayExists() without a join. formats are the format names
-- ("Vinyl", "CD"), format_descriptions the union of their descriptions
-- ("LP", "Album", "Reissue"). year is 0 when unknown.
-- A tombstone (null value) writes deleted = 1 with its own, higher offset.
CREATE TABLE IF NOT EXISTS releases
(
    release_id          Int64,
    title               String,
    artists             Array(String),
    artist_ids          Array(Int64),
    labels              Array(String),
    label_ids           Array(Int64),
    catnos              Array(String),
    genres              Array(String),
    styles              Array(String),
    year                UInt16,
    released            String,
    formats             Array(String),
    format_descriptions Array(String),
    master_id           Int64,
    country             String,
    updated_at          DateTime,
    deleted             UInt8,
    version             UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY release_id;
