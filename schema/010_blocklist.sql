-- 010_blocklist.sql - what the blocklists are computed from: per listed
-- thing (a source IP, or a domain), who complained about it in a window.
--
-- The listing policy itself (weights, threshold, delisting, allowlist, our
-- trusted networks, the big providers' relays) is C, in one pure function
-- (fbl/blocklist.h, fbl_blocklist_decide()), so that `fbl export`, the sink's
-- re-export and `fbl blocklist explain` decide alike and the table tests need
-- no database. These functions only count, and give the reports behind a
-- count:
--
--   fbl.blocklist_counts(kind, since, until, min_complainers, entry)
--       one row per entry: distinct complainers (reporters of abuse, fraud or
--       virus reports), how many of them our MTA verified at least once, the
--       distinct reporters of not-spam reports about it, and the first and
--       last complaint (delivery time).
--   fbl.blocklist_reports(kind, entry, since, until)
--       the reports about one entry, reporters pseudonymised as fbl.reporters
--       shows them (005): domain and keyed hash, never an address.
--
-- kind 'ip': the report's stored source IP (fbl.reports.source_ip).
-- kind 'domain': the reported message's From domain (fbl.reports.from_domain)
-- and the host names of its URLs (fbl.report_urls.host), as one list: a
-- reporter who complained about a mail from shop.example and linking to
-- pay.example counts for both. Only names of lower-case letters, digits, '-'
-- and '_' in two labels or more are taken (address literals, and anything a
-- blocklist file could not hold as one word, are left out).
-- XXX an internationalised name stored in Unicode is left out too; its
-- A-label (xn--) form is taken.
--
-- A reporter is fbl.reports.reporter_address in lower case; reports without
-- one count for nothing (they cannot be told apart). A copy marked
-- duplicate_of (007) is the same reporter again and adds nothing to a count
-- of distinct reporters.
--
-- Both functions are SECURITY DEFINER, fixed search_path, custom plans (see
-- 005), readable by fbl_analyst (nothing personal leaves them: IPs, host
-- names of the shape above, counts, pseudonyms) and fbl_writer (the sink
-- re-exports).

-- fbl.blocklist_entries - (entry, report id, received_at, reporter, feedback
-- type, verified, how the report names the entry) of the window: the rows
-- both functions below count or show. Not granted to anyone: the reporter is
-- an address.
CREATE FUNCTION fbl.blocklist_entries(p_kind text, p_since timestamptz, p_until timestamptz,
                                      p_entry text DEFAULT NULL)
RETURNS TABLE (entry text, report_id text, received_at timestamptz, reporter text,
               feedback_type fbl.feedback_type, verified boolean, found_in text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan SET jit = off
AS $$
#variable_conflict use_column
BEGIN
    IF p_kind = 'ip' THEN
        RETURN QUERY
        SELECT host(r.source_ip), r.id, r.received_at, lower(r.reporter_address),
               r.feedback_type, r.reporter_verified, 'source_ip'::text
        FROM fbl.reports r
        WHERE r.received_at >= p_since AND r.received_at < p_until
          AND r.source_ip IS NOT NULL
          AND (p_entry IS NULL OR r.source_ip = p_entry::inet);
    ELSIF p_kind = 'domain' THEN
        RETURN QUERY
        SELECT r.from_domain, r.id, r.received_at, lower(r.reporter_address), r.feedback_type,
               r.reporter_verified, 'from_domain'::text
        FROM fbl.reports r
        WHERE r.received_at >= p_since AND r.received_at < p_until
          AND r.from_domain ~ '^[a-z0-9_-]+(\.[a-z0-9_-]+)+$'
          AND (p_entry IS NULL OR r.from_domain = p_entry)
        UNION ALL
        -- A URL's report shares its received_at: the join hashes on it (005's
        -- note on top_sender_domains). One row per report and host.
        SELECT DISTINCT u.host, r.id, r.received_at, lower(r.reporter_address),
               r.feedback_type, r.reporter_verified, 'url_host'::text
        FROM fbl.report_urls u
        JOIN fbl.reports r
          ON r.received_at = u.received_at AND r.id >= u.report_id AND r.id <= u.report_id
         AND r.received_at >= p_since AND r.received_at < p_until
        WHERE u.received_at >= p_since AND u.received_at < p_until
          AND u.host ~ '^[a-z0-9_-]+(\.[a-z0-9_-]+)+$' AND u.host !~ '^[0-9.]+$'
          AND (p_entry IS NULL OR u.host = p_entry);
    ELSE
        RAISE EXCEPTION 'fbl.blocklist: kind must be ip or domain, not %', p_kind
            USING ERRCODE = '22023';
    END IF;
END
$$;
REVOKE EXECUTE ON FUNCTION fbl.blocklist_entries(text, timestamptz, timestamptz, text)
    FROM PUBLIC;

-- fbl.blocklist_counts - per entry of @p_kind in [@p_since, @p_until): the
-- counts the policy weighs. Only entries with at least @p_min_complainers
-- complainers (the caller's lower bound: fewer could never be listed; 0
-- also gives entries with only not-spam reports).
CREATE FUNCTION fbl.blocklist_counts(p_kind text, p_since timestamptz,
                                     p_until timestamptz DEFAULT 'infinity',
                                     p_min_complainers integer DEFAULT 1,
                                     p_entry text DEFAULT NULL)
RETURNS TABLE (entry text, complainers bigint, verified bigint, not_spam bigint,
               first_complaint timestamptz, last_complaint timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan SET jit = off
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH e AS (
        SELECT * FROM fbl.blocklist_entries(p_kind, p_since, p_until, p_entry)
        WHERE reporter IS NOT NULL
    ), per AS (
        -- one row per entry and reporter: did they complain, verified, say not-spam?
        SELECT e.entry AS ent, e.reporter AS who,
               bool_or(e.feedback_type IN ('abuse', 'fraud', 'virus')) AS complained,
               bool_or(e.feedback_type IN ('abuse', 'fraud', 'virus')
                       AND e.verified IS TRUE) AS ok,
               bool_or(e.feedback_type = 'not-spam') AS ns,
               min(e.received_at) FILTER (WHERE e.feedback_type IN ('abuse', 'fraud', 'virus'))
                   AS lo,
               max(e.received_at) FILTER (WHERE e.feedback_type IN ('abuse', 'fraud', 'virus'))
                   AS hi
        FROM e
        GROUP BY 1, 2
    )
    SELECT per.ent, count(*) FILTER (WHERE per.complained),
           count(*) FILTER (WHERE per.ok), count(*) FILTER (WHERE per.ns), min(per.lo),
           max(per.hi)
    FROM per
    GROUP BY per.ent
    HAVING count(*) FILTER (WHERE per.complained) >= p_min_complainers
    ORDER BY 1;
END
$$;

-- fbl.blocklist_reports - the reports about @p_entry, newest first, with the
-- reporter pseudonymised (domain and key as fbl.reporters).
CREATE FUNCTION fbl.blocklist_reports(p_kind text, p_entry text, p_since timestamptz,
                                      p_until timestamptz DEFAULT 'infinity')
RETURNS TABLE (received_at timestamptz, feedback_type fbl.feedback_type, reporter_domain text,
               reporter_key text, verified boolean, found_in text, report_id text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan SET jit = off
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT e.received_at, e.feedback_type,
           fbl.mask_addresses(nullif(split_part(e.reporter, '@', -1), '')),
           CASE WHEN e.reporter IS NOT NULL THEN
               left(encode(sha256(k.key || convert_to(e.reporter, 'UTF8')), 'hex'), 16) END,
           e.verified, e.found_in, e.report_id
    FROM fbl.blocklist_entries(p_kind, p_since, p_until, p_entry) e
    CROSS JOIN fbl.pseudonym_key k
    ORDER BY e.received_at DESC, e.report_id, e.found_in;
END
$$;

REVOKE EXECUTE ON FUNCTION
    fbl.blocklist_counts(text, timestamptz, timestamptz, integer, text),
    fbl.blocklist_reports(text, text, timestamptz, timestamptz)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    fbl.blocklist_counts(text, timestamptz, timestamptz, integer, text),
    fbl.blocklist_reports(text, text, timestamptz, timestamptz)
    TO fbl_analyst, fbl_writer;
