-- The experiment console (issue 11). Every change to the features and experiments is a new
-- revision holding the whole configuration (GrowthBook features as authored, plus each
-- experiment's lifecycle) and the diff from the one before; the newest revision is in force.
-- Replicas poll MAX(revision) (the primary key) to follow changes.
CREATE TABLE experiment_revisions (
    revision    BIGINT PRIMARY KEY,
    created_at  BIGINT NOT NULL,
    author      TEXT NOT NULL,
    action      TEXT NOT NULL,
    -- The experiment or feature key the change is about ('*' for an import).
    subject     TEXT NOT NULL,
    config      TEXT NOT NULL,
    diff        TEXT NOT NULL
);
CREATE INDEX experiment_revisions_subject ON experiment_revisions (subject, revision);

-- Sticky bucketing: one GrowthBook assignments document per identity
-- ('attributeName||attributeValue', e.g. 'id||42'), {"exp__bucketVersion": "variationKey"}.
CREATE TABLE sticky_assignments (
    identity     TEXT PRIMARY KEY,
    assignments  TEXT NOT NULL,
    updated_at   BIGINT NOT NULL
);
