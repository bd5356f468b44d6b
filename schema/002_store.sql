-- 002_store.sql - how the sink writes: staging tables and the functions that
-- move a staged batch into the partitioned tables
--
-- The sink (sink/pg.c) calls fbl.create_staging() once per connection, then
-- per batch, in ONE transaction: COPY (binary) into the pg_temp.fbl_stage_*
-- tables, SELECT fbl.write_staged(vendors), COMMIT. fbl reparse stages the
-- new parse of some stored mails and calls fbl.replace_staged(vendors). The
-- staging tables empty themselves at every commit (ON COMMIT DELETE ROWS).
--
-- The COPY column lists below are the contract with sink/pg.c: change them
-- only together (a later migration redefining fbl.create_staging() must keep
-- what the binaries that run against it send).

-- fbl.create_staging - this session's staging tables (temporary, idempotent)
CREATE FUNCTION fbl.create_staging() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    -- The mails of a batch, as the watcher sent them (raw may be NULL).
    -- raw and doc are compressed here as fbl.mails and fbl.reports keep them:
    -- INSERT ... SELECT copies a compressed value as it is (pglz here would
    -- end up in fbl.mails, and cost the write three times lz4's time).
    CREATE TEMP TABLE IF NOT EXISTS fbl_stage_mails (
        mail_id text COLLATE "C" NOT NULL,
        received_at timestamptz NOT NULL,
        mailbox text,
        size bigint,
        raw bytea COMPRESSION lz4
    ) ON COMMIT DELETE ROWS;
    -- Their reports: the contract document; columns come from it.
    CREATE TEMP TABLE IF NOT EXISTS fbl_stage_reports (
        id text COLLATE "C" NOT NULL,
        mail_id text COLLATE "C" NOT NULL,
        received_at timestamptz NOT NULL,
        doc jsonb COMPRESSION lz4 NOT NULL
    ) ON COMMIT DELETE ROWS;
    -- Their rejects (reason: a fbl.reject_reason label).
    CREATE TEMP TABLE IF NOT EXISTS fbl_stage_rejects (
        mail_id text COLLATE "C" NOT NULL,
        received_at timestamptz NOT NULL,
        mailbox text,
        reason text NOT NULL,
        detail text,
        size bigint
    ) ON COMMIT DELETE ROWS;
    -- The mails whose reports and rejects are to be written: the new ones
    -- (write_staged), or the ones being reparsed (staged by the caller).
    CREATE TEMP TABLE IF NOT EXISTS fbl_stage_keys (
        mail_id text COLLATE "C" NOT NULL,
        received_at timestamptz NOT NULL
    ) ON COMMIT DELETE ROWS;
    -- Report ids the reparsed mails had before (no outbox rows for them).
    CREATE TEMP TABLE IF NOT EXISTS fbl_stage_old_ids (
        id text COLLATE "C" NOT NULL,
        received_at timestamptz NOT NULL
    ) ON COMMIT DELETE ROWS;
END
$$;

-- fbl.store_staged - write the staged reports and rejects of the mails in
-- fbl_stage_keys, with their children, and one outbox row per report and
-- vendor for the reports whose id is not in fbl_stage_old_ids. Returns the
-- numbers of reports and rejects written. Children are written for the
-- reports inserted now only, so they cannot exist yet: plain INSERTs (a
-- conflict there is a broken store, and fails the batch).
-- Outbox rows may (a report id that comes back after a reparse took it).
CREATE FUNCTION fbl.store_staged(p_vendors text[], OUT reports integer, OUT rejects integer)
LANGUAGE plpgsql AS $$
BEGIN
    WITH r AS (
        INSERT INTO fbl.reports AS t (
            id, received_at, mail_id, part, mailbox, format, feedback_type,
            reporter_address, reporter_verified, reporting_mta, user_agent,
            source_ip, source_ip_from, redacted, headers_only, message_id, message_date,
            from_address, from_domain, return_path, return_path_domain, subject,
            fingerprint, message_size, arf_feedback_type, arf_source_ip,
            arf_original_mail_from, arf_arrival_date, arf_reported_domains, arf_incidents,
            arf_auth_failure, warnings, doc)
        SELECT s.id, s.received_at, s.mail_id, (d->>'part')::integer, d->>'mailbox',
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
               ARRAY(SELECT jsonb_array_elements_text(d->'warnings')), d
        FROM pg_temp.fbl_stage_reports s
        JOIN pg_temp.fbl_stage_keys k USING (mail_id, received_at)
        CROSS JOIN LATERAL (SELECT s.doc AS d, s.doc->'message' AS m,
                                   s.doc->'arf' AS a) x
        ON CONFLICT DO NOTHING
        RETURNING t.id, t.received_at, t.doc
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
        INSERT INTO fbl.vendor_outbox (report_id, received_at, vendor)
        SELECT r.id, r.received_at, v.vendor
        FROM r CROSS JOIN unnest(p_vendors) v(vendor)
        WHERE NOT EXISTS (SELECT 1 FROM pg_temp.fbl_stage_old_ids o
                          WHERE o.id = r.id AND o.received_at = r.received_at)
        ON CONFLICT DO NOTHING
    )
    SELECT count(*) INTO reports FROM r;

    INSERT INTO fbl.rejects (mail_id, received_at, mailbox, reason, detail, size)
    SELECT j.mail_id, j.received_at, j.mailbox, j.reason::fbl.reject_reason, j.detail, j.size
    FROM pg_temp.fbl_stage_rejects j
    JOIN pg_temp.fbl_stage_keys k USING (mail_id, received_at)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS rejects = ROW_COUNT;
END
$$;

-- fbl.write_staged - the sink's batch: store the staged mails that are new,
-- and the reports and rejects of those only (a mail stored before, by a crash
-- and redelivery or by another sink, adds nothing). Returns the numbers of
-- mails, reports and rejects written.
CREATE FUNCTION fbl.write_staged(p_vendors text[], OUT mails integer, OUT reports integer,
                                 OUT rejects integer)
LANGUAGE plpgsql AS $$
BEGIN
    WITH m AS (
        INSERT INTO fbl.mails (mail_id, received_at, mailbox, size, raw)
        SELECT mail_id, received_at, mailbox, size, raw FROM pg_temp.fbl_stage_mails
        ORDER BY received_at, mail_id -- one order for every sink: fewer deadlocks
        ON CONFLICT DO NOTHING
        RETURNING mail_id, received_at
    )
    INSERT INTO pg_temp.fbl_stage_keys SELECT mail_id, received_at FROM m;
    GET DIAGNOSTICS mails = ROW_COUNT;
    SELECT s.reports, s.rejects INTO reports, rejects FROM fbl.store_staged(p_vendors) s;
END
$$;

-- fbl.replace_staged - fbl reparse: for each mail in fbl_stage_keys whose
-- staged reports (ids and documents) or reject differ from the stored ones,
-- replace the stored ones. New report ids get outbox rows; pending outbox
-- rows of report ids that are gone are dropped (nothing left to send).
-- Returns the number of mails changed.
CREATE FUNCTION fbl.replace_staged(p_vendors text[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    changed integer;
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
    GET DIAGNOSTICS changed = ROW_COUNT;
    SELECT count(*) INTO changed FROM pg_temp.fbl_stage_keys;
    IF changed = 0 THEN
        RETURN 0;
    END IF;

    INSERT INTO pg_temp.fbl_stage_old_ids
    SELECT r.id, r.received_at FROM fbl.reports r
    JOIN pg_temp.fbl_stage_keys k USING (mail_id, received_at);

    DELETE FROM fbl.report_urls c USING pg_temp.fbl_stage_old_ids o
    WHERE c.report_id = o.id AND c.received_at = o.received_at;
    DELETE FROM fbl.report_hops c USING pg_temp.fbl_stage_old_ids o
    WHERE c.report_id = o.id AND c.received_at = o.received_at;
    DELETE FROM fbl.report_dkim c USING pg_temp.fbl_stage_old_ids o
    WHERE c.report_id = o.id AND c.received_at = o.received_at;
    DELETE FROM fbl.report_attachments c USING pg_temp.fbl_stage_old_ids o
    WHERE c.report_id = o.id AND c.received_at = o.received_at;
    DELETE FROM fbl.vendor_outbox b USING pg_temp.fbl_stage_old_ids o
    WHERE b.report_id = o.id AND b.received_at = o.received_at AND b.state = 'pending'
      AND NOT EXISTS (SELECT 1 FROM pg_temp.fbl_stage_reports s
                      WHERE s.id = o.id AND s.received_at = o.received_at);
    DELETE FROM fbl.reports r USING pg_temp.fbl_stage_old_ids o
    WHERE r.id = o.id AND r.received_at = o.received_at;
    DELETE FROM fbl.rejects j USING pg_temp.fbl_stage_keys k
    WHERE j.mail_id = k.mail_id AND j.received_at = k.received_at;

    PERFORM fbl.store_staged(p_vendors);
    RETURN changed;
END
$$;
