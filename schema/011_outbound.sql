-- 011_outbound.sql - complaints about mail our own users sent: per account
-- and per sending IP, their rate against the daily volumes the operator
-- loads, an account's state (ok, warn, act, cleared) and the audit of clears.
--
-- What is outbound, and which account sent it, the parser decides
-- (parsers/outbound.h, [local] networks and domains): the report document
-- carries it as doc->'outbound' ({account, account_from, auth_header,
-- matched}), so `fbl reparse` recomputes it and no writer function changes.
-- A complaint is an abuse, fraud or virus report that is no copy
-- (duplicate_of IS NULL, 007).
--
--   fbl.outbound_volumes (day, account, sent)   loaded by `fbl outbound import-volumes`
--   fbl.outbound_clears                          the audit of `fbl outbound clear`
--   fbl.outbound_accounts(since, until, warn_ppm, act_ppm, min_complaints)
--   fbl.outbound_ips(since, until)
--   fbl.outbound_account_keys(...)               outbound_accounts, pseudonymised
--
-- An account's state over the window [since, until), counting only the
-- complaints delivered after its last clear (a clear is an operator's word
-- that the account is safe again; late complaints about the old spam must
-- not lock it at once):
--   cleared  cleared, and no complaint since;
--   act      with volumes (sent > 0 over the window's days): complaints /
--            sent >= act_ppm / 1,000,000; without: complaints >= min_complaints;
--   warn     with volumes: >= warn_ppm; without: at least one complaint;
--   ok       otherwise.
-- `fbl export accounts` writes the accounts in state act.
--
-- Roles: fbl_security (new, NOLOGIN, a member of fbl_analyst: it reads
-- what analysts read, and more) reads account names: the tables and
-- fbl.outbound_accounts; fbl_writer keeps its table rights (005's default
-- privileges) and may call the functions; fbl_analyst calls only
-- fbl.outbound_ips and fbl.outbound_account_keys, which show no account.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fbl_security') THEN
        BEGIN
            CREATE ROLE fbl_security NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL;
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'role fbl_security does not exist, and % may not create roles',
                    current_user
                    USING HINT = 'As a superuser: CREATE ROLE fbl_security NOLOGIN; then run fbl '
                                 'migrate again.';
        END;
    END IF;
END
$$;

-- Daily send counts per account (pflogsumm's per-user counts, or the MTA's
-- own), for the complaint rate. An account is written as the parser writes
-- it: lower case.
CREATE TABLE fbl.outbound_volumes (
    day date NOT NULL,
    account text NOT NULL CHECK (account = lower(account) AND account <> ''),
    sent bigint NOT NULL CHECK (sent >= 0),
    loaded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, day)
);

-- Who cleared which account when, and why. Rows are only ever added.
CREATE TABLE fbl.outbound_clears (
    id bigserial PRIMARY KEY,
    account text NOT NULL CHECK (account = lower(account) AND account <> ''),
    cleared_at timestamptz NOT NULL DEFAULT now(),
    db_user name NOT NULL DEFAULT session_user,
    os_user text,
    reason text
);
CREATE INDEX ON fbl.outbound_clears (account, cleared_at);

-- The window's outbound reports are few (our users' complaints); this index
-- finds them without reading the others' documents.
CREATE INDEX reports_outbound_idx ON fbl.reports (received_at) WHERE doc ? 'outbound'
    AND jsonb_typeof(doc->'outbound') = 'object';

-- fbl.outbound_complaints - the complaints of the window: one row per
-- original report about our mail. Not granted: the account and the reporter
-- are addresses.
CREATE FUNCTION fbl.outbound_complaints(p_since timestamptz, p_until timestamptz)
RETURNS TABLE (received_at timestamptz, report_id text, account text, source_ip inet,
               reporter text, fingerprint text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan SET jit = off
AS $$
    SELECT r.received_at, r.id, r.doc->'outbound'->>'account', r.source_ip,
           lower(r.reporter_address), r.fingerprint
    FROM fbl.reports r
    WHERE r.received_at >= p_since AND r.received_at < p_until
      AND r.doc ? 'outbound' AND jsonb_typeof(r.doc->'outbound') = 'object'
      AND r.feedback_type IN ('abuse', 'fraud', 'virus')
      AND r.duplicate_of IS NULL
$$;
REVOKE EXECUTE ON FUNCTION fbl.outbound_complaints(timestamptz, timestamptz) FROM PUBLIC;

-- fbl.outbound_accounts - per account with complaints in [@since, @until):
-- counts, rate and state (see above). @warn_ppm and @act_ppm are parts per
-- million (1000 = 0.1 %); the defaults are [outbound]'s.
CREATE FUNCTION fbl.outbound_accounts(since timestamptz DEFAULT now() - interval '24 hours',
                                      until timestamptz DEFAULT 'infinity',
                                      warn_ppm integer DEFAULT 1000, act_ppm integer DEFAULT 3000,
                                      min_complaints integer DEFAULT 3)
RETURNS TABLE (account text, state text, complaints bigint, reporters bigint,
               complaints_last_hour bigint, complaints_last_day bigint,
               peak_hour_complaints bigint, source_ips bigint, first_seen timestamptz,
               last_seen timestamptz, fingerprints text[], sent bigint, rate_percent numeric,
               cleared_at timestamptz, counted bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    p_now timestamptz := least(now(), until);
BEGIN
    RETURN QUERY
    WITH c AS (
        SELECT * FROM fbl.outbound_complaints(since, until) WHERE account IS NOT NULL
    ), cl AS (
        SELECT k.account AS acc, max(k.cleared_at) AS at
        FROM fbl.outbound_clears k
        WHERE k.account IN (SELECT DISTINCT c.account FROM c)
        GROUP BY 1
    ), hours AS (
        SELECT c.account AS acc, max(n) AS peak
        FROM (SELECT c.account, count(*) AS n FROM c GROUP BY 1, date_trunc('hour', c.received_at)) c
        GROUP BY 1
    ), per AS (
        SELECT c.account AS acc, count(*) AS n, count(DISTINCT c.reporter) AS who,
               count(*) FILTER (WHERE c.received_at >= p_now - interval '1 hour') AS h,
               count(*) FILTER (WHERE c.received_at >= p_now - interval '1 day') AS d,
               count(DISTINCT c.source_ip) AS ips, min(c.received_at) AS lo,
               max(c.received_at) AS hi,
               (array_agg(DISTINCT c.fingerprint) FILTER (WHERE c.fingerprint IS NOT NULL))[1:10]
                   AS fps,
               count(*) FILTER (WHERE cl.at IS NULL OR c.received_at > cl.at) AS after_clear,
               max(cl.at) AS cleared
        FROM c LEFT JOIN cl ON cl.acc = c.account
        GROUP BY 1
    ), vol AS (
        SELECT v.account AS acc, sum(v.sent)::bigint AS sent
        FROM fbl.outbound_volumes v
        WHERE v.day >= (since AT TIME ZONE 'UTC')::date
          AND v.day <= (p_now AT TIME ZONE 'UTC')::date
          AND v.account IN (SELECT per.acc FROM per)
        GROUP BY 1
    )
    SELECT per.acc,
           CASE
               WHEN per.after_clear = 0 THEN 'cleared'
               WHEN coalesce(vol.sent, 0) > 0 THEN
                   CASE WHEN per.after_clear * 1000000 >= act_ppm::bigint * vol.sent THEN 'act'
                        WHEN per.after_clear * 1000000 >= warn_ppm::bigint * vol.sent THEN 'warn'
                        ELSE 'ok' END
               WHEN per.after_clear >= min_complaints THEN 'act'
               ELSE 'warn'
           END,
           per.n, per.who, per.h, per.d, hours.peak, per.ips, per.lo, per.hi, per.fps,
           vol.sent,
           CASE WHEN coalesce(vol.sent, 0) > 0 THEN round(per.after_clear * 100.0 / vol.sent, 4) END,
           per.cleared, per.after_clear
    FROM per JOIN hours ON hours.acc = per.acc LEFT JOIN vol ON vol.acc = per.acc
    ORDER BY per.n DESC, per.acc;
END
$$;

-- fbl.outbound_ips - per source IP of our complaints: counts (no rate:
-- volumes are per account).
CREATE FUNCTION fbl.outbound_ips(since timestamptz DEFAULT now() - interval '24 hours',
                                 until timestamptz DEFAULT 'infinity')
RETURNS TABLE (source_ip inet, complaints bigint, reporters bigint, accounts bigint,
               complaints_last_hour bigint, complaints_last_day bigint,
               peak_hour_complaints bigint, first_seen timestamptz, last_seen timestamptz,
               fingerprints text[])
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    p_now timestamptz := least(now(), until);
BEGIN
    RETURN QUERY
    WITH c AS (
        SELECT * FROM fbl.outbound_complaints(since, until) WHERE source_ip IS NOT NULL
    ), hours AS (
        SELECT c.source_ip AS ip, max(n) AS peak
        FROM (SELECT c.source_ip, count(*) AS n FROM c
              GROUP BY 1, date_trunc('hour', c.received_at)) c
        GROUP BY 1
    )
    SELECT c.source_ip, count(*), count(DISTINCT c.reporter), count(DISTINCT c.account),
           count(*) FILTER (WHERE c.received_at >= p_now - interval '1 hour'),
           count(*) FILTER (WHERE c.received_at >= p_now - interval '1 day'),
           max(hours.peak), min(c.received_at), max(c.received_at),
           (array_agg(DISTINCT c.fingerprint) FILTER (WHERE c.fingerprint IS NOT NULL))[1:10]
    FROM c JOIN hours ON hours.ip = c.source_ip
    GROUP BY c.source_ip
    ORDER BY 2 DESC, 1;
END
$$;

-- fbl.outbound_account_keys - fbl.outbound_accounts with the account
-- pseudonymised as fbl.reporters does reporters: its domain (masked) and a
-- keyed hash, stable across windows.
CREATE FUNCTION fbl.outbound_account_keys(since timestamptz DEFAULT now() - interval '24 hours',
                                          until timestamptz DEFAULT 'infinity',
                                          warn_ppm integer DEFAULT 1000,
                                          act_ppm integer DEFAULT 3000,
                                          min_complaints integer DEFAULT 3)
RETURNS TABLE (account_domain text, account_key text, state text, complaints bigint,
               reporters bigint, complaints_last_hour bigint, complaints_last_day bigint,
               peak_hour_complaints bigint, source_ips bigint, first_seen timestamptz,
               last_seen timestamptz, fingerprints text[], sent bigint, rate_percent numeric,
               cleared_at timestamptz, counted bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET jit = off
AS $$
    SELECT fbl.mask_addresses(nullif(split_part(a.account, '@', 2), '')),
           left(encode(sha256(k.key || convert_to(a.account, 'UTF8')), 'hex'), 16),
           a.state, a.complaints, a.reporters, a.complaints_last_hour, a.complaints_last_day,
           a.peak_hour_complaints, a.source_ips, a.first_seen, a.last_seen, a.fingerprints,
           a.sent, a.rate_percent, a.cleared_at, a.counted
    FROM fbl.outbound_accounts(since, until, warn_ppm, act_ppm, min_complaints) a
    CROSS JOIN fbl.pseudonym_key k
$$;

-- The views: the last 24 hours, [outbound]'s default thresholds.
CREATE VIEW fbl.outbound_accounts AS SELECT * FROM fbl.outbound_accounts();
CREATE VIEW fbl.outbound_ips AS SELECT * FROM fbl.outbound_ips();
CREATE VIEW fbl.outbound_account_keys AS SELECT * FROM fbl.outbound_account_keys();

REVOKE EXECUTE ON FUNCTION
    fbl.outbound_accounts(timestamptz, timestamptz, integer, integer, integer),
    fbl.outbound_ips(timestamptz, timestamptz),
    fbl.outbound_account_keys(timestamptz, timestamptz, integer, integer, integer)
    FROM PUBLIC;
GRANT USAGE ON SCHEMA fbl TO fbl_security;
-- Made by a superuser as the setup says (CREATE ROLE fbl_security IN ROLE
-- fbl_analyst), the membership is there: a database owner may not grant it.
DO $$
BEGIN
    IF NOT pg_has_role('fbl_security', 'fbl_analyst', 'MEMBER') THEN
        GRANT fbl_analyst TO fbl_security;
    END IF;
END
$$;
GRANT EXECUTE ON FUNCTION
    fbl.outbound_accounts(timestamptz, timestamptz, integer, integer, integer),
    fbl.outbound_ips(timestamptz, timestamptz),
    fbl.outbound_account_keys(timestamptz, timestamptz, integer, integer, integer)
    TO fbl_security, fbl_writer;
GRANT SELECT ON fbl.outbound_accounts, fbl.outbound_ips, fbl.outbound_account_keys
    TO fbl_security;
GRANT SELECT, INSERT, UPDATE ON fbl.outbound_volumes TO fbl_security;
GRANT SELECT, INSERT ON fbl.outbound_clears TO fbl_security;
GRANT USAGE ON SEQUENCE fbl.outbound_clears_id_seq TO fbl_security;
GRANT EXECUTE ON FUNCTION fbl.outbound_ips(timestamptz, timestamptz),
    fbl.outbound_account_keys(timestamptz, timestamptz, integer, integer, integer)
    TO fbl_analyst;
GRANT SELECT ON fbl.outbound_ips, fbl.outbound_account_keys TO fbl_analyst;
