-- Identity (issue 10). Browser sessions of the backend-for-frontend login: the browser holds
-- only an opaque id in an HttpOnly cookie; the database keeps its SHA-256 (a leaked table
-- does not leak usable sessions) with who signed in and the profile the session selected.
--   kids_locked  1 when the selected profile is a kids profile: the session cannot switch to
--                a grown-up profile without signing in again
CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL,
    subject      TEXT NOT NULL,
    roles        TEXT NOT NULL DEFAULT '',
    profile_id   TEXT,
    kids_locked  BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- Accounts remove profiles; a removed profile keeps its history (events, impressions and
-- experiment counters refer to it) but is never served again.
ALTER TABLE profiles ADD COLUMN removed_at BIGINT;
