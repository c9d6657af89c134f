-- Notifications to people (reminders, escalations) from a transactional outbox, with their
-- delivery state; and when a request's deadline reminder went out. Keep in step with the other
-- dialect.

ALTER TABLE action_requests ADD COLUMN reminded_at BIGINT;

CREATE TABLE notifications (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    request_id      TEXT REFERENCES action_requests(id),
    user_id         TEXT REFERENCES users(id),
    channel         TEXT NOT NULL,
    prepared        TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    locked_until    BIGINT,
    delivered_at    BIGINT,
    gave_up_at      BIGINT,
    last_error      TEXT
);
CREATE INDEX notifications_due ON notifications (delivered_at, gave_up_at, next_attempt_at);
