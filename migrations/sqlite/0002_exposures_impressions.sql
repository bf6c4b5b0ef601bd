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

-- Impressions: one row per served home page with every item on it. Items are stored as a
-- JSON array of [row id, row position, item position, title id] — ~100 per page, written at
-- page rate, so logging keeps up with serving; `item_count` makes counting cheap.
-- `assignments` is the page's experiment assignments ({"experiment": variationIndex, ...}).
CREATE TABLE page_views (
    request_id     TEXT PRIMARY KEY,
    profile_id     TEXT NOT NULL,
    served_at      BIGINT NOT NULL,
    model_version  TEXT NOT NULL,
    assignments    TEXT NOT NULL,
    item_count     BIGINT NOT NULL,
    items          TEXT NOT NULL
);
CREATE INDEX page_views_profile_time ON page_views (profile_id, served_at);
CREATE INDEX events_request ON events (request_id);
