-- Experiment phases in the exposure log and the outcome counters (issue 11). A new phase
-- re-randomises on purpose, so a profile's exposures and outcomes of one phase say nothing
-- about another: both tables are keyed by phase too, and the report reads the current phase
-- only. The outcome row of (experiment, phase, profile) is also what the sample-ratio check
-- reads: the variation and time of the profile's FIRST exposure in that phase, which places
-- it in a weight epoch (src/experiments/stats.rs).
-- Rows written before this migration are phase 0.
CREATE TABLE exposures_phased (
    experiment_key   TEXT NOT NULL,
    phase            BIGINT NOT NULL DEFAULT 0,
    profile_id       TEXT NOT NULL REFERENCES profiles (id),
    variation_index  BIGINT NOT NULL,
    variation_key    TEXT NOT NULL,
    feature_key      TEXT NOT NULL,
    first_seen_at    BIGINT NOT NULL,
    PRIMARY KEY (experiment_key, phase, profile_id, variation_index)
);
INSERT INTO exposures_phased
    (experiment_key, phase, profile_id, variation_index, variation_key, feature_key, first_seen_at)
SELECT experiment_key, 0, profile_id, variation_index, variation_key, feature_key, first_seen_at
FROM exposures;
DROP TABLE exposures;
ALTER TABLE exposures_phased RENAME TO exposures;

CREATE TABLE experiment_outcomes_phased (
    experiment_key   TEXT NOT NULL,
    phase            BIGINT NOT NULL DEFAULT 0,
    profile_id       TEXT NOT NULL,
    variation_index  BIGINT NOT NULL,
    first_seen_at    BIGINT NOT NULL,
    variations       BIGINT NOT NULL DEFAULT 1,
    impressions      BIGINT NOT NULL DEFAULT 0,
    plays            BIGINT NOT NULL DEFAULT 0,
    completes        BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (experiment_key, phase, profile_id)
);
INSERT INTO experiment_outcomes_phased
    (experiment_key, phase, profile_id, variation_index, first_seen_at, variations, impressions, plays, completes)
SELECT experiment_key, 0, profile_id, variation_index, first_seen_at, variations, impressions, plays, completes
FROM experiment_outcomes;
DROP TABLE experiment_outcomes;
ALTER TABLE experiment_outcomes_phased RENAME TO experiment_outcomes;
CREATE INDEX experiment_outcomes_profile ON experiment_outcomes (profile_id, first_seen_at);
