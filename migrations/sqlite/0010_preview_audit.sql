-- Every preview of another profile's page by a PM (issue 10): who, whom, when.
CREATE TABLE preview_audit (
    previewed_at     BIGINT NOT NULL,
    viewer_account   TEXT NOT NULL,
    viewer_subject   TEXT NOT NULL,
    profile_id       TEXT NOT NULL,
    request_id       TEXT NOT NULL
);
CREATE INDEX preview_audit_profile ON preview_audit (profile_id, previewed_at);
