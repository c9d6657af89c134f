-- Soft locks on open requests ("Dana is reviewing") and each reviewer's saved inbox views.
-- Keep in step with the other dialect.

-- One holder per request at a time. A claim is advisory: it tells others someone is looking and
-- never stops a decision; it ends on decision, when its holder leaves, or at expires_at.
CREATE TABLE request_claims (
    request_id  TEXT PRIMARY KEY REFERENCES action_requests(id),
    user_id     TEXT NOT NULL REFERENCES users(id),
    claimed_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX request_claims_user ON request_claims (user_id);

-- A saved view is a name for an inbox query string ("my refunds over 1,000" ->
-- "gate=refunds&min_amount=1000&assigned=me"), private to its owner.
CREATE TABLE saved_views (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id),
    name        TEXT NOT NULL,
    query       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (user_id, name)
);
