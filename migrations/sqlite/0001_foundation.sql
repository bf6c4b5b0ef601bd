-- Timestamps are BIGINT milliseconds since the Unix epoch; flags are INTEGER 0/1. The same
-- column types in both backends keep the store's queries identical (see src/store/mod.rs).

CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE profiles (
    id                 TEXT PRIMARY KEY,
    account_id         TEXT NOT NULL REFERENCES accounts (id),
    name               TEXT NOT NULL,
    is_kids            BIGINT NOT NULL DEFAULT 0,
    maturity_limit     TEXT,
    country            TEXT,
    onboarding_genres  TEXT NOT NULL DEFAULT '',
    created_at         BIGINT NOT NULL
);
CREATE INDEX profiles_account ON profiles (account_id);

CREATE TABLE titles (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    release_year     BIGINT,
    genres           TEXT NOT NULL DEFAULT '',
    maturity_rating  TEXT,
    overview         TEXT,
    added_at         BIGINT NOT NULL,
    -- Space-separated country codes; NULL means available everywhere.
    countries        TEXT
);

CREATE TABLE events (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    profile_id       TEXT NOT NULL REFERENCES profiles (id),
    title_id         TEXT NOT NULL REFERENCES titles (id),
    kind             TEXT NOT NULL,
    value            DOUBLE PRECISION,
    occurred_at      BIGINT NOT NULL,
    received_at      BIGINT NOT NULL,
    client_event_id  TEXT NOT NULL,
    request_id       TEXT,
    UNIQUE (profile_id, client_event_id)
);
CREATE INDEX events_profile_time ON events (profile_id, occurred_at);
CREATE INDEX events_time ON events (occurred_at);

CREATE TABLE watch_state (
    profile_id       TEXT NOT NULL REFERENCES profiles (id),
    title_id         TEXT NOT NULL REFERENCES titles (id),
    progress         DOUBLE PRECISION NOT NULL DEFAULT 0,
    completed        BIGINT NOT NULL DEFAULT 0,
    last_watched_at  BIGINT,
    rating           DOUBLE PRECISION,
    rated_at         BIGINT,
    thumbs           BIGINT NOT NULL DEFAULT 0,
    thumbs_at        BIGINT,
    PRIMARY KEY (profile_id, title_id)
);

CREATE TABLE model_versions (
    version           TEXT PRIMARY KEY,
    created_at        BIGINT NOT NULL,
    trained_at        BIGINT NOT NULL,
    interactions      BIGINT NOT NULL,
    data_fingerprint  TEXT NOT NULL,
    params            TEXT NOT NULL,
    metrics           TEXT NOT NULL DEFAULT '{}',
    artifact_path     TEXT NOT NULL,
    active            BIGINT NOT NULL DEFAULT 0
);
