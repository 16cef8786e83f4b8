-- user_wantlist: the wantlists of user-profiles.v1. Every profile record is
-- the whole state of one user, written as one row per item (deleted = 1 for
-- an item no longer wanted), all with the record's offset as version; a
-- profile with no items, or a tombstone, writes one row with release_id 0
-- and deleted = 1. A user's wantlist is therefore the rows of the user's
-- highest version with deleted = 0: items dropped from a profile fall out
-- without a delete marker of their own.
CREATE TABLE IF NOT EXISTS user_wantlist
(
    user_id    String,
    release_id Int64,
    deleted    UInt8,
    updated_at DateTime,
    version    UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (user_id, release_id);
