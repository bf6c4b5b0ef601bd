-- Catalogue metadata from TMDb (`marquee import tmdb`), one row per matched title. Kept apart
-- from `titles` so that re-importing MovieLens never erases it and the dataset's own overview
-- and rating keep precedence (the store reads dataset first, TMDb where the dataset has none).
CREATE TABLE title_metadata (
    title_id           TEXT PRIMARY KEY REFERENCES titles (id),
    tmdb_id            BIGINT NOT NULL,
    -- How the TMDb movie was found: 'links' (an id mapping file), 'stored' (an earlier
    -- match, refreshed) or 'search' (title + year, with `match_score` >= the threshold).
    match_method       TEXT NOT NULL,
    match_score        DOUBLE PRECISION NOT NULL,
    overview           TEXT,
    tagline            TEXT,
    runtime_minutes    BIGINT,
    original_language  TEXT,
    -- TMDb's genre names, '|'-separated (stored, not mixed into the dataset's genres).
    genres             TEXT NOT NULL DEFAULT '',
    -- The US certification when it is an MPAA rating (G, PG, PG-13, R, NC-17).
    certification      TEXT,
    poster_url         TEXT,
    backdrop_url       TEXT,
    fetched_at         BIGINT NOT NULL
);
CREATE INDEX title_metadata_tmdb ON title_metadata (tmdb_id);

-- Top-billed cast and directors of a title from TMDb credits. Content similarity reads them
-- as entities `tmdb:<person_id>` next to the knowledge graph's (see Store::title_entities).
CREATE TABLE title_people (
    title_id      TEXT NOT NULL REFERENCES titles (id),
    role          TEXT NOT NULL,
    person_id     BIGINT NOT NULL,
    -- Billing order for actors, credit order for directors.
    credit_order  BIGINT NOT NULL,
    name          TEXT NOT NULL,
    character_name TEXT,
    PRIMARY KEY (title_id, role, person_id)
);
