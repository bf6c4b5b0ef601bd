-- Per (experiment, profile) outcome counters, kept up to date in the transactions that write
-- exposures, page views and attributed events (src/store/logging.rs), so an experiment report
-- reads one row per exposed profile instead of joining the impression log.
--   variation_index  the variation of the profile's first exposure
--   first_seen_at    when that exposure happened; only pages served from then on count
--   variations       exposure rows of the profile (> 1: it saw several variations and is
--                    left out of the analysis)
--   impressions      items on pages served to the profile since first_seen_at
--   plays/completes  PLAY/COMPLETE events naming such a page (request id) and a title on it
CREATE TABLE experiment_outcomes (
    experiment_key   TEXT NOT NULL,
    profile_id       TEXT NOT NULL,
    variation_index  BIGINT NOT NULL,
    first_seen_at    BIGINT NOT NULL,
    variations       BIGINT NOT NULL DEFAULT 1,
    impressions      BIGINT NOT NULL DEFAULT 0,
    plays            BIGINT NOT NULL DEFAULT 0,
    completes        BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (experiment_key, profile_id)
);
-- A page or an event updates every experiment the profile was exposed to before it.
CREATE INDEX experiment_outcomes_profile ON experiment_outcomes (profile_id, first_seen_at);

-- Backfill from the data written before this migration, with the report's old definitions.
INSERT INTO experiment_outcomes
    (experiment_key, profile_id, variation_index, first_seen_at, variations, impressions, plays, completes)
SELECT experiment_key, profile_id, MIN(variation_index), MIN(first_seen_at), COUNT(*), 0, 0, 0
FROM exposures GROUP BY experiment_key, profile_id;

UPDATE experiment_outcomes SET impressions = COALESCE((
    SELECT SUM(v.item_count) FROM page_views v
    WHERE v.profile_id = experiment_outcomes.profile_id
      AND v.served_at >= experiment_outcomes.first_seen_at), 0);

UPDATE experiment_outcomes SET
    plays = (
        SELECT COUNT(*) FROM events e
        JOIN page_views v ON v.request_id = e.request_id AND v.profile_id = e.profile_id
        WHERE e.profile_id = experiment_outcomes.profile_id AND e.kind = 'PLAY'
          AND v.served_at >= experiment_outcomes.first_seen_at
          AND EXISTS (SELECT 1 FROM json_each(v.items) j WHERE json_extract(j.value, '$[3]') = e.title_id)),
    completes = (
        SELECT COUNT(*) FROM events e
        JOIN page_views v ON v.request_id = e.request_id AND v.profile_id = e.profile_id
        WHERE e.profile_id = experiment_outcomes.profile_id AND e.kind = 'COMPLETE'
          AND v.served_at >= experiment_outcomes.first_seen_at
          AND EXISTS (SELECT 1 FROM json_each(v.items) j WHERE json_extract(j.value, '$[3]') = e.title_id))
WHERE EXISTS (SELECT 1 FROM events e WHERE e.profile_id = experiment_outcomes.profile_id AND e.request_id IS NOT NULL);

-- One row that readiness (/readyz) rewrites to prove that a write commits.
CREATE TABLE store_heartbeat (
    id       BIGINT PRIMARY KEY,
    beat_at  BIGINT NOT NULL
);
