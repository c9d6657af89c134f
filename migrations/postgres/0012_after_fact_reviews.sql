-- The after-the-fact queue: requests that executed without waiting (every `log` request and the
-- sampled share of `auto`), and a reviewer's judgement of each. Keep in step with the other
-- dialect.

-- One row per queued request, written in the submission's transaction; the judgement fills in
-- once. "Should not have happened" feeds the statistics' hindsight and the circuit breakers.
CREATE TABLE after_fact_reviews (
    request_id   TEXT PRIMARY KEY REFERENCES action_requests(id),
    reason       TEXT NOT NULL CHECK (reason IN ('log', 'sampled_auto')),
    queued_at    BIGINT NOT NULL,
    reviewer_id  TEXT REFERENCES users(id),
    verdict      TEXT CHECK (verdict IN ('fine', 'should_not_have_happened')),
    note         TEXT,
    reviewed_at  BIGINT,
    -- Judged means all three are set; unjudged means none is.
    CHECK ((verdict IS NULL AND reviewer_id IS NULL AND reviewed_at IS NULL)
        OR (verdict IS NOT NULL AND reviewer_id IS NOT NULL AND reviewed_at IS NOT NULL)),
    -- "Should not have happened" always says why.
    CHECK (verdict IS NULL OR verdict = 'fine' OR (note IS NOT NULL AND note <> ''))
);
-- The queue page: unjudged items in queue order.
CREATE INDEX after_fact_reviews_queue ON after_fact_reviews (queued_at, request_id)
    WHERE verdict IS NULL;
-- Breakers read judgements in a time window.
CREATE INDEX after_fact_reviews_judged ON after_fact_reviews (reviewed_at)
    WHERE verdict IS NOT NULL;
