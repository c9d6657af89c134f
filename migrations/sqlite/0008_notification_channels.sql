-- Where notifications go besides a person's own email: Slack-compatible and generic JSON
-- webhooks (or a shared mailbox) attached to a team or a gate; each person's choice per event
-- kind (immediate, digest, off); and the items waiting for a person's next digest. Keep in step
-- with the other dialect.

CREATE TABLE notification_channels (
    id          TEXT PRIMARY KEY,
    team_id     TEXT REFERENCES teams(id),
    gate_id     TEXT REFERENCES gates(id),
    kind        TEXT NOT NULL CHECK (kind IN ('slack', 'webhook', 'email')),
    -- The serialized channel (URL or address, and a signing secret): credentials, never shown
    -- back in full.
    channel     TEXT NOT NULL,
    -- What the admin pages show instead: kind, host and the last characters.
    display     TEXT NOT NULL,
    -- JSON array of the event kinds sent here.
    events      TEXT NOT NULL,
    created_by  TEXT REFERENCES users(id),
    created_at  INTEGER NOT NULL,
    removed_by  TEXT REFERENCES users(id),
    removed_at  INTEGER,
    CHECK ((team_id IS NULL AND gate_id IS NOT NULL) OR (team_id IS NOT NULL AND gate_id IS NULL))
);
CREATE INDEX notification_channels_team ON notification_channels (team_id);
CREATE INDEX notification_channels_gate ON notification_channels (gate_id);

-- No row means immediate.
CREATE TABLE notification_preferences (
    user_id     TEXT NOT NULL REFERENCES users(id),
    kind        TEXT NOT NULL,
    mode        TEXT NOT NULL CHECK (mode IN ('immediate', 'digest', 'off')),
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, kind)
);

CREATE TABLE digest_items (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id),
    kind        TEXT NOT NULL,
    request_id  TEXT REFERENCES action_requests(id),
    -- The request summary as it was at the event (without the payload); rendered when sent.
    summary     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    -- The digest notification that carried it (notifications.id); NULL while waiting.
    sent_in     TEXT
);
CREATE INDEX digest_items_waiting ON digest_items (sent_in, user_id, created_at);

-- Which configured channel a notification went to (NULL: the person's own email).
ALTER TABLE notifications ADD COLUMN channel_id TEXT REFERENCES notification_channels(id);
