-- rec_outcomes: online recommendation quality (rec-outcomes.v1). The
-- recommend processor writes one event when it recommends releases a user
-- had not been shown (recommended = how many) and one when a user adds
-- recommended releases to wantlist or collection (adopted = how many), each
-- with the model version and cascade level that made the recommendation.
-- Rows are keyed by event id: a replayed event replaces itself.
CREATE TABLE IF NOT EXISTS rec_outcomes
(
    event_id      String,
    user_id       String,
    model_version String,
    level         String,
    recommended   UInt32,
    adopted       UInt32,
    event_time    DateTime,
    version       UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (model_version, level, event_id);
