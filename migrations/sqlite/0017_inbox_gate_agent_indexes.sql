-- The inbox filters and groups by gate and by agent more than by anything else. The open-list
-- index (0015) is in arrival order, so "gate = refunds" or "group by gate" read all of it; these
-- hold the same narrow columns of the open requests led by the gate and by the agent, so such a
-- view reads only its range, counts per gate without sorting, and walks one gate's requests
-- oldest first. Only open requests are in them, so a decided request leaves them and requests
-- gated automatically never enter. Keep in step with the other dialect.
CREATE INDEX action_requests_open_by_gate ON action_requests
    (gate_id, created_at, id, status, tier, agent_id, action_type, deadline_at, amount_minor,
     currency, counterparty, state_version)
    WHERE status IN ('pending', 'in_review', 'escalated');

CREATE INDEX action_requests_open_by_agent ON action_requests
    (agent_id, created_at, id, status, tier, gate_id, action_type, deadline_at, amount_minor,
     currency, counterparty, state_version)
    WHERE status IN ('pending', 'in_review', 'escalated');
