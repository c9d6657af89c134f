-- A reviewer's edit of a proposal, kept as its own record beside the decision: the proposal as
-- it stood, the edited payload and the field-by-field difference between them (JSON), so edits
-- can be read back as training signal for the agent. Keep in step with the other dialect.
CREATE TABLE payload_edits (
    id             TEXT PRIMARY KEY,
    request_id     TEXT NOT NULL REFERENCES action_requests(id),
    decision_id    TEXT NOT NULL REFERENCES decisions(id),
    reviewer_id    TEXT NOT NULL REFERENCES users(id),
    state_version  INTEGER NOT NULL,
    original       TEXT NOT NULL,
    edited         TEXT NOT NULL,
    diff           TEXT NOT NULL,
    created_at     INTEGER NOT NULL
);
CREATE INDEX payload_edits_request ON payload_edits (request_id, created_at);

-- "Similar past requests" looks up decided requests with the same counterparty.
CREATE INDEX action_requests_counterparty ON action_requests (counterparty, created_at);
