-- Signed checkpoints over the audit chain: the head (seq, hash) at a moment, signed with the
-- server's Ed25519 key. A checkpoint past the end of the trail proves the tail was cut off.
-- Keep in step with ../sqlite/0004_audit_checkpoints.sql.

CREATE TABLE audit_checkpoints (
    seq        BIGINT PRIMARY KEY,
    hash       TEXT NOT NULL,
    signed_at  BIGINT NOT NULL,
    public_key TEXT NOT NULL,
    signature  TEXT NOT NULL
);

CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION countersign_refuse_audit_change();

CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION countersign_refuse_audit_change();

-- The explorer's time-range filter.
CREATE INDEX audit_events_occurred ON audit_events (occurred_at);

-- State snapshots are evidence too: the audit chain holds their content hashes.
CREATE TRIGGER request_states_no_update BEFORE UPDATE OR DELETE ON request_states
    FOR EACH ROW EXECUTE FUNCTION countersign_refuse_audit_change();

CREATE TRIGGER request_states_no_truncate BEFORE TRUNCATE ON request_states
    FOR EACH STATEMENT EXECUTE FUNCTION countersign_refuse_audit_change();
