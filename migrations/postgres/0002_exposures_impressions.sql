-- Experiment exposures: one row per (experiment, profile, variation), the first time an
-- experiment shaped a page the profile was served.
CREATE TABLE exposures (
    experiment_key   TEXT NOT NULL,
    profile_id       TEXT NOT NULL REFERENCES profiles (id),
    variation_index  BIGINT NOT NULL,
    variation_key    TEXT NOT NULL,
    feature_key      TEXT NOT NULL,
    first_seen_at    BIGINT NOT NULL,
    PRIMARY KEY (experiment_key, profile_id, variation_index)
);

-- Every served row item. `assignments` is the page's experiment assignments as JSON
-- ({"experiment": variationIndex, ...}), for analyses this schema did not foresee.
CREATE TABLE impressions (
    request_id     TEXT NOT NULL,
    profile_id     TEXT NOT NULL,
    row_id         TEXT NOT NULL,
    row_position   BIGINT NOT NULL,
    item_position  BIGINT NOT NULL,
    title_id       TEXT NOT NULL,
    model_version  TEXT NOT NULL,
    assignments    TEXT NOT NULL,
    served_at      BIGINT NOT NULL,
    PRIMARY KEY (request_id, title_id)
);
CREATE INDEX impressions_profile_time ON impressions (profile_id, served_at);
CREATE INDEX events_request ON events (request_id, title_id);
