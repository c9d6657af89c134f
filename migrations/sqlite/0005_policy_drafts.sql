-- Maker-checker on policy: a draft version is edited, then published at once when the change
-- only tightens, or submitted for a second admin's approval when it may loosen (the reasons are
-- kept). `created_by` on a draft is its last editor. Keep in step with the other dialect.

ALTER TABLE gate_versions ADD COLUMN submitted_by TEXT REFERENCES users(id);
ALTER TABLE gate_versions ADD COLUMN submitted_at INTEGER;
ALTER TABLE gate_versions ADD COLUMN loosenings TEXT;
