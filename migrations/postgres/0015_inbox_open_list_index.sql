-- The inbox sorts and counts only open requests, but reads them among millions of decided ones.
-- A partial index holding just the open requests and the narrow columns the list orders,
-- groups and filters by lets the list and its counts run without touching the wide rows
-- (payload, reasoning), which are then read for the one page shown. Keep in step with the
-- other dialect.
CREATE INDEX action_requests_open_list ON action_requests
    (created_at, id, status, tier, gate_id, agent_id, action_type, deadline_at, amount_minor,
     currency, counterparty, state_version)
    WHERE status IN ('pending', 'in_review', 'escalated');
