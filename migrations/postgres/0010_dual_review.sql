-- Split-and-merge dual review. Each round (state version) of a `dual` request has two halves,
-- 'a' and 'b', each taken by a different reviewer, who submits a verdict without seeing the
-- other's. A half taken but not yet submitted has no verdict (a send-back re-assigns both halves
-- of the new round to the same two people). Keep in step with the other dialect.

CREATE TABLE review_halves (
    request_id     TEXT NOT NULL REFERENCES action_requests(id),
    state_version  BIGINT NOT NULL,
    half           TEXT NOT NULL CHECK (half IN ('a', 'b')),
    reviewer_id    TEXT NOT NULL REFERENCES users(id),
    assigned_at    BIGINT NOT NULL,
    -- The reviewer's verdict as JSON (approve, approve_with_edit with its payload, reject with
    -- its reasons); NULL until submitted.
    verdict        TEXT,
    submitted_at   BIGINT,
    PRIMARY KEY (request_id, state_version, half),
    -- The same person can never hold both halves of one round.
    UNIQUE (request_id, state_version, reviewer_id)
);
