-- 013_store_lookups.sql - the store's lookups read one key's rows whatever
-- the statistics.
--
-- fbl.store_staged() (007) found a report's stored original with
--
--   SELECT p.id ... WHERE p.duplicate_key = key AND p.duplicate_of IS NULL
--     AND p.received_at >= at - window AND p.received_at <= at + window
--   ORDER BY p.received_at, p.id LIMIT 1
--
-- meant as one probe of reports_duplicate_key_idx (duplicate_key,
-- received_at). But a month's plain received_at index takes both bounds too,
-- and gives the order besides; on a partition without statistics (a new
-- database, and every month until autoanalyze reaches it) the planner costs
-- the two within a hair of each other, and the plan a sink's session caches
-- for its store statement often took the received_at index on the current
-- month: each new report then read every report of its +-7-day window and
-- filtered on the key. Quadratic: PostgreSQL's CPU per stored mail went from
-- about 0.35 to 1.2 ms in 5 rounds of 8 (bench/store-cost,
-- bench/results/store-lookups-2026-12-07.md). The per-reporter limit's count
-- (006: reporter_address, kind, the hour up to received_at) flipped the same
-- way to the received_at index, and so did fbl.duplicate_original() (fbl
-- reparse's re-check).
--
-- Now the upper bound is written as a row comparison on the columns of the
-- index meant, (duplicate_key, received_at) <= (key, at + window), and
-- (reporter_address, reporter_verified IS TRUE, received_at) <= (reporter,
-- kind, at), which only that index can take: with the equality on the key
-- beside it, it is the same bound. The received_at index is left with the
-- lower bound alone, which the planner takes for a third of the partition
-- whatever the statistics (its value comes from the outer row, unknown when
-- planning), so it is never the cheaper probe; the lower bound stays a plain
-- one so that run-time pruning still skips the older months. And the earliest
-- original is an aggregate, (array_agg(id ORDER BY received_at, id))[1], over
-- the key's rows of the window, not ORDER BY ... LIMIT 1, so that no index is
-- chosen for its order (min() would not do: the planner turns min() of an
-- indexed column back into ORDER BY ... LIMIT 1). Copies are rare: it sorts
-- one row or none. The results are 007's and 006's exactly: the earliest
-- original by (received_at, id) in the window, NULL when there is none; the
-- reports of the same reporter and kind in the hour up to received_at, at
-- most fbl.reporter_limit() of them. The locks, the window and everything else
-- are 007's. The rollup triggers (012) are on the tables, not on these
-- functions: nothing changes for them. tests/integration/duplicates.py plans
-- checks the plans on a month without statistics.

-- fbl.duplicate_original (007), the earliest original as an aggregate.
CREATE OR REPLACE FUNCTION fbl.duplicate_original(p_key text, p_id text, p_at timestamptz,
                                                  p_window interval)
RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT (array_agg(p.id ORDER BY p.received_at, p.id))[1] FROM fbl.reports p
    WHERE p_key IS NOT NULL AND p_window > interval '0'
      AND p.duplicate_key = p_key AND p.duplicate_of IS NULL
      AND p.received_at >= p_at - p_window
      AND (p.duplicate_key, p.received_at) <= (p_key, p_at + p_window)
      AND NOT (p.id = p_id AND p.received_at = p_at)
$$;

-- fbl.store_staged (007), the stored original found as in
-- fbl.duplicate_original() above, and the per-reporter count's upper bound on
-- its index's columns. Everything else is 007's.
CREATE OR REPLACE FUNCTION fbl.store_staged(p_vendors text[], OUT reports integer,
                                            OUT rejects integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_limit integer := fbl.reporter_limit();
    v_window interval := fbl.duplicate_window();
BEGIN
    IF v_window > interval '0' THEN
        PERFORM fbl.lock_duplicate_keys();
    END IF;
    -- A new statement, so a new snapshot: the rows of every writer that held
    -- one of our keys before us are visible from here on.
    WITH s AS (
        SELECT s.id, s.received_at, s.mail_id, s.doc, s.doc->'reporter'->>'address' AS reporter,
               (s.doc->'reporter'->>'verified')::boolean IS TRUE AS verified,
               fbl.reporter_exempt(s.doc->'reporter'->>'address',
                                   (s.doc->'reporter'->>'verified')::boolean) AS exempt,
               fbl.duplicate_key(s.doc) AS dkey
        FROM pg_temp.fbl_stage_reports s
        JOIN pg_temp.fbl_stage_keys k USING (mail_id, received_at)
    ), l AS (
        -- The per-reporter limit: 006's, its upper bound on the index's columns
        -- (see the top).
        SELECT s.*,
               CASE WHEN v_limit > 0 AND s.reporter IS NOT NULL AND NOT s.exempt THEN
                   (SELECT count(*) FROM (
                        SELECT 1 FROM fbl.reports p
                        WHERE p.reporter_address = s.reporter
                          AND (p.reporter_verified IS TRUE) = s.verified
                          AND p.received_at > s.received_at - interval '1 hour'
                          AND (p.reporter_address, p.reporter_verified IS TRUE, p.received_at)
                              <= (s.reporter, s.verified, s.received_at)
                        LIMIT v_limit) x)
                   + (SELECT count(*) FROM s b
                      WHERE b.reporter = s.reporter AND b.verified = s.verified
                        AND b.received_at > s.received_at - interval '1 hour'
                        AND (b.received_at, b.id) < (s.received_at, s.id)) >= v_limit
               ELSE false END AS rate_limited,
               -- fbl.duplicate_original(), written out: one index probe, planned once.
               -- The earliest by (received_at, id) as an aggregate, not ORDER BY
               -- ... LIMIT 1: see the top.
               (SELECT (array_agg(p.id ORDER BY p.received_at, p.id))[1] FROM fbl.reports p
                WHERE v_window > interval '0' AND p.duplicate_key = s.dkey
                  AND p.duplicate_of IS NULL
                  AND p.received_at >= s.received_at - v_window
                  AND (p.duplicate_key, p.received_at)
                      <= (s.dkey, s.received_at + v_window)) AS stored_original
        FROM s
    ), b AS (
        -- The batch's first report of each key that has no stored original.
        SELECT l.*,
               first_value(l.id) OVER w AS first_id,
               first_value(l.received_at) OVER w AS first_at
        FROM l
        WINDOW w AS (PARTITION BY l.dkey, l.stored_original IS NULL
                     ORDER BY l.received_at, l.id)
    ), o AS (
        SELECT b.*,
               CASE WHEN b.stored_original IS NOT NULL THEN b.stored_original
                    WHEN v_window > interval '0' AND b.dkey IS NOT NULL AND b.first_id <> b.id
                         AND b.received_at - b.first_at <= v_window THEN b.first_id
               END AS duplicate_of
        FROM b
    ), r AS (
        INSERT INTO fbl.reports AS t (
            id, received_at, mail_id, part, mailbox, format, feedback_type,
            reporter_address, reporter_verified, reporting_mta, user_agent,
            source_ip, source_ip_from, redacted, headers_only, message_id, message_date,
            from_address, from_domain, return_path, return_path_domain, subject,
            fingerprint, message_size, arf_feedback_type, arf_source_ip,
            arf_original_mail_from, arf_arrival_date, arf_reported_domains, arf_incidents,
            arf_auth_failure, warnings, doc, rate_limited, duplicate_of, duplicate_key)
        SELECT o.id, o.received_at, o.mail_id, (d->>'part')::integer, d->>'mailbox',
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
               ARRAY(SELECT jsonb_array_elements_text(d->'warnings')), d, o.rate_limited,
               o.duplicate_of, o.dkey
        FROM o
        CROSS JOIN LATERAL (SELECT o.doc AS d, o.doc->'message' AS m,
                                   o.doc->'arf' AS a) x
        ON CONFLICT DO NOTHING
        RETURNING t.id, t.received_at, t.doc, t.rate_limited, t.duplicate_of
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
               CASE WHEN r.duplicate_of IS NOT NULL THEN 'duplicate'
                    WHEN r.rate_limited THEN 'limited'
                    ELSE 'pending' END::fbl.outbox_state
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
