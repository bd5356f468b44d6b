-- 007_duplicates.sql - the same report delivered twice is forwarded once.
--
-- A feedback loop that sends a report twice, or a subscriber who clicks
-- "Report as spam" twice, makes two mails whose bytes differ (the MTA adds its
-- own Received, Delivered-To and Return-Path), so two mail_ids and two report
-- ids: the store's idempotency (001) cannot see them as one. Here the store
-- recognises the second copy by what it reports:
--
--   the same reporter address (case ignored), the same feedback type, and the
--   same reported message: its Message-ID, or when it has none, the same
--   campaign fingerprint and the same source IP,
--
-- within fbl.duplicate_window() (7 days unless the setting says) of a report
-- stored before it. Both rows are kept: the copy stored later gets
-- fbl.reports.duplicate_of = the id of the report it repeats (always an
-- original: a report whose duplicate_of is NULL), and its outbox rows are
-- written in the state 'duplicate' (never sent, never retried), so each vendor
-- gets the report once. The analyst functions count originals only.
--
-- "Stored before" is the order of the commits, not of received_at: a copy
-- whose mail was delivered earlier but reached a sink later is the duplicate,
-- so nothing already forwarded is ever taken back. Concurrency: every writer
-- takes a transaction-scoped advisory lock on each duplicate key of its batch
-- (sorted, so two writers cannot deadlock on them) before it looks for
-- originals; a second sink storing the other copy at the same moment waits for
-- the first one's commit and then sees its row (READ COMMITTED: each statement
-- takes a new snapshot). Reports without a reporter address, or without a
-- Message-ID and without a fingerprint or source IP, are never duplicates.
--
-- Each report's key is stored with it (fbl.reports.duplicate_key, indexed
-- with the delivery time), so finding an original is one index probe. This
-- migration computes it for the reports of the last window (the only ones a
-- new report can repeat); older reports keep it NULL. Reports stored before
-- keep duplicate_of NULL: none is marked after the fact.

ALTER TYPE fbl.outbox_state ADD VALUE IF NOT EXISTS 'duplicate';

ALTER TABLE fbl.reports ADD COLUMN duplicate_of text COLLATE "C",
                        ADD COLUMN duplicate_key text COLLATE "C";

-- fbl.duplicate_window - how far apart (in received_at, either way) two
-- copies may be: the session's (or database's, or role's) setting
-- fbl.duplicate_window, an interval; 7 days when unset; '0' turns the
-- detection off. The same for every sink and fbl reparse when set on the
-- database:
--   ALTER DATABASE fbl SET fbl.duplicate_window = '3 days';
CREATE FUNCTION fbl.duplicate_window() RETURNS interval
LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('fbl.duplicate_window', true), '')::interval,
                    interval '7 days')
$$;

-- fbl.duplicate_key - what two copies of one report share (see the top), as
-- a hex MD5 (it only has to tell reports apart, and a short key keeps the
-- index small); NULL: the report cannot be recognised again. Plain IMMUTABLE
-- SQL on the document's own strings, so every writer computes the same key.
CREATE FUNCTION fbl.duplicate_key(reporter text, feedback_type text, message_id text,
                                  fingerprint text, source_ip text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN coalesce(reporter, '') = '' OR feedback_type IS NULL THEN NULL
        WHEN coalesce(message_id, '') <> '' THEN
            pg_catalog.md5('m' || pg_catalog.lower(reporter) || chr(31) || feedback_type
                           || chr(31) || message_id)
        WHEN coalesce(fingerprint, '') <> '' AND coalesce(source_ip, '') <> '' THEN
            pg_catalog.md5('f' || pg_catalog.lower(reporter) || chr(31) || feedback_type
                           || chr(31) || fingerprint || chr(31) || source_ip)
    END
$$;

-- fbl.duplicate_key(doc) - the same, of a report's document, which is read
-- (and decompressed) once: each doc->'x' of a stored or staged document
-- would read it again.
CREATE FUNCTION fbl.duplicate_key(doc jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT fbl.duplicate_key(x.reporter->>'address', x.feedback_type,
                             x.message->>'message_id', x.message->>'fingerprint', x.source_ip)
    FROM jsonb_to_record(doc) AS x(reporter jsonb, feedback_type text, message jsonb,
                                   source_ip text)
$$;

-- The keys of the reports a new one can still repeat (see the top).
UPDATE fbl.reports SET duplicate_key = fbl.duplicate_key(doc)
WHERE received_at >= now() - fbl.duplicate_window();

-- The originals by key and delivery time: one index probe per new report.
-- Only originals are looked for, hence partial.
CREATE INDEX reports_duplicate_key_idx ON fbl.reports (duplicate_key, received_at)
    WHERE duplicate_of IS NULL AND duplicate_key IS NOT NULL;
-- The duplicates of a window (the analyst functions leave them out) and what
-- they point at (fbl reparse re-examines the copies of a report it rewrote).
-- Duplicates are few: a small index.
CREATE INDEX reports_duplicates_idx ON fbl.reports (received_at) INCLUDE (id, duplicate_of)
    WHERE duplicate_of IS NOT NULL;

-- fbl.lock_duplicate_keys - take the transaction's advisory lock on every
-- duplicate key of the staged reports (of the mails in fbl_stage_keys) and of
-- @p_extra, in one sorted pass: whoever holds a key is the only writer that
-- can add a report with it until it commits. The two-integer form keeps these
-- locks apart from every one-bigint advisory lock (migrations, partitions).
CREATE FUNCTION fbl.lock_duplicate_keys(p_extra text[] DEFAULT NULL) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    k integer;
BEGIN
    FOR k IN
        SELECT DISTINCT hashtext(x.key) FROM (
            SELECT fbl.duplicate_key(s.doc) AS key
            FROM pg_temp.fbl_stage_reports s
            JOIN pg_temp.fbl_stage_keys USING (mail_id, received_at)
            UNION ALL
            SELECT unnest(p_extra)) x
        WHERE x.key IS NOT NULL
        ORDER BY 1
    LOOP
        PERFORM pg_advisory_xact_lock(hashtext('fbl.duplicate_key'), k);
    END LOOP;
END
$$;

-- fbl.duplicate_original - the original that a report with key @p_key,
-- delivered at @p_at, repeats: the earliest stored original with that key
-- within the window around @p_at, other than the report (@p_id, @p_at)
-- itself; NULL when there is none.
CREATE FUNCTION fbl.duplicate_original(p_key text, p_id text, p_at timestamptz,
                                       p_window interval)
RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT p.id FROM fbl.reports p
    WHERE p_key IS NOT NULL AND p_window > interval '0'
      AND p.duplicate_key = p_key AND p.duplicate_of IS NULL
      AND p.received_at >= p_at - p_window AND p.received_at <= p_at + p_window
      AND NOT (p.id = p_id AND p.received_at = p_at)
    ORDER BY p.received_at, p.id
    LIMIT 1
$$;

-- fbl.store_staged (006), now with duplicates: the keys are locked first,
-- then each staged report is compared with the stored originals and with the
-- reports before it in the batch (by received_at, id): a report with a stored
-- original repeats it; one without repeats the batch's first report of its key
-- that has none, when that one is in its window. duplicate_of is written with
-- the report, and its outbox rows are 'duplicate' (before 'limited': a copy is
-- not a new report at all). Everything else is 006's.
-- XXX within one batch a copy is compared with the batch's first copy of its
-- key only: a batch that spans more than the window (fbl reparse over months)
-- may mark a third copy as the duplicate of a first one that is out of its
-- window.
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
        -- The per-reporter limit: 006's.
        SELECT s.*,
               CASE WHEN v_limit > 0 AND s.reporter IS NOT NULL AND NOT s.exempt THEN
                   (SELECT count(*) FROM (
                        SELECT 1 FROM fbl.reports p
                        WHERE p.reporter_address = s.reporter
                          AND (p.reporter_verified IS TRUE) = s.verified
                          AND p.received_at > s.received_at - interval '1 hour'
                          AND p.received_at <= s.received_at
                        LIMIT v_limit) x)
                   + (SELECT count(*) FROM s b
                      WHERE b.reporter = s.reporter AND b.verified = s.verified
                        AND b.received_at > s.received_at - interval '1 hour'
                        AND (b.received_at, b.id) < (s.received_at, s.id)) >= v_limit
               ELSE false END AS rate_limited,
               -- fbl.duplicate_original(), written out: one index probe, planned once.
               (SELECT p.id FROM fbl.reports p
                WHERE v_window > interval '0' AND p.duplicate_key = s.dkey
                  AND p.duplicate_of IS NULL
                  AND p.received_at >= s.received_at - v_window
                  AND p.received_at <= s.received_at + v_window
                ORDER BY p.received_at, p.id LIMIT 1) AS stored_original
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

-- fbl.duplicate_recheck - after fbl reparse rewrote the reports @p_ids (with
-- their delivery times @p_ats, and what their duplicate_of and key were before,
-- @p_dups and @p_keys):
-- 1. a rewritten report whose key did not change keeps the role it had (an
--    original stays one, a copy keeps its original while that still is one
--    with the same key): what was forwarded stays the one forwarded;
-- 2. any report that points at a report that is no longer an original with
--    its key (gone, rewritten with another key, or now a copy itself) is
--    compared again with the stored originals;
-- 3. the unsent outbox rows (pending, duplicate) of the reports looked at
--    follow their role: 'duplicate' for a copy, 'pending' for an original.
-- Sent, dead and limited rows stay as they are.
CREATE FUNCTION fbl.duplicate_recheck(p_ids text[], p_ats timestamptz[], p_dups text[],
                                      p_keys text[])
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_window interval := fbl.duplicate_window();
    v_ids text[];
    v_ats timestamptz[];
BEGIN
    -- 1. Rewritten with the same key: the old role back.
    UPDATE fbl.reports r SET duplicate_of = o.dup
    FROM unnest(p_ids, p_ats, p_dups, p_keys) o(id, at, dup, key)
    WHERE r.id = o.id AND r.received_at = o.at
      AND r.duplicate_key IS NOT DISTINCT FROM o.key
      AND r.duplicate_of IS DISTINCT FROM o.dup;
    -- 2. The rewritten reports and every copy that points at one of them.
    SELECT array_agg(c.id), array_agg(c.at) INTO v_ids, v_ats
    FROM (SELECT o.id, o.at FROM unnest(p_ids, p_ats) o(id, at)
          UNION
          SELECT q.id, q.received_at FROM fbl.reports q
          WHERE q.duplicate_of = ANY (p_ids)
            AND q.received_at >= (SELECT min(a) FROM unnest(p_ats) a) - v_window
            AND q.received_at <= (SELECT max(a) FROM unnest(p_ats) a) + v_window) c;
    UPDATE fbl.reports q
    SET duplicate_of = fbl.duplicate_original(q.duplicate_key, q.id, q.received_at, v_window)
    FROM unnest(v_ids, v_ats) c(id, at)
    WHERE q.id = c.id AND q.received_at = c.at AND q.duplicate_of IS NOT NULL
      AND NOT EXISTS (
          SELECT 1 FROM fbl.reports p
          WHERE p.id = q.duplicate_of AND p.duplicate_of IS NULL
            AND p.received_at >= q.received_at - v_window
            AND p.received_at <= q.received_at + v_window
            AND p.duplicate_key = q.duplicate_key);
    -- 3. Their unsent outbox rows follow.
    UPDATE fbl.vendor_outbox b
    SET state = CASE WHEN q.duplicate_of IS NOT NULL THEN 'duplicate'
                     ELSE 'pending' END::fbl.outbox_state,
        next_attempt_at = now()
    FROM unnest(v_ids, v_ats) c(id, at)
    JOIN fbl.reports q ON q.id = c.id AND q.received_at = c.at
    WHERE b.report_id = c.id AND b.received_at = c.at
      AND b.state IN ('pending', 'duplicate')
      AND b.state <> CASE WHEN q.duplicate_of IS NOT NULL THEN 'duplicate'
                          ELSE 'pending' END::fbl.outbox_state;
    IF FOUND THEN
        PERFORM pg_notify('fbl_outbox', '');
    END IF;
END
$$;

-- fbl.replace_staged (002), now keeping duplicates exact: the keys of the
-- reports it rewrites (before and after) are locked first, what those
-- reports were is remembered, and fbl.duplicate_recheck() sets their roles
-- and their copies' after the rewrite. Everything else is 002's.
CREATE OR REPLACE FUNCTION fbl.replace_staged(p_vendors text[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    changed integer;
    v_ids text[];
    v_ats timestamptz[];
    v_dups text[];
    v_keys text[];
BEGIN
    DELETE FROM pg_temp.fbl_stage_keys k
    WHERE NOT EXISTS (
            (SELECT r.id, r.doc FROM fbl.reports r
             WHERE r.mail_id = k.mail_id AND r.received_at = k.received_at
             EXCEPT
             SELECT s.id, s.doc FROM pg_temp.fbl_stage_reports s
             WHERE s.mail_id = k.mail_id AND s.received_at = k.received_at)
            UNION ALL
            (SELECT s.id, s.doc FROM pg_temp.fbl_stage_reports s
             WHERE s.mail_id = k.mail_id AND s.received_at = k.received_at
             EXCEPT
             SELECT r.id, r.doc FROM fbl.reports r
             WHERE r.mail_id = k.mail_id AND r.received_at = k.received_at))
      AND NOT EXISTS (
            (SELECT j.mailbox, j.reason::text, j.detail, j.size FROM fbl.rejects j
             WHERE j.mail_id = k.mail_id AND j.received_at = k.received_at
             EXCEPT
             SELECT s.mailbox, s.reason, s.detail, s.size FROM pg_temp.fbl_stage_rejects s
             WHERE s.mail_id = k.mail_id AND s.received_at = k.received_at)
            UNION ALL
            (SELECT s.mailbox, s.reason, s.detail, s.size FROM pg_temp.fbl_stage_rejects s
             WHERE s.mail_id = k.mail_id AND s.received_at = k.received_at
             EXCEPT
             SELECT j.mailbox, j.reason::text, j.detail, j.size FROM fbl.rejects j
             WHERE j.mail_id = k.mail_id AND j.received_at = k.received_at));
    SELECT count(*) INTO changed FROM pg_temp.fbl_stage_keys;
    IF changed = 0 THEN
        RETURN 0;
    END IF;

    INSERT INTO pg_temp.fbl_stage_old_ids
    SELECT r.id, r.received_at FROM fbl.reports r
    JOIN pg_temp.fbl_stage_keys k USING (mail_id, received_at);

    SELECT array_agg(r.id), array_agg(r.received_at), array_agg(r.duplicate_of),
           array_agg(r.duplicate_key)
    INTO v_ids, v_ats, v_dups, v_keys
    FROM fbl.reports r JOIN pg_temp.fbl_stage_old_ids o USING (id, received_at);
    -- Old and new keys in one sorted pass (store_staged takes the new ones
    -- again: an advisory lock a transaction holds is granted at once).
    IF fbl.duplicate_window() > interval '0' THEN
        PERFORM fbl.lock_duplicate_keys(v_keys);
    END IF;

    DELETE FROM fbl.report_urls c USING pg_temp.fbl_stage_old_ids o
    WHERE c.report_id = o.id AND c.received_at = o.received_at;
    DELETE FROM fbl.report_hops c USING pg_temp.fbl_stage_old_ids o
    WHERE c.report_id = o.id AND c.received_at = o.received_at;
    DELETE FROM fbl.report_dkim c USING pg_temp.fbl_stage_old_ids o
    WHERE c.report_id = o.id AND c.received_at = o.received_at;
    DELETE FROM fbl.report_attachments c USING pg_temp.fbl_stage_old_ids o
    WHERE c.report_id = o.id AND c.received_at = o.received_at;
    DELETE FROM fbl.vendor_outbox b USING pg_temp.fbl_stage_old_ids o
    WHERE b.report_id = o.id AND b.received_at = o.received_at
      AND b.state IN ('pending', 'duplicate')
      AND NOT EXISTS (SELECT 1 FROM pg_temp.fbl_stage_reports s
                      WHERE s.id = o.id AND s.received_at = o.received_at);
    DELETE FROM fbl.reports r USING pg_temp.fbl_stage_old_ids o
    WHERE r.id = o.id AND r.received_at = o.received_at;
    DELETE FROM fbl.rejects j USING pg_temp.fbl_stage_keys k
    WHERE j.mail_id = k.mail_id AND j.received_at = k.received_at;

    PERFORM fbl.store_staged(p_vendors);
    IF v_ids IS NOT NULL AND fbl.duplicate_window() > interval '0' THEN
        PERFORM fbl.duplicate_recheck(v_ids, v_ats, v_dups, v_keys);
    END IF;
    RETURN changed;
END
$$;

-- ---- the analyst functions: a report and its copies count once --------------
-- Every function that counts reports (005, and 006's masked versions) now
-- counts originals only (duplicate_of IS NULL): a report delivered twice is
-- one complaint in summary, complaints_hourly, top_source_ips,
-- top_sender_domains, campaigns, reporters and false_positives. top_url_hosts
-- reads fbl.report_urls, which has no duplicate_of: it leaves out the URLs of
-- the window's copies, read through reports_duplicates_idx (copies are few, so
-- this is a small hash anti-join, not a join of every URL to its report).
-- vendor_feed counts outbox rows by state, and 'duplicate' rows in none of its
-- columns; rejects_by_reason reads no report. Signatures, grants, masks and
-- plans are otherwise 005's and 006's.

CREATE OR REPLACE FUNCTION fbl.summary(since timestamptz DEFAULT now() - interval '24 hours',
                                       until timestamptz DEFAULT 'infinity')
RETURNS TABLE (reports bigint, not_spam bigint, rate_limited bigint, reporters bigint,
               rejects bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan SET jit = off
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT count(*), count(*) FILTER (WHERE r.feedback_type = 'not-spam'),
           count(*) FILTER (WHERE r.rate_limited), count(DISTINCT r.reporter_address),
           (SELECT count(*) FROM fbl.rejects j
            WHERE j.received_at >= since AND j.received_at < until)
    FROM fbl.reports r
    WHERE r.received_at >= since AND r.received_at < until AND r.duplicate_of IS NULL;
END
$$;

CREATE OR REPLACE FUNCTION fbl.complaints_hourly(
    since timestamptz DEFAULT now() - interval '24 hours', until timestamptz DEFAULT 'infinity')
RETURNS TABLE (hour timestamptz, mailbox text, feedback_type fbl.feedback_type, reports bigint,
               rate_limited bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan SET jit = off
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT date_trunc('hour', r.received_at, 'UTC'), fbl.mask_addresses(r.mailbox),
           r.feedback_type, count(*), count(*) FILTER (WHERE r.rate_limited)
    FROM fbl.reports r
    WHERE r.received_at >= since AND r.received_at < until AND r.duplicate_of IS NULL
    GROUP BY date_trunc('hour', r.received_at, 'UTC'), r.mailbox, r.feedback_type
    ORDER BY 1, 2, 3;
END
$$;

CREATE OR REPLACE FUNCTION fbl.top_source_ips(
    since timestamptz DEFAULT now() - interval '24 hours', lim integer DEFAULT NULL,
    until timestamptz DEFAULT 'infinity')
RETURNS TABLE (source_ip inet, network cidr, reports bigint, reporters bigint,
               network_reports bigint, network_ips bigint, first_seen timestamptz,
               last_seen timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan SET jit = off
AS $$
#variable_conflict use_column
BEGIN
    -- The network totals: see 005.
    RETURN QUERY
    WITH ips AS (
        SELECT r.source_ip AS ip, count(*) AS n, count(DISTINCT r.reporter_address) AS who_n,
               min(r.received_at) AS lo, max(r.received_at) AS hi
        FROM fbl.reports r
        WHERE r.received_at >= since AND r.received_at < until AND r.source_ip IS NOT NULL
          AND r.duplicate_of IS NULL
        GROUP BY 1
    ), x AS (
        SELECT ips.*, network(set_masklen(ips.ip, CASE family(ips.ip) WHEN 4 THEN 24
                                                  ELSE 48 END)) AS net
        FROM ips
    )
    SELECT x.ip, x.net, x.n, x.who_n, (sum(x.n) OVER w)::bigint, count(*) OVER w, x.lo, x.hi
    FROM x
    WINDOW w AS (PARTITION BY x.net)
    ORDER BY x.n DESC, x.ip
    LIMIT lim;
END
$$;

CREATE OR REPLACE FUNCTION fbl.top_sender_domains(
    since timestamptz DEFAULT now() - interval '24 hours', lim integer DEFAULT NULL,
    until timestamptz DEFAULT 'infinity')
RETURNS TABLE (from_domain text, dkim_domain text, return_path_domain text, reports bigint,
               reporters bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan SET jit = off
AS $$
#variable_conflict use_column
BEGIN
    -- The DKIM join: see 005.
    RETURN QUERY
    SELECT fbl.mask_addresses(r.from_domain), fbl.mask_addresses(d.d),
           fbl.mask_addresses(r.return_path_domain), count(*),
           count(DISTINCT r.reporter_address)
    FROM fbl.reports r
    LEFT JOIN fbl.report_dkim d
           ON d.received_at = r.received_at AND d.report_id >= r.id AND d.report_id <= r.id
          AND d.position = 0 AND d.received_at >= since AND d.received_at < until
    WHERE r.received_at >= since AND r.received_at < until AND r.duplicate_of IS NULL
    GROUP BY r.from_domain, d.d, r.return_path_domain
    ORDER BY 4 DESC, 1, 2, 3
    LIMIT lim;
END
$$;

CREATE OR REPLACE FUNCTION fbl.top_url_hosts(
    since timestamptz DEFAULT now() - interval '24 hours', lim integer DEFAULT NULL,
    until timestamptz DEFAULT 'infinity')
RETURNS TABLE (host text, reports bigint, urls bigint, first_seen timestamptz,
               last_seen timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan SET jit = off
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT fbl.mask_addresses(u.host), count(DISTINCT u.report_id), count(*), min(u.received_at),
           max(u.received_at)
    FROM fbl.report_urls u
    WHERE u.received_at >= since AND u.received_at < until AND u.host IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM fbl.reports c
                      WHERE c.duplicate_of IS NOT NULL AND c.received_at = u.received_at
                        AND c.id = u.report_id AND c.received_at >= since
                        AND c.received_at < until)
    GROUP BY u.host
    ORDER BY 2 DESC, 1
    LIMIT lim;
END
$$;

CREATE OR REPLACE FUNCTION fbl.campaigns(
    since timestamptz DEFAULT now() - interval '24 hours', lim integer DEFAULT NULL,
    until timestamptz DEFAULT 'infinity')
RETURNS TABLE (fingerprint text, first_seen timestamptz, last_seen timestamptz, reports bigint,
               reporters bigint, sample_subject text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan SET jit = off
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT fbl.mask_addresses(r.fingerprint), min(r.received_at), max(r.received_at), count(*),
           count(DISTINCT r.reporter_address), fbl.mask_addresses(min(r.subject))
    FROM fbl.reports r
    WHERE r.received_at >= since AND r.received_at < until AND r.fingerprint IS NOT NULL
      AND r.duplicate_of IS NULL
    GROUP BY r.fingerprint
    ORDER BY 4 DESC, 1
    LIMIT lim;
END
$$;

CREATE OR REPLACE FUNCTION fbl.reporters(
    since timestamptz DEFAULT now() - interval '24 hours', lim integer DEFAULT NULL,
    until timestamptz DEFAULT 'infinity')
RETURNS TABLE (reporter_domain text, reporter_key text, reports bigint, rate_limited bigint,
               verified bigint, verified_share numeric)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan SET jit = off
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH per AS (
        SELECT r.reporter_address AS who, count(*) AS n,
               count(*) FILTER (WHERE r.rate_limited) AS limited,
               count(*) FILTER (WHERE r.reporter_verified) AS ok
        FROM fbl.reports r
        WHERE r.received_at >= since AND r.received_at < until AND r.duplicate_of IS NULL
        GROUP BY 1
    )
    SELECT fbl.mask_addresses(nullif(CASE WHEN strpos(per.who, '@') > 0
                                          THEN split_part(per.who, '@', -1) END, '')),
           fbl.mask_addresses(left(encode(sha256(k.key || convert_to(per.who, 'UTF8')), 'hex'),
                                   16)),
           per.n, per.limited, per.ok, round(per.ok::numeric / per.n, 3)
    FROM per CROSS JOIN fbl.pseudonym_key k
    ORDER BY per.n DESC, 2
    LIMIT lim;
END
$$;

CREATE OR REPLACE FUNCTION fbl.false_positives(
    since timestamptz DEFAULT now() - interval '24 hours', lim integer DEFAULT NULL,
    until timestamptz DEFAULT 'infinity')
RETURNS TABLE (from_domain text, source_ip inet, not_spam bigint, reports bigint,
               not_spam_share numeric)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan SET jit = off
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT fbl.mask_addresses(x.from_domain), x.source_ip, x.ns, x.n,
           round(x.ns::numeric / x.n, 3)
    FROM (SELECT r.from_domain, r.source_ip,
                 count(*) FILTER (WHERE r.feedback_type = 'not-spam') AS ns, count(*) AS n
          FROM fbl.reports r
          WHERE r.received_at >= since AND r.received_at < until AND r.duplicate_of IS NULL
          GROUP BY 1, 2) x
    WHERE x.ns > 0
    ORDER BY x.ns DESC, x.from_domain, x.source_ip
    LIMIT lim;
END
$$;
