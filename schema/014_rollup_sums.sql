-- 014_rollup_sums.sql - the analyst functions sum their counts as integers,
-- and fbl.reporters computes each reporter's key once.
--
-- Two costs found in the plans of bench/analyst on ten million reports
-- (bench/results/analyst-2026-12-07-014.md):
--
-- * sum() of a bigint keeps its running total as a numeric (a 128-bit state
--   allocated per group): in a hash aggregate over the (domain, IP) pairs of a
--   window, fbl.false_positives spent a third of its time there. A rollup row
--   counts the reports of one key in one hour, far below 2^31, so each is
--   summed as an integer, whose running total is a plain bigint; the totals
--   are bigints as before.
-- * fbl.mask_addresses() is plain SQL, inlined into its caller with its
--   argument written out at each of its six uses. fbl.reporters passed it the
--   reporter's key, SHA-256 and all, so every key was hashed six times. The
--   key is 16 hex digits, which hold none of the characters the mask looks
--   for (@ % = & U+FF20): it is no longer masked, and the answer is the same.
--
-- Same signatures, columns, rows and order as 012's; CREATE OR REPLACE only.

CREATE OR REPLACE FUNCTION fbl.summary(since timestamptz DEFAULT now() - interval '24 hours',
                                       until timestamptz DEFAULT 'infinity')
RETURNS TABLE (reports bigint, not_spam bigint, rate_limited bigint, reporters bigint,
               rejects bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    r_lo timestamptz;
    r_hi timestamptz;
BEGIN
    SELECT * INTO r_lo, r_hi FROM fbl.rollup_split(since, until);
    RETURN QUERY
    WITH c AS (
        SELECT x.reports AS n, CASE WHEN x.feedback_type = 'not-spam' THEN x.reports END AS ns,
               x.rate_limited AS lim
        FROM fbl.rollup_complaints x
        WHERE x.received_at >= r_lo AND x.received_at < r_hi
        UNION ALL
        SELECT 1, CASE WHEN r.feedback_type = 'not-spam' THEN 1 END,
               CASE WHEN r.rate_limited THEN 1 ELSE 0 END
        FROM fbl.reports r
        WHERE ((r.received_at >= since AND r.received_at < r_lo)
               OR (r.received_at >= r_hi AND r.received_at < until))
          AND r.duplicate_of IS NULL
    ), w AS (
        SELECT x.reporter_address AS who FROM fbl.rollup_reporters x
        WHERE x.received_at >= r_lo AND x.received_at < r_hi
        UNION
        SELECT r.reporter_address FROM fbl.reports r
        WHERE ((r.received_at >= since AND r.received_at < r_lo)
               OR (r.received_at >= r_hi AND r.received_at < until))
          AND r.duplicate_of IS NULL
    )
    SELECT coalesce(sum(c.n::integer), 0)::bigint, coalesce(sum(c.ns::integer), 0)::bigint,
           coalesce(sum(c.lim::integer), 0)::bigint, (SELECT count(w.who) FROM w),
           (SELECT count(*) FROM fbl.rejects j
            WHERE j.received_at >= since AND j.received_at < until)
    FROM c;
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
DECLARE
    r_lo timestamptz;
    r_hi timestamptz;
BEGIN
    SELECT * INTO r_lo, r_hi FROM fbl.rollup_split(since, until);
    RETURN QUERY
    SELECT y.hour, fbl.mask_addresses(y.mailbox), y.feedback_type, sum(y.n::integer)::bigint,
           sum(y.lim::integer)::bigint
    FROM (SELECT x.received_at AS hour, x.mailbox, x.feedback_type, x.reports AS n,
                 x.rate_limited AS lim
          FROM fbl.rollup_complaints x
          WHERE x.received_at >= r_lo AND x.received_at < r_hi
          UNION ALL
          SELECT date_trunc('hour', r.received_at, 'UTC'), r.mailbox, r.feedback_type, count(*),
                 count(*) FILTER (WHERE r.rate_limited)
          FROM fbl.reports r
          WHERE ((r.received_at >= since AND r.received_at < r_lo)
                 OR (r.received_at >= r_hi AND r.received_at < until))
            AND r.duplicate_of IS NULL
          GROUP BY 1, 2, 3) y
    GROUP BY y.hour, y.mailbox, y.feedback_type
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
DECLARE
    r_lo timestamptz;
    r_hi timestamptz;
BEGIN
    SELECT * INTO r_lo, r_hi FROM fbl.rollup_split(since, until);
    RETURN QUERY
    WITH parts AS (
        SELECT x.source_ip AS ip, x.reporter_address AS who, x.reports AS n,
               x.first_seen AS lo, x.last_seen AS hi
        FROM fbl.rollup_source_ips x
        WHERE x.received_at >= r_lo AND x.received_at < r_hi
        UNION ALL
        SELECT r.source_ip, r.reporter_address, count(*), min(r.received_at),
               max(r.received_at)
        FROM fbl.reports r
        WHERE ((r.received_at >= since AND r.received_at < r_lo)
               OR (r.received_at >= r_hi AND r.received_at < until))
          AND r.source_ip IS NOT NULL AND r.duplicate_of IS NULL
        GROUP BY 1, 2
    ), ips AS (
        SELECT parts.ip, sum(parts.n::integer)::bigint AS n, count(DISTINCT parts.who) AS who_n,
               min(parts.lo) AS lo, max(parts.hi) AS hi
        FROM parts
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
DECLARE
    r_lo timestamptz;
    r_hi timestamptz;
BEGIN
    SELECT * INTO r_lo, r_hi FROM fbl.rollup_split(since, until);
    RETURN QUERY
    SELECT fbl.mask_addresses(y.fd), fbl.mask_addresses(y.dd), fbl.mask_addresses(y.rpd),
           sum(y.n::integer)::bigint, count(DISTINCT y.who)
    FROM (SELECT x.from_domain AS fd, x.dkim_domain AS dd, x.return_path_domain AS rpd,
                 x.reporter_address AS who, x.reports AS n
          FROM fbl.rollup_senders x
          WHERE x.received_at >= r_lo AND x.received_at < r_hi
          UNION ALL
          SELECT r.from_domain, d.d, r.return_path_domain, r.reporter_address, count(*)
          FROM fbl.reports r
          LEFT JOIN fbl.report_dkim d
                 ON d.received_at = r.received_at AND d.report_id >= r.id AND d.report_id <= r.id
                AND d.position = 0
          WHERE ((r.received_at >= since AND r.received_at < r_lo)
                 OR (r.received_at >= r_hi AND r.received_at < until))
            AND r.duplicate_of IS NULL
          GROUP BY 1, 2, 3, 4) y
    GROUP BY y.fd, y.dd, y.rpd
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
DECLARE
    r_lo timestamptz;
    r_hi timestamptz;
BEGIN
    SELECT * INTO r_lo, r_hi FROM fbl.rollup_split(since, until);
    RETURN QUERY
    SELECT fbl.mask_addresses(y.host), sum(y.n::integer)::bigint,
           sum(y.urls::integer)::bigint, min(y.lo), max(y.hi)
    FROM (SELECT x.host, x.reports AS n, x.urls, x.first_seen AS lo, x.last_seen AS hi
          FROM fbl.rollup_url_hosts x
          WHERE x.received_at >= r_lo AND x.received_at < r_hi
          UNION ALL
          SELECT u.host, count(DISTINCT u.report_id), count(*), min(u.received_at),
                 max(u.received_at)
          FROM fbl.report_urls u
          WHERE ((u.received_at >= since AND u.received_at < r_lo)
                 OR (u.received_at >= r_hi AND u.received_at < until))
            AND u.host IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM fbl.reports c
                            WHERE c.duplicate_of IS NOT NULL AND c.received_at = u.received_at
                              AND c.id = u.report_id AND c.received_at >= since
                              AND c.received_at < until)
          GROUP BY 1) y
    GROUP BY y.host
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
DECLARE
    r_lo timestamptz;
    r_hi timestamptz;
BEGIN
    SELECT * INTO r_lo, r_hi FROM fbl.rollup_split(since, until);
    RETURN QUERY
    SELECT fbl.mask_addresses(y.fp), min(y.lo), max(y.hi), sum(y.n::integer)::bigint,
           count(DISTINCT y.who), fbl.mask_addresses(min(y.subject))
    FROM (SELECT x.fingerprint AS fp, x.reporter_address AS who, x.first_seen AS lo,
                 x.last_seen AS hi, x.reports AS n, x.sample_subject AS subject
          FROM fbl.rollup_campaigns x
          WHERE x.received_at >= r_lo AND x.received_at < r_hi
          UNION ALL
          SELECT r.fingerprint, r.reporter_address, min(r.received_at), max(r.received_at),
                 count(*), min(r.subject)
          FROM fbl.reports r
          WHERE ((r.received_at >= since AND r.received_at < r_lo)
                 OR (r.received_at >= r_hi AND r.received_at < until))
            AND r.fingerprint IS NOT NULL AND r.duplicate_of IS NULL
          GROUP BY 1, 2) y
    GROUP BY y.fp
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
DECLARE
    r_lo timestamptz;
    r_hi timestamptz;
BEGIN
    SELECT * INTO r_lo, r_hi FROM fbl.rollup_split(since, until);
    RETURN QUERY
    WITH per AS (
        SELECT y.who, sum(y.n::integer)::bigint AS n,
               sum(y.limited::integer)::bigint AS limited, sum(y.ok::integer)::bigint AS ok
        FROM (SELECT x.reporter_address AS who, x.reports AS n, x.rate_limited AS limited,
                     x.verified AS ok
              FROM fbl.rollup_reporters x
              WHERE x.received_at >= r_lo AND x.received_at < r_hi
              UNION ALL
              SELECT r.reporter_address, count(*), count(*) FILTER (WHERE r.rate_limited),
                     count(*) FILTER (WHERE r.reporter_verified)
              FROM fbl.reports r
              WHERE ((r.received_at >= since AND r.received_at < r_lo)
                     OR (r.received_at >= r_hi AND r.received_at < until))
                AND r.duplicate_of IS NULL
              GROUP BY 1) y
        GROUP BY 1
    )
    SELECT fbl.mask_addresses(nullif(CASE WHEN strpos(per.who, '@') > 0
                                          THEN split_part(per.who, '@', -1) END, '')),
           left(encode(sha256(k.key || convert_to(per.who, 'UTF8')), 'hex'), 16),
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
DECLARE
    r_lo timestamptz;
    r_hi timestamptz;
BEGIN
    SELECT * INTO r_lo, r_hi FROM fbl.rollup_split(since, until);
    RETURN QUERY
    SELECT fbl.mask_addresses(z.from_domain), z.source_ip, z.ns, z.n,
           round(z.ns::numeric / z.n, 3)
    FROM (SELECT y.from_domain, y.source_ip, sum(y.ns::integer)::bigint AS ns,
                 sum(y.n::integer)::bigint AS n
          FROM (SELECT x.from_domain, x.source_ip, x.not_spam AS ns, x.reports AS n
                FROM fbl.rollup_domain_ips x
                WHERE x.received_at >= r_lo AND x.received_at < r_hi
                UNION ALL
                SELECT r.from_domain, r.source_ip,
                       count(*) FILTER (WHERE r.feedback_type = 'not-spam'), count(*)
                FROM fbl.reports r
                WHERE ((r.received_at >= since AND r.received_at < r_lo)
                       OR (r.received_at >= r_hi AND r.received_at < until))
                  AND r.duplicate_of IS NULL
                GROUP BY 1, 2) y
          GROUP BY 1, 2) z
    WHERE z.ns > 0
    ORDER BY z.ns DESC, z.from_domain, z.source_ip
    LIMIT lim;
END
$$;
