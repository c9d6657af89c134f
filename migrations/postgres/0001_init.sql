-- Countersign schema, PostgreSQL dialect. Times are milliseconds since the Unix epoch (UTC);
-- JSON documents are TEXT; identifiers are UUIDv7 text, so they sort by creation time.
-- Keep in step with ../sqlite/0001_init.sql: same tables, columns and meanings.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    password_hash TEXT,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL
);

CREATE TABLE user_roles (
    user_id TEXT NOT NULL REFERENCES users(id),
    role    TEXT NOT NULL CHECK (role IN ('reviewer', 'senior_reviewer', 'admin', 'auditor')),
    PRIMARY KEY (user_id, role)
);

CREATE TABLE teams (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE team_members (
    team_id TEXT NOT NULL REFERENCES teams(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    PRIMARY KEY (team_id, user_id)
);

CREATE TABLE agents (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    description   TEXT NOT NULL DEFAULT '',
    owner_user_id TEXT REFERENCES users(id),
    created_at    BIGINT NOT NULL
);

CREATE TABLE gates (
    id          TEXT PRIMARY KEY,
    key         TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE gate_versions (
    gate_id      TEXT NOT NULL REFERENCES gates(id),
    version      BIGINT NOT NULL,
    definition   TEXT NOT NULL,
    created_by   TEXT REFERENCES users(id),
    created_at   BIGINT NOT NULL,
    published_by TEXT REFERENCES users(id),
    published_at BIGINT,
    PRIMARY KEY (gate_id, version)
);

CREATE TABLE action_requests (
    id               TEXT PRIMARY KEY,
    agent_id         TEXT NOT NULL REFERENCES agents(id),
    idempotency_key  TEXT NOT NULL,
    body_sha256      TEXT NOT NULL,
    action_type      TEXT NOT NULL,
    title            TEXT NOT NULL DEFAULT '',
    payload          TEXT NOT NULL,
    current_state    TEXT,
    inputs           TEXT,
    reasoning        TEXT NOT NULL DEFAULT '',
    alternatives     TEXT,
    confidence       DOUBLE PRECISION,
    amount_minor     BIGINT,
    currency         TEXT,
    counterparty     TEXT,
    customer_tier    TEXT,
    record_count     BIGINT,
    recipient_count  BIGINT,
    risk_class       TEXT,
    acting_for       TEXT,
    tenant           TEXT,
    callback_url     TEXT,
    deadline_at      BIGINT,
    supersedes_id    TEXT REFERENCES action_requests(id),
    tier             TEXT NOT NULL CHECK (tier IN ('auto', 'log', 'review', 'dual', 'block')),
    status           TEXT NOT NULL,
    gate_id          TEXT REFERENCES gates(id),
    gate_version     BIGINT,
    matched_rules    TEXT NOT NULL DEFAULT '[]',
    explanation      TEXT NOT NULL DEFAULT '',
    state_version    BIGINT NOT NULL DEFAULT 1,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    decided_at       BIGINT,
    UNIQUE (agent_id, idempotency_key),
    FOREIGN KEY (gate_id, gate_version) REFERENCES gate_versions(gate_id, version)
);

CREATE INDEX action_requests_status_created ON action_requests (status, created_at, id);
CREATE INDEX action_requests_agent_created ON action_requests (agent_id, created_at);
CREATE INDEX action_requests_gate_created ON action_requests (gate_id, created_at);

CREATE TABLE request_states (
    request_id   TEXT NOT NULL REFERENCES action_requests(id),
    version      BIGINT NOT NULL,
    content_sha256 TEXT NOT NULL,
    snapshot     TEXT NOT NULL,
    cause        TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (request_id, version)
);

CREATE TABLE decisions (
    id             TEXT PRIMARY KEY,
    request_id     TEXT NOT NULL REFERENCES action_requests(id),
    reviewer_id    TEXT REFERENCES users(id),
    kind           TEXT NOT NULL CHECK (kind IN ('approve', 'approve_with_edit', 'reject', 'escalate', 'expire')),
    state_version  BIGINT NOT NULL,
    edited_payload TEXT,
    reason_code    TEXT,
    reason_text    TEXT,
    created_at     BIGINT NOT NULL
);

CREATE INDEX decisions_request ON decisions (request_id, created_at);
CREATE INDEX decisions_reviewer ON decisions (reviewer_id, created_at);

CREATE TABLE audit_events (
    seq         BIGINT PRIMARY KEY,
    occurred_at BIGINT NOT NULL,
    actor_kind  TEXT NOT NULL CHECK (actor_kind IN ('user', 'agent', 'system')),
    actor_id    TEXT,
    event_type  TEXT NOT NULL,
    request_id  TEXT,
    detail      TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);

CREATE INDEX audit_events_request ON audit_events (request_id, seq);
CREATE INDEX audit_events_actor ON audit_events (actor_id, seq);

CREATE FUNCTION countersign_refuse_audit_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION countersign_refuse_audit_change();

CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION countersign_refuse_audit_change();
