-- 012_rollups.sql - hourly rollups: the analyst functions read counts per
-- hour instead of every report of their window.
--
-- One table per thing analysts rank, partitioned by month like the reports
-- (so fbl prune drops a month of rollups with its reports): one row per UTC
-- hour and key, counting originals only (duplicate_of IS NULL, 007). The
-- column received_at holds the hour (received_at truncated to it, UTC), the
-- name every partition helper of 001 and 005 works on.
--
--   rollup_complaints   hour x mailbox x feedback type: reports, rate_limited
--   rollup_reporters    hour x reporter address: reports, rate_limited, verified
--   rollup_source_ips   hour x source IP (and its /24 or /48 network) x reporter:
--                       reports, first and last delivery
--   rollup_senders      hour x From domain x first DKIM d= x Return-Path domain x
--                       reporter: reports
--   rollup_campaigns    hour x fingerprint x reporter: reports, first and last
--                       delivery, the smallest subject
--   rollup_domain_ips   hour x From domain x source IP: reports, not-spam reports
--   rollup_url_hosts    hour x URL host: reports that link to it, URLs, first
--                       and last delivery
--
-- Distinct reporters per key are counted exactly: the three rollups that
-- show them (source IPs, senders, campaigns) keep a row per hour, key and
-- reporter address. HyperLogLog sketches (the extension hll) were measured
-- against them: smaller, and faster at ten times today's rate, but at ten
-- million reports slower to read (up to 40 %), a third dearer to write, an
-- estimate beyond 160 reporters, and an extension only a superuser installs
-- (schema/README.md, "Hourly rollups").
--
-- Never behind, never doubled: triggers keep the rollups in the writer's own
-- transaction. A statement that inserts reports (the store's, fbl reparse's)
-- adds its originals' counts; one that inserts URLs adds theirs; one that
-- deletes or updates reports or URLs has the hours it touched recomputed from
-- the reports. So a redelivered mail (whose rows the store does not insert)
-- adds nothing, and fbl reparse and duplicate re-checks stay exact. A writer
-- takes a shared advisory lock on each hour it adds to, a recompute an
-- exclusive one, in hour order (so they cannot deadlock on them): a recompute
-- never misses a concurrent writer's uncommitted rows. The senders' DKIM
-- domain is the first signature's d= in the report's document, which is what
-- fbl.report_dkim's position 0 holds (the store derives both from it).
--
-- History: the reports stored before this migration are rolled up a day at a
-- time, newest first, by fbl.rollup_backfill() (fbl migrate calls it until it
-- is done), each day in a short transaction of its own: ingestion goes on.
-- fbl.rollup_state.complete_since is where the rollups begin to be whole;
-- the analyst functions read the reports themselves before it, so their
-- answers are the same before, during and after the backfill.

-- No writer stores while the triggers are made: what any writer stores from
-- the commit on is rolled up, what was stored before is the backfill's.
LOCK TABLE fbl.reports, fbl.report_urls IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE fbl.rollup_complaints (
    received_at timestamptz NOT NULL, -- the UTC hour
    mailbox text,
    feedback_type fbl.feedback_type NOT NULL,
    reports bigint NOT NULL,
    rate_limited bigint NOT NULL,
    UNIQUE NULLS NOT DISTINCT (received_at, mailbox, feedback_type)
) PARTITION BY RANGE (received_at);

CREATE TABLE fbl.rollup_reporters (
    received_at timestamptz NOT NULL,
    reporter_address text,
    reports bigint NOT NULL,
    rate_limited bigint NOT NULL,
    verified bigint NOT NULL,
    UNIQUE NULLS NOT DISTINCT (received_at, reporter_address)
) PARTITION BY RANGE (received_at);

CREATE TABLE fbl.rollup_source_ips (
    received_at timestamptz NOT NULL,
    source_ip inet NOT NULL,
    reporter_address text,
    network cidr NOT NULL, -- IPv4 /24, IPv6 /48
    reports bigint NOT NULL,
    first_seen timestamptz NOT NULL,
    last_seen timestamptz NOT NULL,
    UNIQUE NULLS NOT DISTINCT (received_at, source_ip, reporter_address)
) PARTITION BY RANGE (received_at);

CREATE TABLE fbl.rollup_senders (
    received_at timestamptz NOT NULL,
    from_domain text,
    dkim_domain text,
    return_path_domain text,
    reporter_address text,
    reports bigint NOT NULL,
    UNIQUE NULLS NOT DISTINCT (received_at, from_domain, dkim_domain, return_path_domain,
                               reporter_address)
) PARTITION BY RANGE (received_at);

CREATE TABLE fbl.rollup_campaigns (
    received_at timestamptz NOT NULL,
    fingerprint text NOT NULL,
    reporter_address text,
    reports bigint NOT NULL,
    first_seen timestamptz NOT NULL,
    last_seen timestamptz NOT NULL,
    sample_subject text,
    UNIQUE NULLS NOT DISTINCT (received_at, fingerprint, reporter_address)
) PARTITION BY RANGE (received_at);

CREATE TABLE fbl.rollup_domain_ips (
    received_at timestamptz NOT NULL,
    from_domain text,
    source_ip inet,
    reports bigint NOT NULL,
    not_spam bigint NOT NULL,
    UNIQUE NULLS NOT DISTINCT (received_at, from_domain, source_ip)
) PARTITION BY RANGE (received_at);

CREATE TABLE fbl.rollup_url_hosts (
    received_at timestamptz NOT NULL,
    host text NOT NULL,
    reports bigint NOT NULL,
    urls bigint NOT NULL,
    first_seen timestamptz NOT NULL,
    last_seen timestamptz NOT NULL,
    PRIMARY KEY (received_at, host)
) PARTITION BY RANGE (received_at);

CREATE TABLE fbl.rollup_complaints_default PARTITION OF fbl.rollup_complaints DEFAULT;
CREATE TABLE fbl.rollup_reporters_default PARTITION OF fbl.rollup_reporters DEFAULT;
CREATE TABLE fbl.rollup_source_ips_default PARTITION OF fbl.rollup_source_ips DEFAULT;
CREATE TABLE fbl.rollup_senders_default PARTITION OF fbl.rollup_senders DEFAULT;
CREATE TABLE fbl.rollup_campaigns_default PARTITION OF fbl.rollup_campaigns DEFAULT;
CREATE TABLE fbl.rollup_domain_ips_default PARTITION OF fbl.rollup_domain_ips DEFAULT;
CREATE TABLE fbl.rollup_url_hosts_default PARTITION OF fbl.rollup_url_hosts DEFAULT;

-- The months the reports have, for the new tables too.
SELECT fbl.create_month_partitions(p.lo) FROM fbl.month_partitions() p WHERE p.parent = 'reports';

-- Where the rollups are whole: every hour from complete_since on. The hours
-- before it are the backfill's to do (or have no report at all).
CREATE TABLE fbl.rollup_state (
    complete_since timestamptz NOT NULL
);
INSERT INTO fbl.rollup_state (complete_since)
SELECT coalesce(date_trunc('hour', max(received_at), 'UTC') + interval '1 hour', '-infinity')
FROM fbl.reports;

-- fbl.rollup_lock_hours - the transaction's advisory lock on each hour of
-- @p_hours, shared for a writer that adds counts, exclusive for a recompute;
-- in hour order. Two-integer locks apart from 007's duplicate keys.
CREATE FUNCTION fbl.rollup_lock_hours(p_hours timestamptz[], p_exclusive boolean) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    h integer;
BEGIN
    FOR h IN
        SELECT DISTINCT (extract(epoch FROM x) / 3600)::integer FROM unnest(p_hours) x ORDER BY 1
    LOOP
        IF p_exclusive THEN
            PERFORM pg_advisory_xact_lock(hashtext('fbl.rollup'), h);
        ELSE
            PERFORM pg_advisory_xact_lock_shared(hashtext('fbl.rollup'), h);
        END IF;
    END LOOP;
END
$$;

-- What a rollup reads of a report, and of a URL: the trigger hands over the
-- rows it inserted this way, a recompute the rows of some hours. The first
-- DKIM d= comes from the report's document (as fbl.report_dkim's position 0
-- does), so the rollups never depend on the order its rows are written in.
CREATE TYPE fbl.rollup_report AS (
    received_at timestamptz, mailbox text, feedback_type fbl.feedback_type,
    reporter_address text, reporter_verified boolean, rate_limited boolean, source_ip inet,
    from_domain text, dkim_domain text, return_path_domain text, fingerprint text, subject text);
CREATE TYPE fbl.rollup_url AS (report_id text, received_at timestamptz, host text);

-- fbl.rollup_report_of - a stored report as a rollup reads it.
CREATE FUNCTION fbl.rollup_report_of(r fbl.reports) RETURNS fbl.rollup_report
LANGUAGE sql IMMUTABLE AS $$
    SELECT ROW(r.received_at, r.mailbox, r.feedback_type, r.reporter_address,
               r.reporter_verified, r.rate_limited, r.source_ip, r.from_domain,
               r.doc->'message'->'dkim'->0->>'d', r.return_path_domain, r.fingerprint,
               r.subject)::fbl.rollup_report
$$;

-- fbl.rollup_add - add to the rollups the counts of the originals @p_reports:
-- the one definition of what each rollup counts, for the insert trigger and
-- for recomputes alike. Static SQL, one statement over the rows handed in (no
-- lookup of the stored reports: a burst of mails delivered in the same second
-- shares one received_at, and a lookup by it would read them all).
CREATE FUNCTION fbl.rollup_add(p_reports fbl.rollup_report[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    WITH s AS MATERIALIZED (
        SELECT x.*, date_trunc('hour', x.received_at, 'UTC') AS hour
        FROM unnest(p_reports) x
    ), complaints AS (
        INSERT INTO fbl.rollup_complaints AS t (received_at, mailbox, feedback_type, reports,
                                                rate_limited)
        SELECT s.hour, s.mailbox, s.feedback_type, count(*), count(*) FILTER (WHERE s.rate_limited)
        FROM s GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (received_at, mailbox, feedback_type) DO UPDATE
        SET reports = t.reports + excluded.reports,
            rate_limited = t.rate_limited + excluded.rate_limited
    ), reporters AS (
        INSERT INTO fbl.rollup_reporters AS t (received_at, reporter_address, reports,
                                               rate_limited, verified)
        SELECT s.hour, s.reporter_address, count(*), count(*) FILTER (WHERE s.rate_limited),
               count(*) FILTER (WHERE s.reporter_verified)
        FROM s GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (received_at, reporter_address) DO UPDATE
        SET reports = t.reports + excluded.reports,
            rate_limited = t.rate_limited + excluded.rate_limited,
            verified = t.verified + excluded.verified
    ), ips AS (
        INSERT INTO fbl.rollup_source_ips AS t (received_at, source_ip, reporter_address,
                                                network, reports, first_seen, last_seen)
        SELECT s.hour, s.source_ip, s.reporter_address,
               network(set_masklen(s.source_ip, CASE family(s.source_ip) WHEN 4 THEN 24
                                                ELSE 48 END)),
               count(*), min(s.received_at), max(s.received_at)
        FROM s WHERE s.source_ip IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (received_at, source_ip, reporter_address) DO UPDATE
        SET reports = t.reports + excluded.reports,
            first_seen = least(t.first_seen, excluded.first_seen),
            last_seen = greatest(t.last_seen, excluded.last_seen)
    ), senders AS (
        INSERT INTO fbl.rollup_senders AS t (received_at, from_domain, dkim_domain,
                                             return_path_domain, reporter_address, reports)
        SELECT s.hour, s.from_domain, s.dkim_domain, s.return_path_domain, s.reporter_address,
               count(*)
        FROM s GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (received_at, from_domain, dkim_domain, return_path_domain,
                     reporter_address) DO UPDATE
        SET reports = t.reports + excluded.reports
    ), campaigns AS (
        INSERT INTO fbl.rollup_campaigns AS t (received_at, fingerprint, reporter_address,
                                               reports, first_seen, last_seen, sample_subject)
        SELECT s.hour, s.fingerprint, s.reporter_address, count(*), min(s.received_at),
               max(s.received_at), min(s.subject)
        FROM s WHERE s.fingerprint IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (received_at, fingerprint, reporter_address) DO UPDATE
        SET reports = t.reports + excluded.reports,
            first_seen = least(t.first_seen, excluded.first_seen),
            last_seen = greatest(t.last_seen, excluded.last_seen),
            sample_subject = least(t.sample_subject, excluded.sample_subject)
    )
    INSERT INTO fbl.rollup_domain_ips AS t (received_at, from_domain, source_ip, reports,
                                            not_spam)
    SELECT s.hour, s.from_domain, s.source_ip, count(*),
           count(*) FILTER (WHERE s.feedback_type = 'not-spam')
    FROM s GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (received_at, from_domain, source_ip) DO UPDATE
    SET reports = t.reports + excluded.reports, not_spam = t.not_spam + excluded.not_spam;
END
$$;

-- fbl.rollup_add_urls - the same for URLs, but for those of copies: the
-- copies of their window are few, found in 007's small index of duplicates.
CREATE FUNCTION fbl.rollup_add_urls(p_urls fbl.rollup_url[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    lo timestamptz;
    hi timestamptz;
BEGIN
    SELECT min(x.received_at), max(x.received_at) INTO lo, hi FROM unnest(p_urls) x;
    INSERT INTO fbl.rollup_url_hosts AS t (received_at, host, reports, urls, first_seen,
                                           last_seen)
    SELECT date_trunc('hour', u.received_at, 'UTC'), u.host, count(DISTINCT u.report_id),
           count(*), min(u.received_at), max(u.received_at)
    FROM unnest(p_urls) u
    WHERE u.host IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM fbl.reports c
                      WHERE c.duplicate_of IS NOT NULL AND c.received_at >= lo
                        AND c.received_at <= hi AND c.received_at = u.received_at
                        AND c.id = u.report_id)
    GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (received_at, host) DO UPDATE
    SET reports = t.reports + excluded.reports, urls = t.urls + excluded.urls,
        first_seen = least(t.first_seen, excluded.first_seen),
        last_seen = greatest(t.last_seen, excluded.last_seen);
END
$$;

-- fbl.rollup_recompute - the rollups of the hours @p_hours made again from
-- the stored reports (after a delete or an update; and the backfill).
-- @p_reports false: the URL hosts' only.
CREATE FUNCTION fbl.rollup_recompute(p_hours timestamptz[], p_reports boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    lo timestamptz;
    hi timestamptz;
BEGIN
    SELECT min(h), max(h) + interval '1 hour' INTO lo, hi FROM unnest(p_hours) h;
    IF lo IS NULL THEN
        RETURN;
    END IF;
    PERFORM fbl.rollup_lock_hours(p_hours, true);
    IF p_reports THEN
        DELETE FROM fbl.rollup_complaints WHERE received_at = ANY (p_hours);
        DELETE FROM fbl.rollup_reporters WHERE received_at = ANY (p_hours);
        DELETE FROM fbl.rollup_source_ips WHERE received_at = ANY (p_hours);
        DELETE FROM fbl.rollup_senders WHERE received_at = ANY (p_hours);
        DELETE FROM fbl.rollup_campaigns WHERE received_at = ANY (p_hours);
        DELETE FROM fbl.rollup_domain_ips WHERE received_at = ANY (p_hours);
        PERFORM fbl.rollup_add(ARRAY(
            SELECT fbl.rollup_report_of(r) FROM fbl.reports r
            WHERE r.received_at >= lo AND r.received_at < hi AND r.duplicate_of IS NULL
              AND date_trunc('hour', r.received_at, 'UTC') = ANY (p_hours)));
    END IF;
    DELETE FROM fbl.rollup_url_hosts WHERE received_at = ANY (p_hours);
    PERFORM fbl.rollup_add_urls(ARRAY(
        SELECT ROW(u.report_id, u.received_at, u.host)::fbl.rollup_url FROM fbl.report_urls u
        WHERE u.received_at >= lo AND u.received_at < hi
          AND date_trunc('hour', u.received_at, 'UTC') = ANY (p_hours)));
END
$$;

-- ---- the triggers ------------------------------------------------------------

CREATE FUNCTION fbl.rollup_reports_added() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    rows fbl.rollup_report[];
BEGIN
    rows := ARRAY(SELECT fbl.rollup_report_of(a) FROM added a WHERE a.duplicate_of IS NULL);
    IF cardinality(rows) > 0 THEN
        PERFORM fbl.rollup_lock_hours(ARRAY(SELECT date_trunc('hour', x.received_at, 'UTC')
                                            FROM unnest(rows) x), false);
        PERFORM fbl.rollup_add(rows);
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION fbl.rollup_urls_added() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    rows fbl.rollup_url[];
BEGIN
    rows := ARRAY(SELECT ROW(a.report_id, a.received_at, a.host)::fbl.rollup_url FROM added a
                  WHERE a.host IS NOT NULL);
    IF cardinality(rows) > 0 THEN
        PERFORM fbl.rollup_lock_hours(ARRAY(SELECT date_trunc('hour', x.received_at, 'UTC')
                                            FROM unnest(rows) x), false);
        PERFORM fbl.rollup_add_urls(rows);
    END IF;
    RETURN NULL;
END
$$;

-- Deleted or updated reports: their hours again (an update only when it
-- changed what a rollup counts).
CREATE FUNCTION fbl.rollup_reports_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM fbl.rollup_recompute(ARRAY(
            SELECT DISTINCT date_trunc('hour', g.received_at, 'UTC') FROM gone g
            WHERE g.duplicate_of IS NULL));
    ELSE
        PERFORM fbl.rollup_recompute(ARRAY(
            SELECT DISTINCT date_trunc('hour', x.received_at, 'UTC')
            FROM gone g JOIN added a ON a.id = g.id AND a.received_at = g.received_at
            CROSS JOIN LATERAL (VALUES (g.received_at), (a.received_at)) x(received_at)
            WHERE (g.duplicate_of IS NULL, g.mailbox, g.feedback_type, g.reporter_address,
                   g.reporter_verified, g.rate_limited, g.source_ip, g.from_domain,
                   g.return_path_domain, g.fingerprint, g.subject)
                  IS DISTINCT FROM
                  (a.duplicate_of IS NULL, a.mailbox, a.feedback_type, a.reporter_address,
                   a.reporter_verified, a.rate_limited, a.source_ip, a.from_domain,
                   a.return_path_domain, a.fingerprint, a.subject)));
    END IF;
    RETURN NULL;
END
$$;

-- Deleted or updated URLs: the URL hosts' hours again.
CREATE FUNCTION fbl.rollup_urls_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM fbl.rollup_recompute(ARRAY(
            SELECT DISTINCT date_trunc('hour', g.received_at, 'UTC') FROM gone g), false);
    ELSE
        PERFORM fbl.rollup_recompute(ARRAY(
            SELECT date_trunc('hour', g.received_at, 'UTC') FROM gone g
            UNION
            SELECT date_trunc('hour', a.received_at, 'UTC') FROM added a), false);
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION fbl.rollup_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'reports' THEN
        TRUNCATE fbl.rollup_complaints, fbl.rollup_reporters, fbl.rollup_source_ips,
                 fbl.rollup_senders, fbl.rollup_campaigns, fbl.rollup_domain_ips,
                 fbl.rollup_url_hosts;
    ELSE
        TRUNCATE fbl.rollup_url_hosts;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER rollup_added AFTER INSERT ON fbl.reports
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION fbl.rollup_reports_added();
CREATE TRIGGER rollup_deleted AFTER DELETE ON fbl.reports
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION fbl.rollup_reports_changed();
CREATE TRIGGER rollup_updated AFTER UPDATE ON fbl.reports
    REFERENCING OLD TABLE AS gone NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION fbl.rollup_reports_changed();
CREATE TRIGGER rollup_truncated AFTER TRUNCATE ON fbl.reports
    FOR EACH STATEMENT EXECUTE FUNCTION fbl.rollup_truncated();
CREATE TRIGGER rollup_added AFTER INSERT ON fbl.report_urls
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION fbl.rollup_urls_added();
CREATE TRIGGER rollup_deleted AFTER DELETE ON fbl.report_urls
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION fbl.rollup_urls_changed();
CREATE TRIGGER rollup_updated AFTER UPDATE ON fbl.report_urls
    REFERENCING OLD TABLE AS gone NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION fbl.rollup_urls_changed();
CREATE TRIGGER rollup_truncated AFTER TRUNCATE ON fbl.report_urls
    FOR EACH STATEMENT EXECUTE FUNCTION fbl.rollup_truncated();

-- fbl.rollup_backfill - roll up the day of reports before complete_since
-- (the 24 hours up to the hour of the newest report before it: gaps are
-- skipped), in the caller's transaction; returns the new complete_since, or
-- NULL when nothing is left (complete_since is then -infinity).
CREATE FUNCTION fbl.rollup_backfill() RETURNS timestamptz
LANGUAGE plpgsql AS $$
DECLARE
    done timestamptz;
    newest timestamptz;
    hi timestamptz;
BEGIN
    SELECT complete_since INTO done FROM fbl.rollup_state FOR UPDATE;
    IF done = '-infinity' THEN
        RETURN NULL;
    END IF;
    SELECT max(received_at) INTO newest FROM fbl.reports WHERE received_at < done;
    IF newest IS NULL THEN
        UPDATE fbl.rollup_state SET complete_since = '-infinity';
        RETURN NULL;
    END IF;
    hi := date_trunc('hour', newest, 'UTC') + interval '1 hour';
    PERFORM fbl.rollup_recompute(ARRAY(
        SELECT generate_series(hi - interval '24 hours', hi - interval '1 hour',
                               interval '1 hour')));
    UPDATE fbl.rollup_state SET complete_since = hi - interval '24 hours';
    RETURN hi - interval '24 hours';
END
$$;

-- fbl.rollup_split - which part of the window [since, until) the rollups
-- answer: the whole hours from @r_lo to @r_hi, at or after complete_since;
-- the reports themselves answer [since, r_lo) and [r_hi, until). Empty
-- (r_lo = r_hi = until) when no whole rolled-up hour is in the window.
CREATE FUNCTION fbl.rollup_split(since timestamptz, until timestamptz, OUT r_lo timestamptz,
                                 OUT r_hi timestamptz)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    r_lo := date_trunc('hour', since, 'UTC');
    IF r_lo < since THEN
        r_lo := r_lo + interval '1 hour';
    END IF;
    r_lo := greatest(r_lo, (SELECT complete_since FROM fbl.rollup_state));
    r_hi := CASE WHEN isfinite(until) THEN date_trunc('hour', until, 'UTC') ELSE until END;
    IF r_lo >= r_hi THEN
        r_lo := until;
        r_hi := until;
    END IF;
END
$$;
REVOKE EXECUTE ON FUNCTION fbl.rollup_backfill() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fbl.rollup_backfill() TO fbl_writer;

-- ---- the analyst functions, on the rollups -----------------------------------
-- Signatures, columns, order, masks and grants are 007's; each reads the
-- rollups for the whole hours of its window and the reports for the rest,
-- and every count is the same as before.

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
    SELECT coalesce(sum(c.n), 0)::bigint, coalesce(sum(c.ns), 0)::bigint,
           coalesce(sum(c.lim), 0)::bigint, (SELECT count(w.who) FROM w),
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
    SELECT y.hour, fbl.mask_addresses(y.mailbox), y.feedback_type, sum(y.n)::bigint,
           sum(y.lim)::bigint
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
        SELECT parts.ip, sum(parts.n)::bigint AS n, count(DISTINCT parts.who) AS who_n,
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
           sum(y.n)::bigint, count(DISTINCT y.who)
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
    SELECT fbl.mask_addresses(y.host), sum(y.n)::bigint, sum(y.urls)::bigint, min(y.lo),
           max(y.hi)
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
    SELECT fbl.mask_addresses(y.fp), min(y.lo), max(y.hi), sum(y.n)::bigint,
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
        SELECT y.who, sum(y.n)::bigint AS n, sum(y.limited)::bigint AS limited,
               sum(y.ok)::bigint AS ok
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
DECLARE
    r_lo timestamptz;
    r_hi timestamptz;
BEGIN
    SELECT * INTO r_lo, r_hi FROM fbl.rollup_split(since, until);
    RETURN QUERY
    SELECT fbl.mask_addresses(z.from_domain), z.source_ip, z.ns, z.n,
           round(z.ns::numeric / z.n, 3)
    FROM (SELECT y.from_domain, y.source_ip, sum(y.ns)::bigint AS ns, sum(y.n)::bigint AS n
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
