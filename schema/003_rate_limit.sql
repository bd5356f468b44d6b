-- 003_rate_limit.sql - the reporting channel's abuse guard, shared by the vendor
-- feed (issue "vendor feed") and the analyst views (issue "analysts").
--
-- A reporter over its per-hour limit still has its reports stored, but they are
-- flagged and not forwarded: fbl.reports.rate_limited is true and their outbox
-- rows are written in the state 'limited' (never sent, never retried).
-- ('dead', from 001, holds dead letters: refused by the vendor, or failed too often.)
ALTER TYPE fbl.outbox_state ADD VALUE IF NOT EXISTS 'limited';

ALTER TABLE fbl.reports ADD COLUMN rate_limited boolean NOT NULL DEFAULT false;
CREATE INDEX ON fbl.reports (reporter_address, received_at);
