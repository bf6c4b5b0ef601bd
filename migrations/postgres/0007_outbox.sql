-- The transactional outbox (issue 12): every accepted event is written here in the same
-- transaction as the event itself, and relayed to the event stream (NATS JetStream, or the
-- in-process bus) afterwards, so a committed event reaches the stream even when the stream
-- was down when it was accepted. `msg_id` is the stream's dedupe id (profile/client event id).
CREATE TABLE outbox (
    id          BIGSERIAL PRIMARY KEY,
    msg_id      TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    sent_at     BIGINT
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;
CREATE INDEX outbox_sent ON outbox (sent_at) WHERE sent_at IS NOT NULL;
