-- Signed checkpoints over the audit chain: the head (seq, hash) at a moment, signed with the
-- server's Ed25519 key. A checkpoint past the end of the trail proves the tail was cut off.
-- Keep in step with ../postgres/0004_audit_checkpoints.sql.

CREATE TABLE audit_checkpoints (
    seq        INTEGER PRIMARY KEY,
    hash       TEXT NOT NULL,
    signed_at  INTEGER NOT NULL,
    public_key TEXT NOT NULL,
    signature  TEXT NOT NULL
);

CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only');
END;

CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only');
END;

-- The explorer's time-range filter.
CREATE INDEX audit_events_occurred ON audit_events (occurred_at);

-- State snapshots are evidence too: the audit chain holds their content hashes.
CREATE TRIGGER request_states_no_update BEFORE UPDATE ON request_states
BEGIN
    SELECT RAISE(ABORT, 'request_states is append-only');
END;

CREATE TRIGGER request_states_no_delete BEFORE DELETE ON request_states
BEGIN
    SELECT RAISE(ABORT, 'request_states is append-only');
END;
