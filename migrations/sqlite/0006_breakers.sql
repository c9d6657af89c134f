-- Circuit breakers per agent (gate_id '') and per agent x gate: the current state only; their
-- history is in the audit trail (breaker_opened, breaker_rearmed). Keep in step with the other
-- dialect.

CREATE TABLE breakers (
    agent_id     TEXT NOT NULL REFERENCES agents(id),
    gate_id      TEXT NOT NULL DEFAULT '',
    state        TEXT NOT NULL CHECK (state IN ('open', 'closed')),
    since        INTEGER,
    rate         REAL,
    decisions    INTEGER,
    corrections  INTEGER,
    rearmed_at   INTEGER,
    rearmed_by   TEXT REFERENCES users(id),
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (agent_id, gate_id)
);
