-- The agent API: per-agent tokens (stored only as SHA-256), per-agent webhook secrets,
-- idempotency records (Stripe semantics), approval tokens bound to the approved payload, and
-- the transactional webhook outbox with its delivery log.

ALTER TABLE agents ADD COLUMN webhook_secret TEXT;

CREATE TABLE agent_tokens (
    id           TEXT PRIMARY KEY,
    agent_id     TEXT NOT NULL REFERENCES agents(id),
    token_sha256 TEXT NOT NULL UNIQUE,
    -- The first characters, so people can tell tokens apart without seeing them.
    token_prefix TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    created_by   TEXT REFERENCES users(id),
    revoked_at   BIGINT
);

CREATE TABLE idempotency_keys (
    agent_id        TEXT NOT NULL REFERENCES agents(id),
    idempotency_key TEXT NOT NULL,
    body_sha256     TEXT NOT NULL,
    -- NULL while the first request with this key is in flight.
    response_status BIGINT,
    response_body   TEXT,
    request_id      TEXT,
    claimed_at      BIGINT NOT NULL,
    PRIMARY KEY (agent_id, idempotency_key)
);

CREATE TABLE approval_tokens (
    token          TEXT PRIMARY KEY,
    request_id     TEXT NOT NULL UNIQUE REFERENCES action_requests(id),
    payload_sha256 TEXT NOT NULL,
    issued_at      BIGINT NOT NULL,
    consumed_at    BIGINT
);

CREATE TABLE execution_reports (
    id             TEXT PRIMARY KEY,
    request_id     TEXT NOT NULL REFERENCES action_requests(id),
    outcome        TEXT NOT NULL CHECK (outcome IN ('succeeded', 'failed')),
    payload_sha256 TEXT NOT NULL,
    detail         TEXT,
    created_at     BIGINT NOT NULL
);

CREATE TABLE webhook_outbox (
    id              TEXT PRIMARY KEY,
    request_id      TEXT NOT NULL REFERENCES action_requests(id),
    url             TEXT NOT NULL,
    body            TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    locked_until    BIGINT,
    delivered_at    BIGINT,
    gave_up_at      BIGINT
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (delivered_at, gave_up_at, next_attempt_at);

CREATE TABLE webhook_attempts (
    outbox_id   TEXT NOT NULL REFERENCES webhook_outbox(id),
    attempt     BIGINT NOT NULL,
    started_at  BIGINT NOT NULL,
    status_code BIGINT,
    error       TEXT,
    duration_ms BIGINT NOT NULL,
    PRIMARY KEY (outbox_id, attempt)
);
