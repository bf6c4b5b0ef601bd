-- Experiment phases in the exposure log and the outcome counters (issue 11). A new phase
-- re-randomises on purpose, so a profile's exposures and outcomes of one phase say nothing
-- about another: both tables are keyed by phase too, and the report reads the current phase
-- only. The outcome row of (experiment, phase, profile) is also what the sample-ratio check
-- reads: the variation and time of the profile's FIRST exposure in that phase, which places
-- it in a weight epoch (src/experiments/stats.rs).
-- Rows written before this migration are phase 0.
ALTER TABLE exposures ADD COLUMN phase BIGINT NOT NULL DEFAULT 0;
ALTER TABLE exposures DROP CONSTRAINT exposures_pkey;
ALTER TABLE exposures ADD PRIMARY KEY (experiment_key, phase, profile_id, variation_index);

ALTER TABLE experiment_outcomes ADD COLUMN phase BIGINT NOT NULL DEFAULT 0;
ALTER TABLE experiment_outcomes DROP CONSTRAINT experiment_outcomes_pkey;
ALTER TABLE experiment_outcomes ADD PRIMARY KEY (experiment_key, phase, profile_id);
