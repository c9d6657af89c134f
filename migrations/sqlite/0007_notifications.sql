-- Notifications to people (reminders, escalations) from a transactional outbox, with their
-- delivery state; and when a request's deadline reminder went out. Keep in step with the other
-- dialect.

ALTER TABLE action_requests ADD COLUMN reminded_at INTEGER;

CREATE TABLE notifications (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    request_id      TEXT REFERENCES action_requests(id),
    user_id         TEXT REFERENCES users(id),
    channel         TEXT NOT NULL,
    prepared        TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    locked_until    INTEGER,
    delivered_at    INTEGER,
    gave_up_at      INTEGER,
    last_error      TEXT
);
CREATE INDEX notifications_due ON notifications (delivered_at, gave_up_at, next_attempt_at);
