-- 006_hostile_reporters.sql - no address reaches an analyst, and forged
-- reports cannot spend a genuine reporter's hourly limit.
--
-- 1. fbl.mask_addresses(text): whatever is shaped like an address becomes
--    '[address]'. Every text column of every analyst function (and so of the
--    views over them) goes through it: a spam's subject often names its
--    recipient ("john.doe@example.net, your invoice"), and From domains, URL
--    hosts, mailbox and vendor names are written by strangers or could be.
--    The functions below are 005's, with the mask added where they return
--    text; the mask is applied to each output row, after the aggregation
--    (grouping is on the stored values), so a day's window costs one mask per
--    row shown, not one per report.
-- 2. The per-reporter limit counts reports whose reporter our MTA verified
--    (reporter.verified true: our authserv-id's Authentication-Results) apart
--    from the others (false, or unknown), so forged reports that claim a
--    feedback loop's address from a foreign relay use up only the unverified
--    quota of that address, never the loop's own. And an operator may exempt
--    known feedback loops ([limits] exempt_reporters: the session setting
--    fbl.exempt_reporters), except for reports our MTA found unverified.
--
-- Who reads what is unchanged (005): fbl_analyst reads the views and
-- functions only. fbl.vendor_outbox.last_error keeps the vendor's whole
-- answer (which may echo a report, recipients and all) for the operators:
-- the tables' owner and fbl_writer, who read the reports themselves anyway;
-- fbl_analyst has no right on the outbox, and fbl.vendor_feed shows no error.

-- ---- masking ---------------------------------------------------------------

-- fbl.mask_addresses - @t with each address in it replaced by '[address]':
-- a local part (atoms with dots, or a quoted string), an at sign written as
-- '@', %40 (URLs), =40 (quoted-printable), &#64; &#x40; &commat; (HTML) or a
-- fullwidth '＠', then a domain (labels of letters, digits, '-' and '_', any
-- script). Text without any of '@ % = & ＠' is returned as it is, without
-- running the expression. Over-masking (a "user@host" that is no address)
-- is the safe side; NULL stays NULL. IMMUTABLE plain SQL, neither STRICT nor
-- with a SET clause, so that it is inlined into its callers (either would
-- make each use a function call, several times the cost): its functions are
-- named with their schema instead of a fixed search_path.
CREATE FUNCTION fbl.mask_addresses(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN pg_catalog.strpos(t, '@') = 0 AND pg_catalog.strpos(t, '%') = 0
             AND pg_catalog.strpos(t, '=') = 0 AND pg_catalog.strpos(t, '&') = 0
             AND pg_catalog.strpos(t, '＠') = 0 THEN t
        ELSE pg_catalog.regexp_replace(t,
            '("[^"]*"|([^[:space:][:punct:]]|[-.!#$%''*+^_`{|}~])+)'
            '(@|%40|=40|&#0*64;|&#x0*40;|&commat;|＠)'
            '([^[:space:][:punct:]]|[-_])+(\.([^[:space:][:punct:]]|[-_])+)*',
            '[address]', 'gi')
    END
$$;

-- fbl.complaints_hourly (005), mailbox masked.
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
    WHERE r.received_at >= since AND r.received_at < until
    GROUP BY date_trunc('hour', r.received_at, 'UTC'), r.mailbox, r.feedback_type
    ORDER BY 1, 2, 3;
END
$$;

-- fbl.top_sender_domains (005), the three domains masked.
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
    WHERE r.received_at >= since AND r.received_at < until
    GROUP BY r.from_domain, d.d, r.return_path_domain
    ORDER BY 4 DESC, 1, 2, 3
    LIMIT lim;
END
$$;

-- fbl.top_url_hosts (005), host masked.
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
    GROUP BY u.host
    ORDER BY 2 DESC, 1
    LIMIT lim;
END
$$;

-- fbl.campaigns (005), fingerprint and sample subject masked: the subject is
-- the smallest stored one, masked after it was chosen.
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
    GROUP BY r.fingerprint
    ORDER BY 4 DESC, 1
    LIMIT lim;
END
$$;

-- fbl.reporters (005), domain and key masked (a reporter address without an
-- '@' would otherwise be shown whole as its "domain").
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
        WHERE r.received_at >= since AND r.received_at < until
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

-- fbl.false_positives (005), From domain masked.
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
          WHERE r.received_at >= since AND r.received_at < until
          GROUP BY 1, 2) x
    WHERE x.ns > 0
    ORDER BY x.ns DESC, x.from_domain, x.source_ip
    LIMIT lim;
END
$$;

-- fbl.vendor_feed (005), vendor masked. No error text is shown here: the
-- dead letters' last_error stays in the outbox, for the operators.
CREATE OR REPLACE FUNCTION fbl.vendor_feed(
    since timestamptz DEFAULT now() - interval '24 hours', until timestamptz DEFAULT 'infinity')
RETURNS TABLE (vendor text, pending bigint, due bigint, sent bigint, dead bigint, limited bigint,
               oldest_pending timestamptz, lag interval, last_sent_at timestamptz,
               pending_total bigint, dead_total bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan SET jit = off
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH w AS (
        SELECT o.vendor, count(*) FILTER (WHERE o.state = 'pending') AS pending,
               count(*) FILTER (WHERE o.state = 'pending' AND o.next_attempt_at <= now()) AS due,
               count(*) FILTER (WHERE o.state = 'sent') AS sent,
               count(*) FILTER (WHERE o.state = 'dead') AS dead,
               count(*) FILTER (WHERE o.state = 'limited') AS limited,
               max(o.sent_at) AS last_sent
        FROM fbl.vendor_outbox o
        WHERE o.received_at >= since AND o.received_at < until
        GROUP BY 1
    ), p AS (
        SELECT o.vendor, count(*) AS n, min(o.created_at) AS oldest
        FROM fbl.vendor_outbox o WHERE o.state = 'pending' GROUP BY 1
    ), d AS (
        SELECT o.vendor, count(*) AS n FROM fbl.vendor_outbox o WHERE o.state = 'dead' GROUP BY 1
    )
    SELECT fbl.mask_addresses(v.vendor), coalesce(w.pending, 0), coalesce(w.due, 0),
           coalesce(w.sent, 0), coalesce(w.dead, 0), coalesce(w.limited, 0), p.oldest,
           coalesce(greatest(now() - p.oldest, interval '0'), interval '0'), w.last_sent,
           coalesce(p.n, 0), coalesce(d.n, 0)
    FROM (SELECT vendor FROM w UNION SELECT vendor FROM p UNION SELECT vendor FROM d) v
    LEFT JOIN w USING (vendor) LEFT JOIN p USING (vendor) LEFT JOIN d USING (vendor)
    ORDER BY 1;
END
$$;

-- fbl.rejects_by_reason (005), mailbox masked.
CREATE OR REPLACE FUNCTION fbl.rejects_by_reason(
    since timestamptz DEFAULT now() - interval '24 hours', until timestamptz DEFAULT 'infinity')
RETURNS TABLE (reason fbl.reject_reason, mailbox text, rejects bigint, bytes bigint,
               last_seen timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan SET jit = off
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT j.reason, fbl.mask_addresses(j.mailbox), count(*), sum(j.size)::bigint,
           max(j.received_at)
    FROM fbl.rejects j
    WHERE j.received_at >= since AND j.received_at < until
    GROUP BY j.reason, j.mailbox
    ORDER BY 3 DESC, 1, 2;
END
$$;

-- ---- the per-reporter limit -------------------------------------------------

-- fbl.reporter_exempt - is a report from @address (with reporter.verified
-- @verified) exempt from the limit? The session's (or database's, or
-- role's) setting fbl.exempt_reporters lists patterns, separated by commas or
-- blanks, which the sink sets from [limits] exempt_reporters: a pattern with
-- an '@' is matched against the whole address, one without against its
-- domain; '*' matches any characters; case is ignored. "fbl@aol.com" is one
-- address, "aol.com" one domain, "*.yahoo.com" every subdomain of yahoo.com.
-- Never exempt: a report our MTA found unverified (verified false), since a
-- forger can claim any address; unknown (no authserv-id configured) is
-- exempt, as the operator has nothing better to go by.
--   ALTER DATABASE fbl SET fbl.exempt_reporters = 'fbl@aol.com, *.yahoo.com';
CREATE FUNCTION fbl.reporter_exempt(address text, verified boolean) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT address IS NOT NULL AND verified IS DISTINCT FROM false AND EXISTS (
        SELECT 1
        FROM regexp_split_to_table(coalesce(current_setting('fbl.exempt_reporters', true), ''),
                                   '[\s,]+') p
        WHERE p <> ''
          AND lower(CASE WHEN strpos(p, '@') > 0 THEN address
                         ELSE split_part(address, '@', -1) END)
              LIKE replace(replace(replace(replace(lower(p), '\', '\\'), '%', '\%'), '_', '\_'),
                           '*', '%'))
$$;

-- The limit's count reads one reporter's reports of one kind (verified or
-- not) in an hour: a flood of forgeries under a loop's address must not make
-- each of the loop's own reports step over them. This index replaces 003's
-- (reporter_address, received_at), which served only that count.
CREATE INDEX reports_reporter_verified_received_at_idx
    ON fbl.reports (reporter_address, (reporter_verified IS TRUE), received_at);
DROP INDEX IF EXISTS fbl.reports_reporter_address_received_at_idx;

-- fbl.store_staged (004), now with the limit counted per reporter and kind
-- (verified: reporter.verified true; the rest: false or unknown), and with
-- the reports of exempt reporters never limited. Everything else is 004's.
CREATE OR REPLACE FUNCTION fbl.store_staged(p_vendors text[], OUT reports integer,
                                            OUT rejects integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_limit integer := fbl.reporter_limit();
BEGIN
    WITH s AS (
        SELECT s.id, s.received_at, s.mail_id, s.doc, s.doc->'reporter'->>'address' AS reporter,
               (s.doc->'reporter'->>'verified')::boolean IS TRUE AS verified,
               fbl.reporter_exempt(s.doc->'reporter'->>'address',
                                   (s.doc->'reporter'->>'verified')::boolean) AS exempt
        FROM pg_temp.fbl_stage_reports s
        JOIN pg_temp.fbl_stage_keys k USING (mail_id, received_at)
    ), l AS (
        -- Reports of the reporter, of the same kind, in the hour up to this
        -- one: stored (at most v_limit of them are counted, so a flood costs
        -- no more than that), and earlier in this batch.
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
