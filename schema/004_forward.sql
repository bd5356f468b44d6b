-- 004_forward.sql - the vendor feed (fbl forward): the per-reporter limit in
-- the write path, a wake-up for the forwarders, and the index they claim rows
-- by. The feed's state and lag: `fbl forward --status`, and for analysts the
-- view fbl.vendor_feed (005).
--
-- The outbox (001, 003): one row per report and vendor. pending rows are
-- claimed by the forwarders (SELECT ... FOR UPDATE SKIP LOCKED, due ones
-- first, in the transaction that marks them), then become sent, pending again
-- with a later next_attempt_at (retry), or dead (refused by the vendor, or
-- max_attempts failed attempts; last_error holds the reason and the vendor's
-- answer). `fbl forward --retry-dead` makes dead rows pending again.
-- limited rows are never sent.

-- fbl.reporter_limit - reports a reporter may send per hour before the rest are
-- flagged: the session's (or database's, or role's) setting
-- fbl.reports_per_reporter_per_hour, which the sink sets from
-- [limits] reports_per_reporter_per_hour; 1000 when unset; 0 = no limit.
--   ALTER DATABASE fbl SET fbl.reports_per_reporter_per_hour = 500;
CREATE FUNCTION fbl.reporter_limit() RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('fbl.reports_per_reporter_per_hour', true), '')::integer,
                    1000)
$$;

-- fbl.store_staged (002), now with the per-reporter limit: a report whose
-- reporter (reporter_address) already has fbl.reporter_limit() reports in the
-- hour up to its received_at (the mail's delivery time, so a redelivered or
-- reparsed mail is judged the same way) is stored with rate_limited = true,
-- and its outbox rows are 'limited': kept for analysts, never forwarded. The
-- limited reports count too, so a flood stays limited while it lasts. Reports
-- without a reporter address are never limited. Two sinks writing the same
-- reporter at once may each let a few more through (no lock is taken: the
-- limit guards the vendor feed against floods, it is not an exact quota).
-- Also: NOTIFY fbl_outbox when outbox rows were written.
CREATE OR REPLACE FUNCTION fbl.store_staged(p_vendors text[], OUT reports integer, OUT rejects integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_limit integer := fbl.reporter_limit();
BEGIN
    WITH s AS (
        SELECT s.id, s.received_at, s.mail_id, s.doc, s.doc->'reporter'->>'address' AS reporter
        FROM pg_temp.fbl_stage_reports s
        JOIN pg_temp.fbl_stage_keys k USING (mail_id, received_at)
    ), l AS (
        -- Reports of the reporter in the hour up to this one: stored (at most
        -- v_limit of them are counted, so a flood costs no more than that), and
        -- earlier in this batch.
        SELECT s.*,
               CASE WHEN v_limit > 0 AND s.reporter IS NOT NULL THEN
                   (SELECT count(*) FROM (
                        SELECT 1 FROM fbl.reports p
                        WHERE p.reporter_address = s.reporter
                          AND p.received_at > s.received_at - interval '1 hour'
                          AND p.received_at <= s.received_at
                        LIMIT v_limit) x)
                   + (SELECT count(*) FROM s b
                      WHERE b.reporter = s.reporter
                        AND b.received_at > s.received_at - interval '1 hour'
                        AND (b.received_at, b.id) < (s.received_at, s.id)) >= v_limit
               ELSE false END AS rate_limited
        FROM s
    ), r AS (
        INSERT INTO fbl.reports AS t (
            id, received_at, mail_id, part, mailbox, format, feedback_type,
            reporter_address, reporter_verified, reporting_mta, user_agent,
            source_ip, source_ip_from, redacted, headers_only, message_id, message_date,
            from_address, from_domain, return_path, return_path_domain, subject,
            fingerprint, message_size, arf_feedback_type, arf_source_ip,
            arf_original_mail_from, arf_arrival_date, arf_reported_domains, arf_incidents,
            arf_auth_failure, warnings, doc, rate_limited)
        SELECT l.id, l.received_at, l.mail_id, (d->>'part')::integer, d->>'mailbox',
               (d->>'format')::fbl.format, (d->>'feedback_type')::fbl.feedback_type,
               d->'reporter'->>'address', (d->'reporter'->>'verified')::boolean,
               d->'reporter'->>'reporting_mta', d->'reporter'->>'user_agent',
               (d->>'source_ip')::inet, d->>'source_ip_from', (d->>'redacted')::boolean,
               (m->>'headers_only')::boolean, m->>'message_id',
               (m->>'date')::timestamptz, m->>'from', m->>'from_domain',
               m->>'return_path', lower(substring(m->>'return_path' FROM '@([^@]*)$')),
               m->>'subject', m->>'fingerprint', (m->>'size')::bigint,
               a->>'feedback_type_raw', (a->>'source_ip')::inet, a->>'original_mail_from',
               (a->>'arrival_date')::timestamptz,
               CASE WHEN a IS NOT NULL AND jsonb_typeof(a) = 'object' THEN
                   ARRAY(SELECT jsonb_array_elements_text(a->'reported_domain')) END,
               (a->>'incidents')::bigint, a->>'auth_failure',
               ARRAY(SELECT jsonb_array_elements_text(d->'warnings')), d, l.rate_limited
        FROM l
        CROSS JOIN LATERAL (SELECT l.doc AS d, l.doc->'message' AS m,
                                   l.doc->'arf' AS a) x
        ON CONFLICT DO NOTHING
        RETURNING t.id, t.received_at, t.doc, t.rate_limited
    ), urls AS (
        INSERT INTO fbl.report_urls (report_id, received_at, position, url, host)
        SELECT r.id, r.received_at, u.n - 1, u.url,
               left(lower(substring(u.url FROM
                   '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?(\[[^]/?#]*\]|[^:/?#]*)')), 255)
        FROM r, jsonb_array_elements_text(r.doc->'message'->'urls') WITH ORDINALITY u(url, n)
    ), hops AS (
        INSERT INTO fbl.report_hops (report_id, received_at, position, from_host, by_host, ip,
                                     helo, date)
        SELECT r.id, r.received_at, h.n - 1, h.hop->>'from', h.hop->>'by',
               (h.hop->>'ip')::inet, h.hop->>'helo', (h.hop->>'date')::timestamptz
        FROM r, jsonb_array_elements(r.doc->'message'->'received') WITH ORDINALITY h(hop, n)
    ), dkim AS (
        INSERT INTO fbl.report_dkim (report_id, received_at, position, d, s)
        SELECT r.id, r.received_at, k.n - 1, k.sig->>'d', k.sig->>'s'
        FROM r, jsonb_array_elements(r.doc->'message'->'dkim') WITH ORDINALITY k(sig, n)
    ), att AS (
        INSERT INTO fbl.report_attachments (report_id, received_at, position, name, type, size,
                                            sha256)
        SELECT r.id, r.received_at, t.n - 1, t.att->>'name', t.att->>'type',
               (t.att->>'size')::bigint, t.att->>'sha256'
        FROM r, jsonb_array_elements(r.doc->'message'->'attachments') WITH ORDINALITY t(att, n)
    ), outbox AS (
        INSERT INTO fbl.vendor_outbox (report_id, received_at, vendor, state)
        SELECT r.id, r.received_at, v.vendor,
               CASE WHEN r.rate_limited THEN 'limited' ELSE 'pending' END::fbl.outbox_state
        FROM r CROSS JOIN unnest(p_vendors) v(vendor)
        WHERE NOT EXISTS (SELECT 1 FROM pg_temp.fbl_stage_old_ids o
                          WHERE o.id = r.id AND o.received_at = r.received_at)
        ON CONFLICT DO NOTHING
    )
    SELECT count(*) INTO reports FROM r;
    -- Delivered at COMMIT: the forwarders wake at once instead of at their next poll.
    IF reports > 0 AND cardinality(p_vendors) > 0 THEN
        PERFORM pg_notify('fbl_outbox', '');
    END IF;

    INSERT INTO fbl.rejects (mail_id, received_at, mailbox, reason, detail, size)
    SELECT j.mail_id, j.received_at, j.mailbox, j.reason::fbl.reject_reason, j.detail, j.size
    FROM pg_temp.fbl_stage_rejects j
    JOIN pg_temp.fbl_stage_keys k USING (mail_id, received_at)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS rejects = ROW_COUNT;
END
$$;

-- The forwarders' claim: a vendor's due pending rows, oldest due first.
CREATE INDEX ON fbl.vendor_outbox (vendor, next_attempt_at) WHERE state = 'pending';
