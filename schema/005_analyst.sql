-- 005_analyst.sql - what analysts read: views and windowed functions, the
-- indexes that keep the last 24 hours cheap, retention helpers, and the roles
-- fbl_analyst and fbl_writer. schema/README.md documents every view with
-- example output; bench/analyst measures them on ten million reports.
--
-- Views and functions. Each headline query is a set-returning function with
-- a window, fbl.NAME(since, [lim,] until), beside a view fbl.NAME that calls
-- it for the last 24 hours (complaints_hourly: the last 24 whole UTC hours,
-- the current one included). A function and a view may share a name: they
-- live in different catalogs, and `FROM fbl.campaigns` is the view while
-- `FROM fbl.campaigns(now() - interval '7 days', 20)` is the function. lim
-- NULL means every row; until is exclusive and defaults to 'infinity'.
--
-- Why functions, and why PL/pgSQL: the window must reach the scan of every
-- partitioned table as a constant, so that the planner prunes to the months
-- it covers and estimates the rows from the statistics. A plain view cannot
-- take a parameter; a SQL function that is not inlined (and a SECURITY
-- DEFINER one never is) is planned once, generically, with "received_at >=
-- $1" guessed at a third of all rows. A PL/pgSQL function with
-- plan_cache_mode = force_custom_plan plans each call with its values.
--
-- Privileges. fbl_analyst gets USAGE on the schema, SELECT on the views and
-- EXECUTE on these functions, and nothing else: no table, so no raw mail
-- (fbl.mails.raw), no report document (fbl.reports.doc, which holds the
-- recipients), no reporter address. The views are ordinary (security_invoker
-- off): they read the tables with their owner's rights, which is what lets
-- fbl_analyst use them without any right on the tables. The functions are
-- SECURITY DEFINER for the same reason, with a fixed search_path so that no
-- caller's schema can stand in for pg_catalog. No view needs security_barrier:
-- they hide columns, not rows (every row of a window is the analyst's to
-- count), so a function in the analyst's WHERE clause only ever sees columns
-- the view shows; a barrier would instead stop the analyst's own conditions
-- from reaching the scans.
--
-- Reporters are pseudonymized: fbl.reporters shows the reporter's domain and
-- reporter_key, the first 16 hex digits of SHA-256(secret || address) with a
-- random per-database secret (fbl.pseudonym_key, readable by the owner only).
-- The key is stable, so an analyst can follow one reporter over time and
-- across windows, but cannot recover or confirm an address without the secret.
-- XXX a reporter on a one-person domain is still recognisable by its domain.

-- ---- roles ---------------------------------------------------------------
-- Roles belong to the cluster, not the database: made once, NOLOGIN (the
-- administrator grants membership to login roles, or LOGIN and a password).
-- Several databases of one cluster may be migrated at once (the advisory lock
-- is per database), hence the tolerance of a role made meanwhile.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['fbl_analyst', 'fbl_writer'] LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r);
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL;
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'role % does not exist, and % may not create roles', r, current_user
                    USING HINT = format('As a superuser: CREATE ROLE %I NOLOGIN; then run fbl '
                                        'migrate again.', r);
        END;
    END LOOP;
END
$$;

-- ---- indexes -------------------------------------------------------------
-- Every window query scans one table's rows of the window. fbl.reports and
-- fbl.rejects have a btree on received_at (001); the children and the outbox
-- get one here (bench/analyst: the children are joined to their reports, and
-- a btree also lets the planner read the newest received_at when statistics
-- lag behind a growing month; without it the last day is estimated at one row
-- and the joins go nested). Rows are written in received_at order, so these
-- indexes grow at their right edge and cost the writer little.
CREATE INDEX ON fbl.report_urls (received_at);
CREATE INDEX ON fbl.report_dkim (received_at);
CREATE INDEX ON fbl.vendor_outbox (received_at);
-- The dead letters of every vendor, at any age, for fbl.vendor_feed.
CREATE INDEX ON fbl.vendor_outbox (vendor, created_at) WHERE state = 'dead';

-- ---- the pseudonym secret ---------------------------------------------------
CREATE TABLE fbl.pseudonym_key (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    key bytea NOT NULL
);
-- 244 random bits: two version 4 UUIDs (gen_random_uuid is built in since 13).
INSERT INTO fbl.pseudonym_key (key)
VALUES (decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));
REVOKE ALL ON fbl.pseudonym_key FROM PUBLIC;

-- ---- the functions --------------------------------------------------------
-- Every function: STABLE, SECURITY DEFINER, search_path pg_catalog then
-- pg_temp, custom plans, and no JIT (a window of a day costs more than
-- jit_above_cost, and compiling took longer than the whole query in
-- bench/analyst). "#variable_conflict use_column": the output column
-- names (reports, source_ip, ...) are also PL/pgSQL variables; in the queries
-- they mean the table columns.

-- fbl.summary - the headline numbers of a window: one row. (Distinct source
-- IPs and campaigns are the row counts of fbl.top_source_ips and
-- fbl.campaigns: each distinct count costs a sort of the window.)
CREATE FUNCTION fbl.summary(since timestamptz DEFAULT now() - interval '24 hours',
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
    WHERE r.received_at >= since AND r.received_at < until;
END
$$;

-- fbl.complaints_hourly - reports per UTC hour, mailbox and feedback type.
CREATE FUNCTION fbl.complaints_hourly(since timestamptz DEFAULT now() - interval '24 hours',
                                      until timestamptz DEFAULT 'infinity')
RETURNS TABLE (hour timestamptz, mailbox text, feedback_type fbl.feedback_type, reports bigint,
               rate_limited bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan SET jit = off
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT date_trunc('hour', r.received_at, 'UTC'), r.mailbox, r.feedback_type, count(*),
           count(*) FILTER (WHERE r.rate_limited)
    FROM fbl.reports r
    WHERE r.received_at >= since AND r.received_at < until
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3;
END
$$;

-- fbl.top_source_ips - source IPs by reports, each with its network (IPv4
-- /24, IPv6 /48) and the network's totals in the window (reports, and how
-- many of its IPs sent); reporters are distinct reporter addresses.
CREATE FUNCTION fbl.top_source_ips(since timestamptz DEFAULT now() - interval '24 hours',
                                   lim integer DEFAULT NULL,
                                   until timestamptz DEFAULT 'infinity')
RETURNS TABLE (source_ip inet, network cidr, reports bigint, reporters bigint,
               network_reports bigint, network_ips bigint, first_seen timestamptz,
               last_seen timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan SET jit = off
AS $$
#variable_conflict use_column
BEGIN
    -- The network totals are window sums over the per-IP rows: a second
    -- aggregation of the window (for distinct reporters per network) tripled
    -- the cost (bench/analyst).
    RETURN QUERY
    WITH ips AS (
        SELECT r.source_ip AS ip, count(*) AS n, count(DISTINCT r.reporter_address) AS who_n,
               min(r.received_at) AS lo, max(r.received_at) AS hi
        FROM fbl.reports r
        WHERE r.received_at >= since AND r.received_at < until AND r.source_ip IS NOT NULL
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

-- fbl.top_sender_domains - reports by From domain, DKIM d= (of the first,
-- topmost signature) and Return-Path domain together.
CREATE FUNCTION fbl.top_sender_domains(since timestamptz DEFAULT now() - interval '24 hours',
                                       lim integer DEFAULT NULL,
                                       until timestamptz DEFAULT 'infinity')
RETURNS TABLE (from_domain text, dkim_domain text, return_path_domain text, reports bigint,
               reporters bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan SET jit = off
AS $$
#variable_conflict use_column
BEGIN
    -- The signature joins its report on received_at alone, the report id
    -- being compared as a filter (>= and <=, which no join can hash on): a
    -- report's children share its received_at, which few other reports do,
    -- so this hashes 8-byte timestamps instead of 64-character ids, and took
    -- half the time (bench/analyst). Many reports in one delivery second only
    -- make the filter compare more ids; the result is the same.
    RETURN QUERY
    SELECT r.from_domain, d.d, r.return_path_domain, count(*), count(DISTINCT r.reporter_address)
    FROM fbl.reports r
    LEFT JOIN fbl.report_dkim d
           ON d.received_at = r.received_at AND d.report_id >= r.id AND d.report_id <= r.id
          AND d.position = 0 AND d.received_at >= since AND d.received_at < until
    WHERE r.received_at >= since AND r.received_at < until
    GROUP BY 1, 2, 3
    ORDER BY 4 DESC, 1, 2, 3
    LIMIT lim;
END
$$;

-- fbl.top_url_hosts - host names of the reported messages' URLs: reports
-- that link to the host, and URLs. (Distinct reporters would need each URL
-- joined to its report: four times the cost, bench/analyst.)
CREATE FUNCTION fbl.top_url_hosts(since timestamptz DEFAULT now() - interval '24 hours',
                                  lim integer DEFAULT NULL,
                                  until timestamptz DEFAULT 'infinity')
RETURNS TABLE (host text, reports bigint, urls bigint, first_seen timestamptz,
               last_seen timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan SET jit = off
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT u.host, count(DISTINCT u.report_id), count(*), min(u.received_at), max(u.received_at)
    FROM fbl.report_urls u
    WHERE u.received_at >= since AND u.received_at < until AND u.host IS NOT NULL
    GROUP BY 1
    ORDER BY 2 DESC, 1
    LIMIT lim;
END
$$;

-- fbl.campaigns - reports by campaign fingerprint: first and last seen in
-- the window, reports, distinct reporters, and a sample subject (the
-- smallest, so the same data always shows the same one).
CREATE FUNCTION fbl.campaigns(since timestamptz DEFAULT now() - interval '24 hours',
                              lim integer DEFAULT NULL,
                              until timestamptz DEFAULT 'infinity')
RETURNS TABLE (fingerprint text, first_seen timestamptz, last_seen timestamptz, reports bigint,
               reporters bigint, sample_subject text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan SET jit = off
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT r.fingerprint, min(r.received_at), max(r.received_at), count(*),
           count(DISTINCT r.reporter_address), min(r.subject)
    FROM fbl.reports r
    WHERE r.received_at >= since AND r.received_at < until AND r.fingerprint IS NOT NULL
    GROUP BY 1
    ORDER BY 4 DESC, 1
    LIMIT lim;
END
$$;

-- fbl.reporters - reports per reporter, pseudonymized (see the top of this
-- file): domain, key, reports, how many were rate limited, how many came
-- with a verified reporter (reporter.verified), and that share. Reports
-- without a reporter address make one row with NULL domain and key.
CREATE FUNCTION fbl.reporters(since timestamptz DEFAULT now() - interval '24 hours',
                              lim integer DEFAULT NULL,
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
    SELECT nullif(split_part(per.who, '@', -1), ''),
           left(encode(sha256(k.key || convert_to(per.who, 'UTF8')), 'hex'), 16), per.n,
           per.limited, per.ok, round(per.ok::numeric / per.n, 3)
    FROM per CROSS JOIN fbl.pseudonym_key k
    ORDER BY per.n DESC, 2
    LIMIT lim;
END
$$;

-- fbl.false_positives - not-spam reports by From domain and source IP, with
-- all the reports of that pair in the window and the not-spam share.
CREATE FUNCTION fbl.false_positives(since timestamptz DEFAULT now() - interval '24 hours',
                                    lim integer DEFAULT NULL,
                                    until timestamptz DEFAULT 'infinity')
RETURNS TABLE (from_domain text, source_ip inet, not_spam bigint, reports bigint,
               not_spam_share numeric)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan SET jit = off
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT x.from_domain, x.source_ip, x.ns, x.n, round(x.ns::numeric / x.n, 3)
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

-- fbl.vendor_feed - per vendor, the outbox rows of the window's reports
-- (by received_at) by state: pending (due: of those, the ones whose next
-- attempt is due), sent, dead (dead-lettered), limited (over the reporter's
-- rate, never sent); the last send among them; and the whole queue at any
-- age: pending_total, dead_total, the oldest pending row's creation and the
-- feed's lag (how long that row has waited; 0 when nothing waits).
-- The queue-wide parts read only pending and dead rows, through partial
-- indexes (004's pending one, and the dead one above); counting every sent
-- row instead would read the whole outbox.
CREATE FUNCTION fbl.vendor_feed(since timestamptz DEFAULT now() - interval '24 hours',
                                until timestamptz DEFAULT 'infinity')
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
    SELECT v.vendor, coalesce(w.pending, 0), coalesce(w.due, 0), coalesce(w.sent, 0),
           coalesce(w.dead, 0), coalesce(w.limited, 0), p.oldest,
           coalesce(greatest(now() - p.oldest, interval '0'), interval '0'), w.last_sent,
           coalesce(p.n, 0), coalesce(d.n, 0)
    FROM (SELECT vendor FROM w UNION SELECT vendor FROM p UNION SELECT vendor FROM d) v
    LEFT JOIN w USING (vendor) LEFT JOIN p USING (vendor) LEFT JOIN d USING (vendor)
    ORDER BY 1;
END
$$;

-- fbl.rejects_by_reason - mails that yielded no report, by reason and mailbox.
CREATE FUNCTION fbl.rejects_by_reason(since timestamptz DEFAULT now() - interval '24 hours',
                                      until timestamptz DEFAULT 'infinity')
RETURNS TABLE (reason fbl.reject_reason, mailbox text, rejects bigint, bytes bigint,
               last_seen timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan SET jit = off
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT j.reason, j.mailbox, count(*), sum(j.size)::bigint, max(j.received_at)
    FROM fbl.rejects j
    WHERE j.received_at >= since AND j.received_at < until
    GROUP BY 1, 2
    ORDER BY 3 DESC, 1, 2;
END
$$;

-- ---- the views: the last 24 hours ----------------------------------------
CREATE VIEW fbl.summary AS SELECT * FROM fbl.summary(now() - interval '24 hours');
CREATE VIEW fbl.complaints_hourly AS
    SELECT * FROM fbl.complaints_hourly(date_trunc('hour', now(), 'UTC') - interval '23 hours');
CREATE VIEW fbl.top_source_ips AS SELECT * FROM fbl.top_source_ips(now() - interval '24 hours');
CREATE VIEW fbl.top_sender_domains AS
    SELECT * FROM fbl.top_sender_domains(now() - interval '24 hours');
CREATE VIEW fbl.top_url_hosts AS SELECT * FROM fbl.top_url_hosts(now() - interval '24 hours');
CREATE VIEW fbl.campaigns AS SELECT * FROM fbl.campaigns(now() - interval '24 hours');
CREATE VIEW fbl.reporters AS SELECT * FROM fbl.reporters(now() - interval '24 hours');
CREATE VIEW fbl.false_positives AS SELECT * FROM fbl.false_positives(now() - interval '24 hours');
CREATE VIEW fbl.vendor_feed AS SELECT * FROM fbl.vendor_feed(now() - interval '24 hours');
CREATE VIEW fbl.rejects_by_reason AS
    SELECT * FROM fbl.rejects_by_reason(now() - interval '24 hours');

-- ---- retention (fbl prune) -------------------------------------------------

-- fbl.month_partitions - the month partitions of every table in fbl that is
-- partitioned on received_at, with their bounds (DEFAULT partitions are not
-- months and are never listed).
CREATE FUNCTION fbl.month_partitions()
RETURNS TABLE (parent text, partition text, lo timestamptz, hi timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT pc.relname::text, c.relname::text,
           substring(b.bound FROM 'FROM \(''([^'']*)''\)')::timestamptz,
           substring(b.bound FROM 'TO \(''([^'']*)''\)')::timestamptz
    FROM pg_partitioned_table p
    JOIN pg_class pc ON pc.oid = p.partrelid
    JOIN pg_namespace n ON n.oid = pc.relnamespace
    JOIN pg_attribute a ON a.attrelid = pc.oid AND a.attnum = p.partattrs[0]
    JOIN pg_inherits i ON i.inhparent = pc.oid
    JOIN pg_class c ON c.oid = i.inhrelid
    CROSS JOIN LATERAL (SELECT pg_get_expr(c.relpartbound, c.oid) AS bound) b
    WHERE n.nspname = 'fbl' AND p.partstrat = 'r' AND a.attname = 'received_at'
      AND b.bound LIKE 'FOR VALUES FROM%'
    ORDER BY 3, 1
$$;

-- fbl.drop_month - detach and drop the partitions of the UTC month that
-- starts at p_lo, for every table, in one transaction (the caller's): all of
-- a month goes, or none of it. Returns how many partitions it dropped.
--
-- The parents are locked first, in the writer's order (fbl.write_staged:
-- mails, reports, children, outbox, rejects), ACCESS EXCLUSIVE as DETACH
-- needs. DETACH ... CONCURRENTLY would need less, but it cannot run inside a
-- transaction, nor at all while a DEFAULT partition exists. So the locks are
-- held only for as long as the catalog changes take (the files are unlinked
-- at commit), and lock_timeout (p_lock_timeout) bounds the wait behind a long
-- query: the caller sees SQLSTATE 55P03 and tries again later, instead of
-- queueing every writer and reader behind this one. The current month and
-- any later one are refused.
CREATE FUNCTION fbl.drop_month(p_lo timestamptz, p_lock_timeout text DEFAULT '5s')
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m record;
    dropped integer := 0;
    writer_order text[] := ARRAY['mails', 'reports', 'report_urls', 'report_hops', 'report_dkim',
                                 'report_attachments', 'vendor_outbox', 'rejects'];
BEGIN
    IF p_lo >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' THEN
        RAISE EXCEPTION 'fbl.drop_month: % is not before the current month', p_lo;
    END IF;
    PERFORM set_config('lock_timeout', p_lock_timeout, true);
    FOR m IN
        SELECT mp.parent, mp.partition FROM fbl.month_partitions() mp
        WHERE mp.lo = p_lo
        ORDER BY array_position(writer_order, mp.parent::text) NULLS LAST, mp.parent
    LOOP
        EXECUTE format('LOCK TABLE fbl.%I IN ACCESS EXCLUSIVE MODE', m.parent);
    END LOOP;
    FOR m IN
        SELECT mp.parent, mp.partition FROM fbl.month_partitions() mp
        WHERE mp.lo = p_lo
        ORDER BY array_position(writer_order, mp.parent::text) NULLS LAST, mp.parent
    LOOP
        EXECUTE format('ALTER TABLE fbl.%I DETACH PARTITION fbl.%I', m.parent, m.partition);
        EXECUTE format('DROP TABLE fbl.%I', m.partition);
        dropped := dropped + 1;
    END LOOP;
    RETURN dropped;
END
$$;

-- fbl.prune_defaults - delete the rows delivered before p_before from every
-- DEFAULT partition (rows nobody made a month for: old months are dropped
-- whole, but these sit beside every month); returns how many rows went, or
-- with p_dry_run how many would.
CREATE FUNCTION fbl.prune_defaults(p_before timestamptz, p_dry_run boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    part text;
    n bigint;
    total bigint := 0;
BEGIN
    FOR part IN
        SELECT c.relname FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_class pc ON pc.oid = i.inhparent
        JOIN pg_namespace ns ON ns.oid = pc.relnamespace
        WHERE ns.nspname = 'fbl' AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'
        ORDER BY 1
    LOOP
        IF p_dry_run THEN
            EXECUTE format('SELECT count(*) FROM fbl.%I WHERE received_at < $1', part)
                INTO n USING p_before;
        ELSE
            EXECUTE format('DELETE FROM fbl.%I WHERE received_at < $1', part) USING p_before;
            GET DIAGNOSTICS n = ROW_COUNT;
        END IF;
        total := total + n;
    END LOOP;
    RETURN total;
END
$$;

-- ---- writers ----------------------------------------------------------------
-- The daemons (fbl sink, run, forward, reparse) need to read and write the
-- tables, and to make month partitions: ATTACH PARTITION needs the owner, so
-- fbl.create_month_partitions runs with its owner's rights from now on, and
-- only the writers and the owner may call it. Migrations and fbl prune stay
-- with the owner.
ALTER FUNCTION fbl.create_month_partitions(timestamptz) SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
REVOKE EXECUTE ON FUNCTION fbl.create_month_partitions(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fbl.create_month_partitions(timestamptz) TO fbl_writer;
REVOKE EXECUTE ON FUNCTION fbl.drop_month(timestamptz, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION fbl.prune_defaults(timestamptz, boolean) FROM PUBLIC;

GRANT USAGE ON SCHEMA fbl TO fbl_writer;
-- Every table so far (001 to 004, and their partitions), but the secret; the
-- sink reads fbl.schema_migrations at start. The views come along: harmless.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA fbl TO fbl_writer;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA fbl TO fbl_writer;
REVOKE ALL ON fbl.pseudonym_key, fbl.schema_migrations FROM fbl_writer;
GRANT SELECT ON fbl.schema_migrations TO fbl_writer;
-- Tables later migrations make (run by the same owner) are the writers' too;
-- never the analysts': they get each view by name, below.
ALTER DEFAULT PRIVILEGES IN SCHEMA fbl
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO fbl_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA fbl GRANT USAGE, SELECT ON SEQUENCES TO fbl_writer;

-- ---- analysts ---------------------------------------------------------------
GRANT USAGE ON SCHEMA fbl TO fbl_analyst;
GRANT SELECT ON fbl.summary, fbl.complaints_hourly, fbl.top_source_ips, fbl.top_sender_domains,
                fbl.top_url_hosts, fbl.campaigns, fbl.reporters, fbl.false_positives,
                fbl.vendor_feed, fbl.rejects_by_reason
    TO fbl_analyst;
REVOKE EXECUTE ON FUNCTION
    fbl.summary(timestamptz, timestamptz),
    fbl.complaints_hourly(timestamptz, timestamptz),
    fbl.top_source_ips(timestamptz, integer, timestamptz),
    fbl.top_sender_domains(timestamptz, integer, timestamptz),
    fbl.top_url_hosts(timestamptz, integer, timestamptz),
    fbl.campaigns(timestamptz, integer, timestamptz),
    fbl.reporters(timestamptz, integer, timestamptz),
    fbl.false_positives(timestamptz, integer, timestamptz),
    fbl.vendor_feed(timestamptz, timestamptz),
    fbl.rejects_by_reason(timestamptz, timestamptz)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    fbl.summary(timestamptz, timestamptz),
    fbl.complaints_hourly(timestamptz, timestamptz),
    fbl.top_source_ips(timestamptz, integer, timestamptz),
    fbl.top_sender_domains(timestamptz, integer, timestamptz),
    fbl.top_url_hosts(timestamptz, integer, timestamptz),
    fbl.campaigns(timestamptz, integer, timestamptz),
    fbl.reporters(timestamptz, integer, timestamptz),
    fbl.false_positives(timestamptz, integer, timestamptz),
    fbl.vendor_feed(timestamptz, timestamptz),
    fbl.rejects_by_reason(timestamptz, timestamptz)
    TO fbl_analyst;
