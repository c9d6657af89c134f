-- Sign-in: server-side sessions (the shape tower-sessions' SQLite store expects), failed sign-in
-- attempts for throttling, one-time setup links, and a per-user epoch that ends every session
-- of that user when it changes ("sign out everywhere", role changes).

CREATE TABLE sessions (
    id          TEXT PRIMARY KEY NOT NULL,
    data        BLOB NOT NULL,
    expiry_date INTEGER NOT NULL
);

ALTER TABLE users ADD COLUMN session_epoch INTEGER NOT NULL DEFAULT 0;

CREATE TABLE login_failures (
    throttle_key TEXT NOT NULL,
    failed_at    INTEGER NOT NULL
);
CREATE INDEX login_failures_key_time ON login_failures (throttle_key, failed_at);

CREATE TABLE setup_tokens (
    token_sha256 TEXT PRIMARY KEY,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    used_at      INTEGER
);
