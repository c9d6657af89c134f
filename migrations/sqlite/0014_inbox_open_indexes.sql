-- The inbox reads only open requests (about a tenth of a large history). Without these it
-- visits every open request and sorts them for each page, and counts them through the table.
-- Partial indexes hold just the open ones: in the order the inbox lists them (a page stops
-- after its rows), and with the columns its filters and counts read (no table lookups).
-- The WHERE clause must stay identical to the inbox's "open" condition to be used.
CREATE INDEX action_requests_open_created ON action_requests (created_at, id)
    WHERE status IN ('pending', 'in_review', 'escalated');
CREATE INDEX action_requests_open_facets ON action_requests (tier, action_type, agent_id, gate_id)
    WHERE status IN ('pending', 'in_review', 'escalated');
