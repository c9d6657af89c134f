-- The background jobs look every second for open requests near or past their deadline. Without
-- these, both queries read every open request through the status index and sort them: over a
-- second each with 100,000 open among 1,000,000 requests, so the job loop alone kept a core
-- busy. Each partial index holds only the rows its job can act on, in deadline order. Keep in
-- step with the other dialect.

-- Escalation and expiry: open requests by deadline (`jobs::escalate_and_expire`).
CREATE INDEX action_requests_open_deadline ON action_requests (deadline_at)
    WHERE status IN ('pending', 'in_review', 'escalated');

-- Reminders: undecided requests that have not been reminded yet (`jobs::remind_due`).
CREATE INDEX action_requests_reminder_due ON action_requests (deadline_at)
    WHERE status IN ('pending', 'in_review') AND reminded_at IS NULL;
